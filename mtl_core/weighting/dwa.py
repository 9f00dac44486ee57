"""Dynamic Weight Average (Liu, Johns & Davison 2019).

A task whose loss fell slowly over the last step gets more weight:

    r_k = L_k(t-1) / L_k(t-2),    w_k = T * softmax(r / temperature)_k

For the first two steps there is no ratio yet, so every weight is 1. The paper averages losses over an epoch;
here ``t`` counts calls of ``step`` (training steps), which is noisier but visible immediately.
"""

from __future__ import annotations

import numpy as np

from .._checks import real
from .base import Weighting, register_weighting, relative_to_initial


def softmax(z: np.ndarray) -> np.ndarray:
    """Numerically stable softmax of a 1-D array."""
    e = np.exp(z - z.max())
    return e / e.sum()


@register_weighting
class DWA(Weighting):
    """Dynamic Weight Average.

    Parameters
    ----------
    n_tasks : int
        T.
    temperature : float
        Softmax temperature (> 0); large -> weights near 1, small -> winner takes all.
    """

    name = "dwa"

    def __init__(self, n_tasks: int, *, temperature: float = 2.0):
        super().__init__(n_tasks)
        self.temperature = real("temperature", temperature, low=0.0, low_open=True)
        self.reset()

    def reset(self):
        super().reset()
        self.history = []  # the last two loss vectors, oldest first
        self.ratio = np.ones(self.n_tasks)

    def _weights(self, losses, step, grads_last, metrics):
        if len(self.history) < 2:
            weights = np.ones(self.n_tasks)
        else:
            # a zero loss two steps ago gives no rate; relative_to_initial maps it to ratio 1
            self.ratio = relative_to_initial(self.history[-1], self.history[-2])
            weights = self.n_tasks * softmax(self.ratio / self.temperature)
        self.history = (self.history + [losses.copy()])[-2:]
        return weights

    def state(self):
        return {"ratio": self.ratio.tolist()}

"""Equal weighting: every task gets weight 1 (the plain sum of losses)."""

from __future__ import annotations

import numpy as np

from .base import Weighting, register_weighting


@register_weighting
class Equal(Weighting):
    """``w_k = 1`` for every task."""

    name = "equal"

    def __init__(self, n_tasks: int):
        super().__init__(n_tasks)

    def _weights(self, losses, step, grads_last, metrics):
        return np.ones(self.n_tasks)

"""Loss normalisation: divide each loss by its value at the first step, so every task starts at 1.

This removes the arbitrary scale of each loss (an MSE in squared metres vs a cross-entropy in nats) without any
learning. A task whose first loss is 0 keeps weight 1.
"""
from __future__ import annotations

import numpy as np

from .base import Weighting, register_weighting


@register_weighting
class LossNorm(Weighting):
    """``w_k = 1 / L_k(0)``, with ``L_k(0)`` the loss seen at the first call of ``step``."""

    name = "loss_norm"

    def __init__(self, n_tasks: int):
        super().__init__(n_tasks)
        self.reset()

    def reset(self):
        super().reset()
        self.initial_losses = None

    def _weights(self, losses, step, grads_last, metrics):
        if self.initial_losses is None:
            self.initial_losses = losses.copy()
        init = self.initial_losses
        return np.where(init > 0, 1.0 / np.where(init > 0, init, 1.0), 1.0)

    def state(self):
        return {"initial_losses": None if self.initial_losses is None else self.initial_losses.tolist()}

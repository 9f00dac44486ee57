"""Loss normalisation: divide each loss by its value at the first step, so every task starts at 1.

This removes the arbitrary scale of each loss (an MSE in squared metres vs a cross-entropy in nats) without any
learning. "Initial" is the first positive loss of each task (a task without labels in the first batch reports 0);
until a task has one, its weight is 1.
"""

from __future__ import annotations

import numpy as np

from .base import Weighting, register_weighting, update_initial


@register_weighting
class LossNorm(Weighting):
    """``w_k = 1 / L_k(0)``, with ``L_k(0)`` the first positive loss of task k seen by ``step``."""

    name = "loss_norm"

    def __init__(self, n_tasks: int):
        super().__init__(n_tasks)
        self.reset()

    def reset(self):
        super().reset()
        self.initial_losses = None

    def _weights(self, losses, step, grads_last, metrics):
        self.initial_losses = update_initial(self.initial_losses, losses)
        init = self.initial_losses
        return np.where(init > 0, 1.0 / np.where(init > 0, init, 1.0), 1.0)

    def state(self):
        return {"initial_losses": None if self.initial_losses is None else self.initial_losses.tolist()}

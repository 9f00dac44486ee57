"""Fixed weighting: hand-picked constant weights (the classic grid-searched baseline)."""

from __future__ import annotations

import numpy as np

from .._checks import finite_array, real
from .base import Weighting, register_weighting


@register_weighting
class Fixed(Weighting):
    """Constant weights.

    Parameters
    ----------
    n_tasks : int
        T.
    weights : sequence of float (T,), optional
        Non-negative weights, used as given.
    alpha : float, optional
        Two-task shorthand in [0, 1]: weights ``(alpha, 1 - alpha)``. Give ``weights`` or ``alpha``, not both;
        with neither every weight is 1.
    """

    name = "fixed"

    def __init__(self, n_tasks: int, *, weights=None, alpha=None):
        super().__init__(n_tasks)
        if weights is not None and alpha is not None:
            raise ValueError("fixed weighting: give weights or alpha, not both")
        if alpha is not None:
            if self.n_tasks != 2:
                raise ValueError(f"alpha is the two-task shorthand, but n_tasks={self.n_tasks}; use weights")
            alpha = real("alpha", alpha, low=0.0, high=1.0)
            values = np.array([alpha, 1.0 - alpha])
        elif weights is not None:
            values = finite_array("weights", weights, ndim=1).astype(np.float64)
            if values.shape != (self.n_tasks,):
                raise ValueError(f"weights must have shape ({self.n_tasks},), got {values.shape}")
            if np.any(values < 0):
                raise ValueError(f"weights must be >= 0, got {values.tolist()}")
            weights = tuple(float(v) for v in values)
        else:
            values = np.ones(self.n_tasks)
        self.weights = weights
        self.alpha = alpha
        self._values = values

    def _weights(self, losses, step, grads_last, metrics):
        return self._values.copy()

    def state(self):
        return {"weights": self._values.tolist()}

"""Curriculum weighting: tasks are brought into training one after another.

The task at position p of ``order`` starts at step ``p * interval`` and its weight ramps linearly from 1/ramp to
1 over ``ramp`` steps; before its start it has weight 0. The first task of the order is on from step 0 at full
weight. ``ramp = 0`` switches each task on at once.
"""

from __future__ import annotations

import numpy as np

from .._checks import integer
from .base import Weighting, register_weighting


@register_weighting
class Curriculum(Weighting):
    """Task-by-task schedule on the global ``step``.

    Parameters
    ----------
    n_tasks : int
        T.
    order : sequence of int, optional
        A permutation of range(T): the order in which tasks are switched on. Default 0, 1, ..., T-1.
    interval : int
        Steps between two task starts (>= 0).
    ramp : int
        Steps over which a newly started task's weight grows to 1 (>= 0).
    """

    name = "curriculum"

    def __init__(self, n_tasks: int, *, order=None, interval: int = 100, ramp: int = 50):
        super().__init__(n_tasks)
        if order is None:
            order = tuple(range(self.n_tasks))
        try:
            order = tuple(integer("order", k, low=0, high=self.n_tasks - 1) for k in order)
        except TypeError:
            raise ValueError(f"order must be a sequence of task indices, got {order!r}") from None
        if sorted(order) != list(range(self.n_tasks)):
            raise ValueError(f"order must be a permutation of range({self.n_tasks}), got {order}")
        self.order = order
        self.interval = integer("interval", interval, low=0)
        self.ramp = integer("ramp", ramp, low=0)
        self.start = np.empty(self.n_tasks, dtype=np.int64)
        for position, task in enumerate(order):
            self.start[task] = position * self.interval

    def weights_at(self, step: int) -> np.ndarray:
        """The schedule itself, (T,) weights at global ``step`` (pure: no state change)."""
        step = integer("step", step, low=0)
        since = step - self.start
        if self.ramp == 0:
            w = (since >= 0).astype(np.float64)
        else:
            w = np.clip((since + 1) / self.ramp, 0.0, 1.0)
        w[self.order[0]] = 1.0
        return w

    def _weights(self, losses, step, grads_last, metrics):
        return self.weights_at(step)

    def state(self):
        return {"start": self.start.tolist()}

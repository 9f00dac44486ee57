"""Performance-based weighting: the task doing worse gets more weight.

With per-task metrics ``kpi_k`` in [0, 1] (higher = better, e.g. accuracy) the weights follow the focal-loss
style rule of Dynamic Task Prioritization (Guo et al. 2018):

    w_k ∝ -(1 - kpi_k) ** gamma * log(kpi_k)

which is large for a poor task and 0 for a perfect one. Without metrics the rule falls back to losses relative
to their first value, ``w_k ∝ (L_k / L_k(0)) ** gamma`` (a task that has improved least weighs most). Either
way the weights are normalised to sum to T; if every raw weight is 0 they are all 1.
"""

from __future__ import annotations

import numpy as np

from .._checks import real
from .base import Weighting, register_weighting, relative_to_initial, update_initial


@register_weighting
class Performance(Weighting):
    """Weights that grow with how badly a task is doing.

    Parameters
    ----------
    n_tasks : int
        T.
    gamma : float
        Focusing exponent (>= 0); 0 makes the metric rule plain ``-log(kpi)``.
    min_kpi : float
        Metrics are clipped to [min_kpi, 1] before the log so a score of 0 gives a large finite weight
        (in (0, 1)).
    """

    name = "performance"
    needs_metrics = True

    def __init__(self, n_tasks: int, *, gamma: float = 1.0, min_kpi: float = 1e-3):
        super().__init__(n_tasks)
        self.gamma = real("gamma", gamma, low=0.0)
        self.min_kpi = real("min_kpi", min_kpi, low=0.0, high=1.0, low_open=True, high_open=True)
        self.reset()

    def reset(self):
        super().reset()
        self.initial_losses = None
        self.source = None

    def _weights(self, losses, step, grads_last, metrics):
        self.initial_losses = update_initial(self.initial_losses, losses)
        if metrics is not None:
            kpi = np.clip(metrics, self.min_kpi, 1.0)
            raw = -((1.0 - kpi) ** self.gamma) * np.log(kpi)
            self.source = "metrics"
        else:
            raw = relative_to_initial(losses, self.initial_losses) ** self.gamma
            self.source = "losses"
        raw = np.maximum(raw, 0.0)  # -0.0 from log(1)
        total = raw.sum()
        if total <= 0:
            return np.ones(self.n_tasks)
        return raw * (self.n_tasks / total)

    def state(self):
        return {"source": self.source}

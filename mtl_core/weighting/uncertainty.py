"""Uncertainty weighting (Kendall, Gal & Cipolla 2018).

Each task k gets a learned log-variance ``s_k``; the objective is

    total = sum_k 0.5 * exp(-s_k) * L_k + 0.5 * s_k

so a noisy task (large irreducible loss) learns a large ``s_k`` and a small weight ``0.5 * exp(-s_k)``, while the
``0.5 * s_k`` term stops every ``s_k`` from running off to infinity. At fixed L_k the optimum is
``s_k = log(L_k)``, i.e. weight ``0.5 / L_k``.

The log-variances are trained by plain gradient descent (SGD, no momentum) with their own learning rate ``lr``,
using the exact gradient ``d total / d s_k = 0.5 - 0.5 * exp(-s_k) * L_k``, clipped to [-grad_clip, grad_clip].
The clip matters when loss scales differ: with L = 1e4 the raw gradient is about -5000, and one step at lr=0.05
would throw s by 250 into its bound. Near the optimum s = log L the curvature is 0.5 whatever the loss scale, so
the clipped step walks there at ``lr * grad_clip`` per step and then converges like plain SGD.
``max_abs_log_var`` bounds ``s`` so a zero loss cannot drive the weight to infinity.

``init_from_loss=True`` starts each ``s_k`` at ``log L_k`` of the first batch that labels task k (the optimum for
that loss) instead of ``init_log_var``. With mismatched scales the weights then start where they will end up,
instead of sweeping over orders of magnitude in the first steps: that sweep fills Adam's second-moment estimates
of the network with gradients thousands of times larger than the later ones and stalls the downweighted task.
"""

from __future__ import annotations

import numpy as np

from .._checks import real
from .base import Weighting, register_weighting


@register_weighting
class Uncertainty(Weighting):
    """Homoscedastic-uncertainty weighting.

    Parameters
    ----------
    n_tasks : int
        T.
    lr : float
        Learning rate of the log-variances (> 0).
    init_log_var : float
        Starting value of every ``s_k`` (0 -> weight 0.5).
    max_abs_log_var : float
        ``s`` is clipped to [-max_abs_log_var, max_abs_log_var] after each update (> 0).
    grad_clip : float
        The gradient of each ``s_k`` is clipped to this magnitude before the step; 0 turns clipping off.
    init_from_loss : bool
        Warm start: ``s_k = log L_k`` at the first step where task k has a positive loss.
    """

    name = "uncertainty"

    def __init__(
        self,
        n_tasks: int,
        *,
        lr: float = 0.05,
        init_log_var: float = 0.0,
        max_abs_log_var: float = 20.0,
        grad_clip: float = 1.0,
        init_from_loss: bool = False,
    ):
        super().__init__(n_tasks)
        self.grad_clip = real("grad_clip", grad_clip, low=0.0)
        if not isinstance(init_from_loss, bool):
            raise ValueError(f"init_from_loss must be True or False, got {init_from_loss!r}")
        self.init_from_loss = init_from_loss
        self.lr = real("lr", lr, low=0.0, low_open=True)
        self.max_abs_log_var = real("max_abs_log_var", max_abs_log_var, low=0.0, low_open=True)
        self.init_log_var = real("init_log_var", init_log_var, low=-self.max_abs_log_var, high=self.max_abs_log_var)
        self.reset()

    def reset(self):
        super().reset()
        self.log_var = np.full(self.n_tasks, self.init_log_var)
        self._warm = np.zeros(self.n_tasks, dtype=bool)  # tasks whose s was set from their first loss

    def total_objective(self, losses) -> float:
        """``sum_k 0.5*exp(-s_k)*L_k + 0.5*s_k`` at the current log-variances; losses (T,) -> float."""
        losses = self._check_losses(losses)
        return float(np.sum(0.5 * np.exp(-self.log_var) * losses + 0.5 * self.log_var))

    def log_var_grad(self, losses) -> np.ndarray:
        """Exact d total_objective / d s: (T,) -> (T,), ``0.5 - 0.5*exp(-s)*L``."""
        losses = self._check_losses(losses)
        return 0.5 - 0.5 * np.exp(-self.log_var) * losses

    def _weights(self, losses, step, grads_last, metrics):
        if self.init_from_loss and not self._warm.all():
            fresh = ~self._warm & (losses > 0)
            self.log_var[fresh] = np.clip(np.log(losses[fresh]), -self.max_abs_log_var, self.max_abs_log_var)
            self._warm |= fresh
        # the weights multiplying this step's losses are d total / d L_k at the current s
        weights = 0.5 * np.exp(-self.log_var)
        grad = 0.5 - 0.5 * np.exp(-self.log_var) * losses
        if self.grad_clip:
            grad = np.clip(grad, -self.grad_clip, self.grad_clip)
        self.log_var = np.clip(self.log_var - self.lr * grad, -self.max_abs_log_var, self.max_abs_log_var)
        return weights

    def state(self):
        return {"log_var": self.log_var.tolist(), "weights": (0.5 * np.exp(-self.log_var)).tolist()}

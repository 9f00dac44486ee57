"""FairGrad: alpha-fair resource allocation among the tasks (Ban & Ji, ICML 2024, "Fair Resource Allocation in
Multi-Task Learning").

Each task's "utility" is its first-order improvement g_k . d; FairGrad maximises the alpha-fair welfare
``sum_k (g_k . d)^(1 - alpha) / (1 - alpha)`` (``log`` at alpha = 1) in a small ball. With ``d = sum_k w_k g_k``
the optimality conditions are the nonlinear system (Equation 4 of the paper)

    (G G^T) w = w^(-1/alpha)   (elementwise power),   w > 0,        d = w @ G

(mtl_core's G is (T, P), so G G^T is the Gram matrix; the paper writes G^T G). The one parameter walks a family:

- alpha -> 0: w -> 1, the plain sum of the gradients (utilitarian welfare). alpha = 0 is taken as that limit.
- alpha = 1: Nash-MTL's bargaining equations (proportional fairness).
- alpha -> infinity: (G G^T) w -> 1, every task gets the same improvement g_k . d (max-min fairness).

Unlike Nash-MTL the weights are not scale-free for alpha != 1: scaling G by s scales w by s^(-2/(1 + 1/alpha)).

Solver: the same damped Newton method as Nash-MTL (:func:`nash_mtl.power_weights` with p = 1/alpha) on the convex
potential ``1/2 w^T (G G^T) w + sum_k phi(w_k)``, ``phi'(w) = -w^(-1/alpha)``; the official code calls
scipy's ``least_squares`` on the residual instead. A solution exists iff some direction improves every task;
otherwise (and for zero gradients) we do what Nash-MTL does: d = 0 with ``info["pareto_stationary"] = 1``,
respectively weight 0 for the zero gradients.
"""

from __future__ import annotations

import numpy as np

from .._checks import integer, real
from .base import CombineResult, Combiner, register_combiner
from .nash_mtl import bargain


@register_combiner
class FairGrad(Combiner):
    """FairGrad: solve ``(G G^T) w = w^(-1/alpha)``, ``d = w @ G``.

    Parameters
    ----------
    alpha : float
        Fairness parameter >= 0: 0 = sum of the gradients, 1 = Nash-MTL, large = max-min fairness. Default 2,
        as in the official run scripts.
    max_iter : int
        Newton iteration cap.

    ``info`` as for Nash-MTL: ``n_iter``, ``residual``, ``pareto_stationary``, ``margin``.
    """

    name = "fairgrad"

    def __init__(self, *, alpha: float = 2.0, max_iter: int = 100):
        self.alpha = real("alpha", alpha, low=0.0)
        self.max_iter = integer("max_iter", max_iter, low=1)

    def _combine(self, G, rng):
        if self.alpha == 0.0:
            # the limit alpha -> 0 of w = ((G G^T) w)^(-alpha) is w = 1 (the utilitarian sum), whatever G is
            weights = np.ones(G.shape[0])
            info = {"n_iter": 0, "residual": 0.0, "pareto_stationary": 0, "margin": 0.0}
        else:
            weights, info = bargain(G, 1.0 / self.alpha, max_iter=self.max_iter)
        return CombineResult(weights @ G, weights, info)

"""Nash-MTL: multi-task learning as a bargaining game (Navon et al., ICML 2022, "Multi-Task Learning as a
Bargaining Game").

The tasks bargain over the update d; the Nash bargaining solution maximises ``sum_k log(g_k . d)`` in a small
ball, and with ``d = sum_k a_k g_k`` its optimality conditions are the bargaining equations

    (G G^T) a = 1 / a   (elementwise),   a > 0,        d = a @ G

(mtl_core's G is (T, P), so G G^T is the T x T Gram matrix; the paper writes G^T G with one column per task).
Consequences worth seeing in the arena:

- ``g_k . d = 1 / a_k > 0``: every task improves, and ``|d|^2 = a . (G G^T a) = T``: the step length is sqrt(T)
  whatever the gradient scales.
- With unit vectors u_k = g_k / |g_k| and b_k = a_k |g_k| the equations read (U U^T) b = 1 / b, so the direction
  depends only on the gradients' DIRECTIONS: a tiny gradient pulls as hard as a large one. Two tasks at angle
  theta: b_k = 1 / sqrt(1 + cos theta), i.e. ``a_k = 1 / (|g_k| sqrt(1 + cos theta))`` and
  ``d = (u_1 + u_2) / sqrt(1 + cos theta)``.

Solver. The bargaining equations are the gradient of the strictly convex potential

    f(a) = 1/2 a^T (G G^T) a - sum_k log a_k,

so a damped Newton method on f (Hessian G G^T + diag(1/a^2), Armijo backtracking, a step never leaves a > 0)
solves them to rounding level, typically in 5-10 iterations. The official code instead runs up to 20 rounds of a
sequential convex approximation with cvxpy, stops at a residual of 1e-3 and clips |d| to 1; we return the exact
solution and leave the step length to the learning rate. :func:`power_weights` solves the whole family
``(G G^T) w = w^(-p)``; FairGrad (fairgrad.py) is its p = 1/alpha member.

Existence. A solution exists iff some direction improves every task, i.e. iff 0 is not in the convex hull of the
unit gradients (Gordan's theorem: MGDA's min-norm point of that hull is then non-zero). Otherwise (anti-parallel
gradients, or more tasks than dimensions with 0 inside their hull) f is unbounded below, the weights grow without
bound and the bargaining game has only its disagreement point: we return ``d = 0`` with all-zero weights and
``info["pareto_stationary"] = 1``, as MGDA does at a Pareto-stationary point. The test is MGDA's min-norm solver on
the unit gradients with margin :data:`STATIONARY_MARGIN`.

Zero gradients (and those more than 1e100 times smaller than the largest, ``base.NEGLIGIBLE``) have no direction
to bargain with: they get weight 0 and the other tasks bargain alone.
"""

from __future__ import annotations

import numpy as np

from .._checks import integer
from .base import CombineResult, Combiner, active_rows, register_combiner, scaled_gram
from .mgda import min_norm_weights

# Distance from 0 to the hull of the unit gradients below which no common descent direction is accepted. Near
# that boundary the weights grow like 1/distance and (M w)_k cancels, so the solution is only accurate to about
# 1e-16 / distance^2 relative (two anti-parallel-ish tasks: distance = sqrt((1 + cos theta) / 2)); at 1e-5 that
# is still 1e-6.
STATIONARY_MARGIN = 1e-5


def _potential(w: np.ndarray, M: np.ndarray, p: float) -> float:
    """``1/2 w^T M w + sum_k phi_p(w_k)`` with ``phi_p' (w) = -w^(-p)``: minimised where ``M w = w^(-p)``."""
    if p == 1.0:
        barrier = -np.sum(np.log(w))
    else:
        barrier = np.sum(w ** (1.0 - p)) / (p - 1.0)
    return float(0.5 * w @ M @ w + barrier)


def power_weights(M: np.ndarray, p: float = 1.0, *, max_iter: int = 100) -> tuple[np.ndarray, int, float]:
    """Solve ``M w = w^(-p)`` (elementwise power), ``w > 0``, by damped Newton on its convex potential.

    Parameters
    ----------
    M : np.ndarray (T, T)
        Gram matrix (symmetric PSD) with a positive diagonal, of gradients that admit a common descent
        direction (else there is no solution; see the module docstring). Best scaled to max diagonal ~1.
    p : float
        Exponent > 0: 1 gives Nash-MTL's bargaining equations, 1/alpha FairGrad's.
    max_iter : int
        Newton iteration cap.

    Returns
    -------
    w : np.ndarray (T,)
        Positive weights.
    n_iter : int
        Newton iterations used.
    residual : float
        Relative error of the equations, ``max_k |w_k^p (M w)_k - 1|`` to first order.
    """
    # w^(-p) of a large weight may underflow to 0, and a rejected trial point of the line search may overflow
    # the potential to inf: both harmless here
    with np.errstate(under="ignore", over="ignore"):
        return _newton(M, p, max_iter)


def _relative_residual(Mw: np.ndarray, wp: np.ndarray) -> float:
    """``max_k |(M w)_k - w_k^(-p)| / max(|(M w)_k|, w_k^(-p))``: ~ ``|w^p (M w) - 1|`` near a solution, in [0, 2]
    and free of overflow where w^(-p) underflows (small alpha with conflicting gradients)."""
    scale = np.maximum(np.abs(Mw), wp)
    return float(np.max(np.abs(Mw - wp) / np.where(scale > 0, scale, 1.0)))


def _newton(M: np.ndarray, p: float, max_iter: int) -> tuple[np.ndarray, int, float]:
    diag = np.diag(M).copy()
    # start from the solution for orthogonal gradients, w_k = M_kk^(-1/(1+p)), rescaled along its ray to the
    # minimum of the potential there: t^(1+p) = sum_k w_k^(1-p) / (w^T M w)
    w = diag ** (-1.0 / (1.0 + p))
    w *= (np.sum(w ** (1.0 - p)) / (w @ M @ w)) ** (1.0 / (1.0 + p))
    # a step may shrink a weight by at most the factor `floor` and grow it by at most `ceil`, so that w^(-p)
    # changes by at most e^20 per step (p = 1/alpha is large for small alpha)
    floor = max(0.01, np.exp(-20.0 / p))
    ceil = np.exp(min(20.0 / p, 20.0))
    best = np.inf
    stalled = 0
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        Mw = M @ w
        wp = w ** (-p)
        grad = Mw - wp
        residual = _relative_residual(Mw, wp)
        # Newton's residual squares every step until rounding stops it (at about 1e-16 times the conditioning,
        # as (M w)_k cancels between conflicting tasks): three steps without a new best small residual end it
        stalled = 0 if residual < best else stalled + 1
        best = min(best, residual)
        if residual <= 1e-14 or (stalled >= 3 and best < 1e-6):
            break
        H = M + np.diag(p * wp / w)
        # symmetric Jacobi scaling: weights of tiny gradients are huge, and Newton's step is scale-invariant
        # while a linear solve on the raw Hessian is not
        s = 1.0 / np.sqrt(np.diag(H))
        step = s * np.linalg.solve(H * np.outer(s, s), -grad * s)
        decrement = float(-grad @ step)  # Newton decrement squared: ~2 (f - f*), affine-invariant
        if not decrement > 0.0:
            break  # no descent left (rounding)
        f0 = _potential(w, M, p)
        far = decrement > 1e-10 * (1.0 + abs(f0))
        t = 1.0
        while True:
            # projected Newton: each weight changes by a factor in [floor, ceil] (a weight heading for 0,
            # as large alpha asks, then shrinks geometrically without holding the others back)
            with np.errstate(over="ignore"):
                w_new = w * np.clip(1.0 + t * step / w, floor, ceil)
            moved = w_new - w
            slope = float(grad @ moved)
            if t < 1e-12:
                break
            if far:
                # Armijo on the potential while its decrease is above rounding ...
                if slope < 0 and _potential(w_new, M, p) <= f0 + 0.25 * slope:
                    break
            elif (M @ w_new - w_new ** (-p)) @ moved <= 0.5 * abs(slope):
                # ... below it, the slope at the new point, which rounding does not swamp: no overshoot
                break
            t *= 0.5
        w = w_new
        if np.sqrt(max(float(moved @ M @ moved), 0.0)) <= 1e-15 * np.sqrt(max(float(w @ M @ w), 0.0)):
            # the direction w @ G no longer moves: what is left are weights of tasks that no longer count in it
            # (alpha far from 1 drives some weights towards 0 or infinity, where the equations cannot be met in
            # floating point) or rounding
            break
    return w, n_iter, _relative_residual(M @ w, w ** (-p))


def stationarity_margin(M: np.ndarray) -> float:
    """Distance from 0 to the convex hull of the UNIT gradients, from their Gram matrix ``M`` (positive diagonal).

    Zero (up to rounding) iff no direction improves every task (Gordan's theorem).
    """
    n = np.sqrt(np.diag(M))
    K = M / np.outer(n, n)
    w, _ = min_norm_weights(K, tol=1e-15)
    return float(np.sqrt(max(w @ K @ w, 0.0)))


def bargain(G: np.ndarray, p: float, *, max_iter: int = 100) -> tuple[np.ndarray, dict]:
    """Weights (T,) solving ``(G G^T) w = w^(-p)`` on the non-negligible rows of ``G``, and loggable info.

    Zero weights and ``pareto_stationary = 1`` when no direction improves every non-negligible task.
    """
    T = G.shape[0]
    M, e = scaled_gram(G)
    active = active_rows(M)
    weights = np.zeros(T)
    info = {"n_iter": 0, "residual": 0.0, "pareto_stationary": 1, "margin": 0.0}
    if active.size == 0:
        return weights, info  # every gradient is zero: stationary for every task
    Ma = M[np.ix_(active, active)]
    margin = stationarity_margin(Ma)
    info["margin"] = margin
    if margin <= STATIONARY_MARGIN:
        return weights, info
    info["pareto_stationary"] = 0
    w, info["n_iter"], info["residual"] = power_weights(Ma, p, max_iter=max_iter)
    # G G^T = 4^e M: if M w = w^(-p) then (4^e M)(k w) = (k w)^(-p) for k^(1+p) = 4^(-e)
    weights[active] = w * 2.0 ** (-2.0 * e / (1.0 + p))
    return weights, info


@register_combiner
class NashMTL(Combiner):
    """Nash-MTL: the Nash bargaining solution ``(G G^T) a = 1/a``, ``d = a @ G``.

    Parameters
    ----------
    max_iter : int
        Newton iteration cap (the solver usually needs fewer than 15).

    ``info``: ``n_iter``, ``residual`` (max relative error of the equations), ``pareto_stationary`` (1 when no
    direction improves every task, then d = 0) and ``margin`` (distance of 0 from the hull of the unit
    gradients: how far from Pareto-stationary the gradients are).
    """

    name = "nash_mtl"

    def __init__(self, *, max_iter: int = 100):
        self.max_iter = integer("max_iter", max_iter, low=1)

    def _combine(self, G, rng):
        weights, info = bargain(G, 1.0, max_iter=self.max_iter)
        return CombineResult(weights @ G, weights, info)

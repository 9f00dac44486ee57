"""MGDA: the minimum-norm point of the convex hull of the task gradients (Désidéri 2012; Sener & Koltun 2018).

    w* = argmin_{w in simplex} || sum_k w_k g_k ||^2,    d = sum_k w*_k g_k

d is a common descent direction: d . g_k >= ||d||^2 >= 0 for every task, and d = 0 exactly when no direction
improves all tasks at once (a Pareto-stationary point).

Two tasks have a closed form: gamma = clip(((g2 - g1) . g2) / ||g1 - g2||^2, 0, 1), d = gamma g1 + (1 - gamma) g2.
More tasks use Frank-Wolfe on the Gram matrix with exact line search and away steps (which makes it converge
linearly instead of zig-zagging when the optimum lies on a face of the simplex).
"""
from __future__ import annotations

import numpy as np

from .._checks import integer, real
from .base import CombineResult, Combiner, register_combiner


def two_task_gamma(g1: np.ndarray, g2: np.ndarray) -> float:
    """Weight of ``g1`` in the min-norm point of the segment [g1, g2] (0.5 when g1 == g2)."""
    diff = g1 - g2
    denom = diff @ diff
    if denom == 0.0:
        return 0.5
    return float(np.clip(((g2 - g1) @ g2) / denom, 0.0, 1.0))


def min_norm_weights(M: np.ndarray, *, max_iter: int = 1000, tol: float = 1e-12) -> tuple[np.ndarray, int]:
    """Away-step Frank-Wolfe for ``min_{w in simplex} w^T M w``.

    Parameters
    ----------
    M : np.ndarray (T, T)
        Gram matrix ``G @ G.T`` (symmetric positive semi-definite).
    max_iter : int
        Iteration cap.
    tol : float
        Stop when the Frank-Wolfe duality gap is below ``tol * max(diag(M))``.

    Returns
    -------
    w : np.ndarray (T,)
        Convex weights.
    n_iter : int
        Iterations used.
    """
    T = M.shape[0]
    scale = max(float(np.max(np.diag(M))), np.finfo(float).tiny)
    # start at the best vertex: cheap and already exact when one gradient lies "inside" the others
    w = np.zeros(T)
    w[int(np.argmin(np.diag(M)))] = 1.0
    for it in range(1, max_iter + 1):
        grad = M @ w                                   # half the gradient of w^T M w
        value = w @ grad
        s = int(np.argmin(grad))
        gap_fw = value - grad[s]
        if gap_fw <= tol * scale:
            return w, it - 1
        support = np.nonzero(w > 0)[0]
        a = int(support[np.argmax(grad[support])])
        gap_away = grad[a] - value
        if gap_fw >= gap_away:
            d = -w.copy()
            d[s] += 1.0
            gamma_max = 1.0
        else:
            d = w.copy()
            d[a] -= 1.0
            gamma_max = w[a] / (1.0 - w[a])
        curvature = d @ M @ d
        slope = d @ grad
        gamma = gamma_max if curvature <= 0.0 else min(max(-slope / curvature, 0.0), gamma_max)
        w = w + gamma * d
        # rounding can leave -1e-17 entries or a sum of 1 +- ulp; keep w exactly on the simplex
        w = np.maximum(w, 0.0)
        w /= w.sum()
    return w, max_iter


@register_combiner
class MGDA(Combiner):
    """Multiple-gradient descent: the min-norm convex combination of the task gradients.

    Parameters
    ----------
    normalize : bool
        Scale every task gradient to unit norm before solving (off by default, as in plain MGDA). The
        reported ``task_weights`` then already include the 1/||g_k|| factors.
    ignore_zero : bool
        Leave zero-gradient rows out of the solve (they get weight 0). A zero row would otherwise make the
        min-norm point 0 and stop training whenever a task has no labels in a batch.
    max_iter : int
        Frank-Wolfe iteration cap (T > 2).
    tol : float
        Relative Frank-Wolfe gap at which to stop (T > 2), > 0.
    """

    name = "mgda"

    def __init__(self, *, normalize: bool = False, ignore_zero: bool = True, max_iter: int = 1000,
                 tol: float = 1e-12):
        for key, value in (("normalize", normalize), ("ignore_zero", ignore_zero)):
            if not isinstance(value, bool):
                raise ValueError(f"{key} must be a bool, got {value!r}")
        self.normalize = normalize
        self.ignore_zero = ignore_zero
        self.max_iter = integer("max_iter", max_iter, low=1)
        self.tol = real("tol", tol, low=0.0, low_open=True)

    def _combine(self, G, rng):
        T, P = G.shape
        norms = np.linalg.norm(G, axis=1)
        scale = np.ones(T)
        if self.normalize:
            scale = np.where(norms > 0, 1.0 / np.where(norms > 0, norms, 1.0), 0.0)
        active = np.nonzero(norms > 0)[0] if self.ignore_zero else np.arange(T)
        weights = np.zeros(T)
        n_iter = 0
        if active.size == 0:
            return CombineResult(np.zeros(P), weights, {"min_norm": 0.0, "n_iter": 0})
        H = G[active] * scale[active, None]
        if active.size == 1:
            w = np.ones(1)
        elif active.size == 2:
            gamma = two_task_gamma(H[0], H[1])
            w = np.array([gamma, 1.0 - gamma])
        else:
            w, n_iter = min_norm_weights(H @ H.T, max_iter=self.max_iter, tol=self.tol)
        direction = w @ H
        weights[active] = w * scale[active]
        return CombineResult(direction, weights,
                             {"min_norm": float(np.linalg.norm(direction)), "n_iter": int(n_iter)})

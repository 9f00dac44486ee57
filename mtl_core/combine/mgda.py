"""MGDA: the minimum-norm point of the convex hull of the task gradients (Désidéri 2012; Sener & Koltun 2018).

    w* = argmin_{w in simplex} || sum_k w_k g_k ||^2,    d = sum_k w*_k g_k

d is a common descent direction: d . g_k >= ||d||^2 >= 0 for every task, and d = 0 exactly when no direction
improves all tasks at once (a Pareto-stationary point).

Two tasks have a closed form: gamma = clip(((g2 - g1) . g2) / ||g1 - g2||^2, 0, 1), d = gamma g1 + (1 - gamma) g2.
More tasks use Wolfe's min-norm-point algorithm on the Gram matrix: Frank-Wolfe vertex selection with an
exact re-optimisation on the active set after each step ("fully corrective" Frank-Wolfe), which finishes in
finitely many steps instead of zig-zagging like plain Frank-Wolfe.
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


def _affine_min(M: np.ndarray, S: list[int]) -> np.ndarray:
    """Coefficients (sum 1) of the min-norm point of the AFFINE hull of the points S (bordered KKT system)."""
    k = len(S)
    K = np.ones((k + 1, k + 1))
    K[:k, :k] = M[np.ix_(S, S)]
    K[k, k] = 0.0
    rhs = np.zeros(k + 1)
    rhs[k] = 1.0
    # lstsq rather than solve: rounding can make the points of S nearly affinely dependent
    return np.linalg.lstsq(K, rhs, rcond=None)[0][:k]


def min_norm_weights(M: np.ndarray, *, max_iter: int = 1000, tol: float = 1e-12) -> tuple[np.ndarray, int]:
    """Wolfe's min-norm-point algorithm (fully corrective Frank-Wolfe) for ``min_{w in simplex} w^T M w``.

    Each major iteration is a Frank-Wolfe step: add the vertex most opposed to the current point x
    (argmin_k g_k . x). Instead of a line search, the weights are then re-optimised exactly on the active set:
    the min-norm point of the active set's affine hull is computed, and if it leaves the simplex we walk
    toward it until a weight hits 0 and drop that vertex (minor iterations). Unlike plain Frank-Wolfe this
    terminates with the exact answer, also when 0 is inside the hull.

    Parameters
    ----------
    M : np.ndarray (T, T)
        Gram matrix ``G @ G.T`` (symmetric positive semi-definite).
    max_iter : int
        Cap on major + minor iterations.
    tol : float
        Stop when the Frank-Wolfe gap ``x.x - min_k g_k.x`` is below ``tol * max(diag(M))``.

    Returns
    -------
    w : np.ndarray (T,)
        Convex weights.
    n_iter : int
        Iterations used.
    """
    T = M.shape[0]
    peak = float(np.max(np.diag(M)))
    if peak == 0.0:
        w = np.zeros(T)
        w[0] = 1.0
        return w, 0  # every gradient is zero: any w gives d = 0
    M = M / peak  # unit scale keeps the KKT systems well conditioned
    scale = 1.0
    S = [int(np.argmin(np.diag(M)))]
    lam = np.ones(1)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        dots = M[:, S] @ lam  # g_k . x for every k
        value = lam @ dots[S]
        j = int(np.argmin(dots))
        if value - dots[j] <= tol * scale or j in S:
            break
        S.append(j)
        lam = np.append(lam, 0.0)
        while n_iter < max_iter:  # minor cycle: stay inside the simplex
            n_iter += 1
            alpha = _affine_min(M, S)
            if np.all(alpha > 0):
                lam = alpha
                break
            shrink = alpha < lam
            # no weight decreases only if alpha has exact zeros where lam is 0: then move all the way
            theta = np.min(lam[shrink] / (lam[shrink] - alpha[shrink])) if shrink.any() else 1.0
            lam = (1 - theta) * lam + theta * alpha
            keep = lam > 1e-15
            S = [k for k, kept in zip(S, keep) if kept]
            lam = lam[keep]
    w = np.zeros(T)
    w[S] = np.maximum(lam, 0.0)
    return w / w.sum(), n_iter


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
        Iteration cap of the min-norm solver (T > 2).
    tol : float
        Relative Frank-Wolfe gap at which the solver stops (T > 2), > 0.
    """

    name = "mgda"

    def __init__(self, *, normalize: bool = False, ignore_zero: bool = True, max_iter: int = 1000, tol: float = 1e-12):
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
        return CombineResult(direction, weights, {"min_norm": float(np.linalg.norm(direction)), "n_iter": int(n_iter)})

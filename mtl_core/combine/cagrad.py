"""CAGrad, conflict-averse gradient descent (Liu et al. 2021), following the official implementation.

Around the average gradient g0 = mean_k g_k, CAGrad looks for the update d that maximises the WORST task's
improvement min_k g_k . d inside the ball ||d - g0|| <= c ||g0||. Its dual is a small problem on the simplex:

    w* = argmin_{w in simplex}  g_w . g0 + sqrt(phi) ||g_w||,   g_w = sum_k w_k g_k,   phi = c^2 ||g0||^2
    d  = (g0 + sqrt(phi) / ||g_w|| * g_w) / (1 + c^2)

The division by (1 + c^2) is the official code's default rescaling (``rescale=1``), which keeps the step length
comparable across values of c. c = 0 gives the mean gradient. (The official training script then multiplies the
direction by T "to match the sum loss"; we return the direction itself, like the ``mean`` combiner.)

Two tasks: with w = (x, 1 - x) the objective is convex in x and its stationary point has a closed form, solved
exactly below. More tasks: projected gradient descent with backtracking on the simplex. If the minimiser has
g_w = 0 (directly opposed gradients; zero up to 1e-12 of the largest task-gradient norm) the correction term has
no direction and d = g0 / (1 + c^2), which is what the official code's +1e-8 guards amount to.
"""
from __future__ import annotations

import numpy as np

from .._checks import integer, real
from .base import CombineResult, Combiner, project_simplex, register_combiner


def dual_objective(w: np.ndarray, M: np.ndarray, sqrt_phi: float) -> float:
    """``g_w . g0 + sqrt(phi) ||g_w||`` from the Gram matrix ``M`` (T, T) and weights ``w`` (T,)."""
    T = M.shape[0]
    Mw = M @ w
    return float(Mw.sum() / T + sqrt_phi * np.sqrt(max(w @ Mw, 0.0)))


def two_task_x(g1: np.ndarray, g2: np.ndarray, sqrt_phi: float) -> float:
    """Exact minimiser x in [0, 1] of ``f(x) = g_x . g0 + s ||g_x||`` with ``g_x = x g1 + (1 - x) g2``.

    Write g_x = g2 + x δ (δ = g1 - g2), a = ||δ||^2, b = δ . g2, q = δ . g0. Then
    f'(x) = q + s (a x + b) / ||g_x||. With u = a x + b one has a ||g_x||^2 = u^2 + D, where
    D = a * min_x ||g_x||^2 >= 0, so f'(x) = 0 <=> s u = -q sqrt((u^2 + D) / a), solved by
    u = -sign(q) |q| sqrt(D / (s^2 a - q^2)) when s^2 a > q^2. Otherwise |s (a x + b) / ||g_x||| <= s sqrt(a) <= |q|
    (Cauchy-Schwarz), f is monotone and the minimiser is an endpoint. f is convex, so clipping to [0, 1] is exact.
    """
    delta = g1 - g2
    a = delta @ delta
    g0 = 0.5 * (g1 + g2)
    q = delta @ g0
    if a == 0.0:
        return 0.5                    # g1 == g2: every x gives the same g_x
    s2a = sqrt_phi * sqrt_phi * a
    if s2a <= q * q:
        if q > 0:
            return 0.0
        if q < 0:
            return 1.0
        return 0.5                    # s == 0 and q == 0: f is constant
    b = delta @ g2
    # D via the residual vector rather than a*||g2||^2 - b^2, which cancels badly for near-parallel gradients
    resid = g2 - (b / a) * delta
    D = a * (resid @ resid)
    u = -np.sign(q) * abs(q) * np.sqrt(D / (s2a - q * q))
    return float(np.clip((u - b) / a, 0.0, 1.0))


def simplex_weights(M: np.ndarray, sqrt_phi: float, *, max_iter: int = 2000, tol: float = 1e-13) -> tuple[np.ndarray, int]:
    """Projected gradient descent (Armijo backtracking) for ``min_{w in simplex} dual_objective(w)``.

    Returns the weights (T,) and the number of iterations used.
    """
    T = M.shape[0]
    w = np.full(T, 1.0 / T)
    peak = float(np.max(np.abs(M)))
    if peak == 0.0:
        return w, 0                                   # all gradients zero: every w is optimal
    # the minimiser is scale-free (f(w; M/k, s/sqrt(k)) = f(w; M, s)/sqrt(k)): work at unit scale so step
    # sizes neither overflow for tiny gradients nor underflow for huge ones
    M = M / peak
    sqrt_phi = sqrt_phi / np.sqrt(peak)
    step = 1.0 / T
    max_step = step * 2.0 ** 30
    lin = M.sum(axis=1) / T                           # gradient of g_w . g0
    f = dual_objective(w, M, sqrt_phi)
    for it in range(1, max_iter + 1):
        Mw = M @ w
        norm = np.sqrt(max(w @ Mw, 0.0))
        # at g_w = 0 the norm is not differentiable; 0 is a valid subgradient of that term there
        grad = lin + (sqrt_phi * Mw / norm if norm > 0 else 0.0)
        while True:
            w_new = project_simplex(w - step * grad)
            f_new = dual_objective(w_new, M, sqrt_phi)
            moved = w_new - w
            if f_new <= f + grad @ moved + (moved @ moved) / (2 * step) or step < 1e-30:
                break
            step *= 0.5
        converged = np.max(np.abs(moved)) < tol
        w, f = w_new, f_new
        step = min(2.0 * step, max_step)              # let the step grow back after a cautious phase
        if converged:
            return w, it
    return w, max_iter


@register_combiner
class CAGrad(Combiner):
    """Conflict-averse gradient descent.

    Parameters
    ----------
    c : float
        Radius of the ball around the mean gradient, relative to its norm (>= 0); paper default 0.5.
    max_iter : int
        Iteration cap of the simplex solver (T > 2).
    """

    name = "cagrad"

    def __init__(self, *, c: float = 0.5, max_iter: int = 2000):
        self.c = real("c", c, low=0.0)
        self.max_iter = integer("max_iter", max_iter, low=1)

    def _combine(self, G, rng):
        T, P = G.shape
        g0 = G.mean(axis=0)
        sqrt_phi = self.c * np.linalg.norm(g0)
        n_iter = 0
        if T == 1:
            w = np.ones(1)
        elif T == 2:
            x = two_task_x(G[0], G[1], sqrt_phi)
            w = np.array([x, 1.0 - x])
        else:
            w, n_iter = simplex_weights(G @ G.T, sqrt_phi, max_iter=self.max_iter)
        gw = w @ G
        gw_norm = np.linalg.norm(gw)
        # a g_w that is zero up to rounding (opposed gradients) has no direction to follow: treat it as 0
        lam = sqrt_phi / gw_norm if gw_norm > 1e-12 * np.linalg.norm(G, axis=1).max() else 0.0
        rescale = 1.0 + self.c ** 2
        direction = (g0 + lam * gw) / rescale
        task_weights = (1.0 / T + lam * w) / rescale
        return CombineResult(direction, task_weights,
                             {"lambda": float(lam), "gw_norm": float(gw_norm), "n_iter": int(n_iter)})

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
from .base import CombineResult, Combiner, register_combiner
from .mgda import _affine_min, min_norm_weights


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
        return 0.5  # g1 == g2: every x gives the same g_x
    s2a = sqrt_phi * sqrt_phi * a
    if s2a <= q * q:
        if q > 0:
            return 0.0
        if q < 0:
            return 1.0
        return 0.5  # s == 0 and q == 0: f is constant
    b = delta @ g2
    # D via the residual vector rather than a*||g2||^2 - b^2, which cancels badly for near-parallel gradients
    resid = g2 - (b / a) * delta
    D = a * (resid @ resid)
    u = -np.sign(q) * abs(q) * np.sqrt(D / (s2a - q * q))
    return float(np.clip((u - b) / a, 0.0, 1.0))


def nnls_gram(M: np.ndarray, lin: np.ndarray, *, max_iter: int | None = None) -> np.ndarray:
    """``argmin_{mu >= 0} 1/2 mu^T M mu + lin . mu`` by the Lawson-Hanson active-set method.

    With ``M = G G^T`` and ``lin = G g0`` this is non-negative least squares, ``min_{mu >= 0} ||g0 + G^T mu||``:
    ``G^T mu`` is minus the projection of -g0 onto the cone spanned by the task gradients, and ``g0 + G^T mu`` the
    point closest to g0 with ``g_k . d >= 0`` for every task. Lawson-Hanson keeps the passive set linearly
    independent and ends after finitely many steps with the exact solution.
    """
    T = M.shape[0]
    max_iter = 3 * T + 10 if max_iter is None else max_iter
    tol = 1e-14 * max(1.0, float(np.max(np.abs(lin))), float(np.max(np.abs(M))))
    mu = np.zeros(T)
    passive = np.zeros(T, dtype=bool)
    for _ in range(max_iter):
        grad = M @ mu + lin
        candidates = ~passive & (grad < -tol)
        if not candidates.any():
            break
        passive[int(np.argmin(np.where(candidates, grad, np.inf)))] = True
        while passive.any():
            idx = np.nonzero(passive)[0]
            z = np.zeros(T)
            z[idx] = np.linalg.lstsq(M[np.ix_(idx, idx)], -lin[idx], rcond=None)[0]
            if np.all(z[idx] > 0):
                mu = z
                break
            # walk from mu toward z until the first passive coefficient reaches 0, and free it
            neg = passive & (z <= 0)
            theta = float(np.min(mu[neg] / (mu[neg] - z[neg])))
            mu = mu + theta * (z - mu)
            passive &= mu > 1e-15
            mu[~passive] = 0.0
    return mu


def _face_minimiser(M: np.ndarray, lin: np.ndarray, s: float, S: list[int]):
    """Minimiser of the dual objective over the AFFINE hull of the gradients in S.

    In x = g_w, the objective is ``x . g0 + s ||x||``. Write x = x_p + y with x_p the min-norm point of the affine
    hull (rho = ||x_p||) and y in its direction space D, onto which g0 projects as g0_D (n = ||g0_D||). Then the
    objective is ``const + y . g0_D + s sqrt(rho^2 + |y|^2)``: for s > n its minimum is at
    ``y = -rho / sqrt(s^2 - n^2) * g0_D``, for s <= n it decreases without bound along -g0_D.

    Returns barycentric coordinates on S (sum 1) of the minimiser and None, or the coordinates of x_p and the
    coordinate change (sum 0) of the descent ray.
    """
    lam_p = _affine_min(M, S)
    k = len(S)
    if k == 1:
        return lam_p, None
    MS, lin_S = M[np.ix_(S, S)], lin[S]
    E = np.eye(k)[:, 1:] - np.eye(k)[:, [0]]  # coordinate changes g_{S_j} - g_{S_0} spanning D
    EE = E.T @ MS @ E
    Eg = E.T @ lin_S  # (g_{S_j} - g_{S_0}) . g0
    c = np.linalg.lstsq(EE, Eg, rcond=None)[0]
    gamma = E @ c  # coordinates of g0_D
    n2 = max(float(c @ Eg), 0.0)
    if s * s > n2:
        rho2 = max(float(lam_p @ MS @ lam_p), 0.0)
        return lam_p - np.sqrt(rho2 / (s * s - n2)) * gamma, None
    return lam_p, -gamma


def _minor_steps(
    M: np.ndarray, lin: np.ndarray, s: float, S: list, lam: np.ndarray, n_iter: int, max_iter: int
) -> tuple[list, np.ndarray, int]:
    """Reach the minimiser of the affine hull of the active vertices ``S`` (weights ``lam``, shape (len(S),))
    without leaving the simplex: move toward it, dropping each vertex whose weight reaches 0 on the way."""
    while n_iter < max_iter:
        n_iter += 1
        target, ray = _face_minimiser(M, lin, s, S)
        if ray is None and np.all(target > 0):
            return S, target, n_iter
        move = target - lam if ray is None else ray
        shrink = move < 0
        theta = float(np.min(lam[shrink] / -move[shrink])) if shrink.any() else 1.0
        if ray is None:
            theta = min(theta, 1.0)
        lam = lam + theta * move
        keep = lam > 1e-15
        S = [k for k, kept in zip(S, keep, strict=True) if kept]
        lam = lam[keep] / lam[keep].sum()
        if len(S) == 1:
            break
    return S, lam, n_iter


def dual_solve(
    M: np.ndarray, sqrt_phi: float, *, max_iter: int = 2000, tol: float = 1e-13
) -> tuple[np.ndarray, int, np.ndarray | None]:
    """Minimise ``dual_objective`` over the simplex exactly (any T).

    A simplicial-decomposition method in the style of Wolfe's min-norm-point algorithm (mgda.py): the objective
    depends on w only through x = g_w, a convex function on the polytope of the gradients, smooth except at
    x = 0. Major step: add the vertex with the smallest directional derivative (Frank-Wolfe); minor steps:
    move to the exact minimiser over the active vertices' affine hull (:func:`_face_minimiser`), or as far as
    the simplex allows toward it, dropping the vertex whose weight reaches 0. Each step decreases the objective,
    and the method stops with the Frank-Wolfe gap below ``tol`` (relative to the largest squared gradient norm).

    At the kink x = 0 (reachable only when 0 is in the gradients' convex hull) vertex tests do not suffice: x = 0
    is optimal iff ``||Pi(-g0)|| <= sqrt(phi)``, Pi the projection onto the cone of the gradients
    (:func:`nnls_gram`; for unit x in that cone, x . g0 + sqrt(phi) >= 0 exactly then). If it is not, the
    projection itself is a point with a negative objective to restart from.

    Returns
    -------
    w : np.ndarray (T,)
        Optimal convex weights.
    n_iter : int
        Major + minor steps used.
    mu : np.ndarray (T,) or None
        At a kink optimum (g_w = 0), the NNLS coefficients: the CAGrad direction is then g0 + mu @ G, the point
        of the ball closest to g0 that hurts no task; None otherwise.
    """
    T = M.shape[0]
    peak = float(np.max(np.abs(M)))
    if peak == 0.0:
        return np.full(T, 1.0 / T), 0, None  # all gradients zero: every w is optimal
    # the minimiser is scale-free (f(w; M/k, s/sqrt(k)) = f(w; M, s)/sqrt(k)): work at unit scale
    M = M / peak
    s = sqrt_phi / np.sqrt(peak)
    lin = M.sum(axis=1) / T  # g_k . g0
    vertex = lin + s * np.sqrt(np.maximum(np.diag(M), 0.0))
    S = [int(np.argmin(vertex))]
    lam = np.ones(1)
    n_iter = 0
    while n_iter < max_iter:
        S, lam, n_iter = _minor_steps(M, lin, s, S, lam, n_iter, max_iter)
        w = np.zeros(T)
        w[S] = lam
        Mw = M @ w
        norm = np.sqrt(max(float(w @ Mw), 0.0))
        # ||g_w||^2 from the Gram matrix carries rounding errors of ~1e-16, so ||g_w|| below ~1e-8 is 0
        if norm <= 1e-7:
            mu = nnls_gram(M, lin)
            if np.sqrt(max(float(mu @ M @ mu), 0.0)) <= s * (1.0 + 1e-12) or not mu.any():
                return w, n_iter, mu
            S = [int(k) for k in np.nonzero(mu)[0]]  # linearly independent, objective < 0: restart there
            lam = mu[S] / mu[S].sum()
            continue
        grad = lin + s * Mw / norm
        j = int(np.argmin(grad))
        if grad @ w - grad[j] <= tol or j in S:
            break
        S.append(j)
        lam = np.append(lam, 0.0)
    w = np.zeros(T)
    w[S] = lam
    if np.sqrt(max(float(w @ M @ w), 0.0)) <= 1e-6:
        # stopped next to the kink, where the gradient of ||x|| turns with every rounding error: if the kink
        # test passes, the optimum is g_w = 0 up to the tolerance (objective >= 0 on the whole cone)
        mu = nnls_gram(M, lin)
        if np.sqrt(max(float(mu @ M @ mu), 0.0)) <= s * (1.0 + 1e-9):
            w_min, _ = min_norm_weights(M)  # the hull's point nearest 0 is the kink's best witness
            if w_min @ M @ w_min < w @ M @ w:
                w = w_min
            return w, n_iter, mu
    return w, n_iter, None


@register_combiner
class CAGrad(Combiner):
    """Conflict-averse gradient descent (Liu et al. 2021): the best worst-task improvement near the mean gradient.

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
        mu = None
        M = G @ G.T
        if T == 1:
            w = np.ones(1)
        elif T == 2:
            x = two_task_x(G[0], G[1], sqrt_phi)
            w = np.array([x, 1.0 - x])
        else:
            w, n_iter, mu = dual_solve(M, sqrt_phi, max_iter=self.max_iter)
        gw = w @ G
        gw_norm = np.linalg.norm(gw)
        if mu is None and gw_norm > 1e-12 * np.linalg.norm(G, axis=1).max():
            lam = sqrt_phi / gw_norm
            coef = lam * w
        elif sqrt_phi == 0.0 or (mu is not None and not mu.any()):
            lam, coef = 0.0, np.zeros(T)  # c = 0 or g0 = 0: the ball is the point g0
        else:
            # the optimum is the kink g_w = 0 (0 in the gradients' hull, best worst-task improvement 0): the
            # official formula would divide by ~0; the optimal d closest to g0 is g0 + mu @ G with the NNLS
            # coefficients (it hurts no task and lies in the ball)
            if mu is None:
                peak = float(np.max(np.abs(M)))
                mu = nnls_gram(M / peak, M.sum(axis=1) / (T * peak))
            reach = np.sqrt(max(float(mu @ M @ mu), 0.0))
            coef = mu * min(1.0, sqrt_phi / reach) if reach > 0 else mu
            lam = float(coef.sum())
        rescale = 1.0 + self.c**2
        direction = (g0 + coef @ G) / rescale
        task_weights = (1.0 / T + coef) / rescale
        return CombineResult(
            direction, task_weights, {"lambda": float(lam), "gw_norm": float(gw_norm), "n_iter": int(n_iter)}
        )


def simplex_weights(
    M: np.ndarray, sqrt_phi: float, *, max_iter: int = 2000, tol: float = 1e-13
) -> tuple[np.ndarray, int]:
    """``min_{w in simplex} dual_objective(w)``: the weights (T,) and the number of steps (see :func:`dual_solve`)."""
    w, n_iter, _ = dual_solve(M, sqrt_phi, max_iter=max_iter, tol=tol)
    return w, n_iter

"""IMTL-G, the gradient half of impartial multi-task learning (Liu et al., ICLR 2021, "Towards Impartial
Multi-task Learning").

IMTL-G looks for the update ``d = sum_k a_k g_k`` with ``sum_k a_k = 1`` whose projections on all UNIT gradients
are equal, ``u_k . d = c`` with u_k = g_k / |g_k|: no task is favoured by the step, whatever its gradient's
scale. The paper's closed form (with D = [g_1 - g_k], U = [u_1 - u_k], k >= 2) is equivalent to

    a  proportional to  (G G^T)^(-1) |g|        (|g| = the vector of gradient norms, G of shape (T, P)),

which is how torchjd's ``IMTLGWeighting`` computes it. In unit coordinates b_k = a_k |g_k| and with the cosine
matrix K = U U^T this is ``b = c K^(-1) 1``, ``a_k = b_k / |g_k|``; we solve it in that form.

Two tasks: a = (|g_2|, |g_1|) / (|g_1| + |g_2|) whatever the angle, so ``d = |g_1||g_2| / (|g_1| + |g_2|) (u_1 + u_2)``.

Conventions where the paper's formula breaks down:

- Singular K (parallel or anti-parallel gradients, more tasks than dimensions): ``b = K^+ 1``, the least-squares
  solution with the eigenvalues of K below ``RANK_TOL`` times the largest dropped. torchjd generalises the same
  way with pinv(G G^T) |g|; in unit coordinates the tasks' scales stay irrelevant, and the two agree whenever the
  gradients are linearly independent. If 1 has no component in the range of K (two anti-parallel gradients),
  no direction has equal non-zero projections and d = 0.
- The sign of the normalisation: we divide by ``|sum_k a_k|``, not ``sum_k a_k``. For three or more strongly
  conflicting tasks the sum can be negative, and the paper's normalisation then turns d into a direction along
  which every loss increases; with the absolute value d keeps positive projections (identical otherwise).
- Zero gradients (and negligible ones, ``base.NEGLIGIBLE``) have no direction: they get weight 0.
"""

from __future__ import annotations

import numpy as np

from .base import CombineResult, Combiner, active_rows, register_combiner, scaled_gram

# eigenvalues of the cosine matrix below RANK_TOL * largest count as zero: its entries carry rounding errors of
# ~1e-16, which would otherwise be divided by eigenvalues of the same size (exactly parallel gradients)
RANK_TOL = 1e-12


def imtl_weights(M: np.ndarray) -> tuple[np.ndarray, int]:
    """IMTL-G's weights from a Gram matrix ``M`` (T, T) with a positive diagonal (no negligible rows).

    Returns the weights (T,), normalised to ``|sum| = 1`` (all zero when no direction has equal non-zero
    projections), and the rank of the cosine matrix.
    """
    T = M.shape[0]
    n = np.sqrt(np.diag(M))
    K = M / np.outer(n, n)
    lam, V = np.linalg.eigh(K)
    keep = lam > RANK_TOL * lam.max()
    coef = V[:, keep].T @ np.ones(T)
    # 1 orthogonal to the range of K (up to rounding): no direction with equal non-zero projections
    if np.linalg.norm(coef) <= 1e-8 * np.sqrt(T):
        return np.zeros(T), int(keep.sum())
    a = (V[:, keep] @ (coef / lam[keep])) / n
    total = a.sum()
    if abs(total) <= 1e-12 * np.abs(a).sum():
        return np.zeros(T), int(keep.sum())
    return a / abs(total), int(keep.sum())


@register_combiner
class IMTLG(Combiner):
    """IMTL-G: the convex-sum direction with equal projections on all unit task gradients.

    Two tasks use the closed form a = (|g_2|, |g_1|) / (|g_1| + |g_2|): it needs no cosine, whereas solving
    K b = 1 for nearly parallel gradients divides K's rounding errors by 1 - cos theta.

    ``info``: ``projection`` (the common projection u_k . d, mean over tasks in the least-squares case),
    ``spread`` (max - min of the projections: 0 when they are exactly equal) and ``rank`` (of the cosine matrix).
    """

    name = "imtl_g"

    def _combine(self, G, rng):
        T = G.shape[0]
        M, e = scaled_gram(G)  # the weights are scale-free: the power of two drops out
        active = active_rows(M)
        weights = np.zeros(T)
        info = {"projection": 0.0, "spread": 0.0, "rank": 0}
        if active.size == 0:
            return CombineResult(np.zeros(G.shape[1]), weights, info)
        Ma = M[np.ix_(active, active)]
        n = np.sqrt(np.diag(Ma))
        if active.size == 2:
            cos = Ma[0, 1] / (n[0] * n[1])
            weights[active] = n[::-1] / n.sum()
            info["rank"] = 1 if cos >= 1.0 - RANK_TOL or cos <= RANK_TOL - 1.0 else 2
        else:
            weights[active], info["rank"] = imtl_weights(Ma)
        if np.any(weights):
            # u_k . d = 2^e (M a)_k / n_k in the scaled units
            proj = np.ldexp(Ma @ weights[active] / n, e)
            info["projection"] = float(proj.mean())
            info["spread"] = float(proj.max() - proj.min())
        return CombineResult(weights @ G, weights, info)

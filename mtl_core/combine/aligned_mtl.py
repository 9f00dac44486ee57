"""Aligned-MTL: independent component alignment (Senushkin et al., CVPR 2023, "Independent Component Alignment
for Multi-Task Learning").

Aligned-MTL replaces the gradient matrix by the closest matrix whose singular values are all equal, so that the
linear system of the task gradients has condition number 1, and steps along the sum of its rows. With the
eigendecomposition of the Gram matrix ``G G^T = V Lambda V^T`` (G of shape (T, P); the paper writes G^T G) and
its R non-zero eigenvalues, the balance transformation is

    B = sqrt(lambda_min) V Lambda^(-1/2) V^T       (rank-truncated: V (T, R), lambda_min the smallest kept),

and we follow LibMTL's convention for the weights, ``w = B 1`` (torchjd multiplies B by a preference vector that
defaults to 1/T, which is the same direction T times shorter). The direction is ``d = w @ G``. With the SVD
G = V S W^T this is d = sigma_min * W V^T 1: all singular directions of the gradients are kept but each gets the
smallest singular value's length, so an ill-conditioned gradient system (nearly parallel or very unequal
gradients) takes a short step, and the condition number sigma_max / sigma_min is the quantity to watch.

Rank truncation as in LibMTL and torchjd: eigenvalues at or below ``lambda_max * T * eps`` are dropped, with eps of
float64 as torchjd takes the matrix's dtype (LibMTL's ``torch.finfo().eps`` is float32's, 1.2e-7). Exactly parallel
gradients therefore have R = 1 and B = v v^T, whose direction is the plain sum, while nearly parallel ones have a
tiny sigma_min and a tiny step: the method is discontinuous there by construction. All-zero gradients give zero
weights (torchjd returns B = I for rank 0; the direction is 0 either way), and zero rows get weight exactly 0.
"""

from __future__ import annotations

import numpy as np

from .base import CombineResult, Combiner, active_rows, register_combiner, scaled_gram


def balance_weights(M: np.ndarray) -> tuple[np.ndarray, int, float]:
    """LibMTL's Aligned-MTL weights ``B 1`` from a Gram matrix ``M`` (T, T).

    Returns
    -------
    w : np.ndarray (T,)
    rank : int
        Number of eigenvalues kept.
    cond : float
        Condition number of the kept part of the gradient system, sqrt(lambda_max / lambda_min) (1.0 at rank 0).
    """
    T = M.shape[0]
    if T == 0:
        return np.zeros(0), 0, 1.0
    lam, V = np.linalg.eigh(M)
    keep = lam > lam.max() * T * np.finfo(np.float64).eps
    if not keep.any():
        return np.zeros(T), 0, 1.0
    lam, V = lam[keep], V[:, keep]
    B = np.sqrt(lam.min()) * (V / np.sqrt(lam)) @ V.T
    return B @ np.ones(T), int(keep.sum()), float(np.sqrt(lam.max() / lam.min()))


@register_combiner
class AlignedMTL(Combiner):
    """Aligned-MTL: ``d = (B 1) @ G`` with the balance transformation B of the Gram matrix (LibMTL's scaling).

    ``info``: ``rank`` (eigenvalues kept) and ``cond`` (sigma_max / sigma_min of the kept gradient system).
    """

    name = "aligned_mtl"

    def _combine(self, G, rng):
        M, _ = scaled_gram(G)  # B is invariant to a common scale of G
        # zero rows only add zero eigenvalues, which the truncation drops anyway; solving without them gives them
        # exactly 0 instead of rounding noise from the eigenvectors
        active = active_rows(M)
        weights = np.zeros(G.shape[0])
        weights[active], rank, cond = balance_weights(M[np.ix_(active, active)])
        return CombineResult(weights @ G, weights, {"rank": rank, "cond": cond})

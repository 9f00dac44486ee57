"""PCGrad, "gradient surgery" (Yu et al. 2020, Algorithm 1).

For every task i, start from g_i' = g_i and visit the other tasks j in a random order. Whenever g_i' conflicts
with the ORIGINAL g_j (negative dot product), remove the conflicting component:

    g_i' <- g_i' - (g_i' . g_j) / ||g_j||^2 * g_j

The direction is sum_i g_i'. Without any conflict nothing is projected and the result is the plain sum. With
three or more tasks the result depends on the visiting order, which is drawn from ``rng``.
"""

from __future__ import annotations

import numpy as np

from .base import CombineResult, Combiner, register_combiner


@register_combiner
class PCGrad(Combiner):
    """Projecting Conflicting Gradients.

    ``task_weights`` are tracked exactly: every g_i' is a linear combination of the original rows, so the
    direction is ``task_weights @ G``. ``info``: ``n_conflicts`` (conflicting pairs i<j among the original
    gradients) and ``n_projections`` (projections performed).
    """

    name = "pcgrad"
    needs_rng = True

    def _combine(self, G, rng):
        T = G.shape[0]
        sq_norms = np.einsum("ij,ij->i", G, G)
        projected = G.copy()
        coef = np.eye(T)  # projected[i] == coef[i] @ G
        n_projections = 0
        for i in range(T):
            for j in rng.permutation(T):
                # a zero g_j has no direction to conflict with (and would divide by zero)
                if j == i or sq_norms[j] == 0.0:
                    continue
                dot = projected[i] @ G[j]
                if dot < 0.0:
                    step = dot / sq_norms[j]
                    projected[i] -= step * G[j]
                    coef[i, j] -= step
                    n_projections += 1
        gram = G @ G.T
        n_conflicts = int(np.sum(np.triu(gram < 0.0, k=1)))
        return CombineResult(
            projected.sum(axis=0), coef.sum(axis=0), {"n_conflicts": n_conflicts, "n_projections": n_projections}
        )

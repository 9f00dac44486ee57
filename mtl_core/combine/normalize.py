"""Gradient normalisation: rescale every task gradient to a common norm, then sum.

The common norm is the mean of the NON-ZERO task-gradient norms, so the total length budget is kept while no
task can dominate by scale alone. A zero gradient (e.g. no labels for that task in the batch) stays zero and
does not pull the common norm down.
"""

from __future__ import annotations

import numpy as np

from .base import CombineResult, Combiner, register_combiner


@register_combiner
class Normalize(Combiner):
    """``direction = sum_k (m / ||g_k||) g_k`` with ``m`` = mean non-zero norm."""

    name = "normalize"

    def _combine(self, G, rng):
        norms = np.linalg.norm(G, axis=1)
        nonzero = norms > 0
        if not nonzero.any():
            return CombineResult(np.zeros(G.shape[1]), np.zeros(G.shape[0]), {"common_norm": 0.0})
        common = norms[nonzero].mean()
        weights = np.where(nonzero, common / np.where(nonzero, norms, 1.0), 0.0)
        direction = (G * weights[:, None]).sum(axis=0)
        return CombineResult(direction, weights, {"common_norm": float(common)})

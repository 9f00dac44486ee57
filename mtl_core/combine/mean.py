"""Mean: the average task gradient, ``d = (1/T) sum_k g_k`` (the sum with a learning rate T times smaller)."""

from __future__ import annotations

import numpy as np

from .base import CombineResult, Combiner, register_combiner


@register_combiner
class Mean(Combiner):
    """``direction = G.mean(axis=0)``; task_weights all 1/T."""

    name = "mean"

    def _combine(self, G, rng):
        return CombineResult(G.mean(axis=0), np.full(G.shape[0], 1.0 / G.shape[0]), {})

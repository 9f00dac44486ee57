"""Sum: the plain multi-task gradient, ``d = sum_k g_k`` (what backprop of the summed loss gives)."""

from __future__ import annotations

import numpy as np

from .base import CombineResult, Combiner, register_combiner


@register_combiner
class Sum(Combiner):
    """``direction = G.sum(axis=0)``; task_weights all 1."""

    name = "sum"

    def _combine(self, G, rng):
        return CombineResult(G.sum(axis=0), np.ones(G.shape[0]), {})

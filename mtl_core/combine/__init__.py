"""Gradient-combination methods: one file per method, all sharing :class:`Combiner` from base.py.

>>> c = make_combiner("cagrad", c=0.5)
>>> out = c.combine(G, rng=rng)     # out.direction (P,), out.task_weights (T,) or None, out.info
"""
from __future__ import annotations

import inspect

from .base import COMBINERS, CombineResult, Combiner, project_simplex, register_combiner
# importing each file runs its @register_combiner decorator once
from . import sum, mean, pcgrad, mgda, cagrad, normalize  # noqa: E402,F401
from .sum import Sum
from .mean import Mean
from .pcgrad import PCGrad
from .mgda import MGDA
from .cagrad import CAGrad
from .normalize import Normalize


def combiner_settings(name: str) -> dict:
    """Setting names of a registered combiner and their defaults."""
    cls = _lookup(name)
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind == p.KEYWORD_ONLY}


def _lookup(name):
    if name not in COMBINERS:
        raise ValueError(f"unknown combiner {name!r}; valid names: {sorted(COMBINERS)}")
    return COMBINERS[name]


def make_combiner(name: str, **settings) -> Combiner:
    """Build the combiner registered as ``name``.

    Raises ValueError for an unknown name (listing the valid ones) or an unknown setting (naming it and listing
    the valid ones); the class itself validates each setting's value.
    """
    cls = _lookup(name)
    valid = combiner_settings(name)
    for key in settings:
        if key not in valid:
            raise ValueError(f"unknown setting {key!r} for combiner {name!r}; valid settings: {sorted(valid)}")
    return cls(**settings)


__all__ = ["COMBINERS", "CombineResult", "Combiner", "register_combiner", "make_combiner", "combiner_settings",
           "project_simplex", "Sum", "Mean", "PCGrad", "MGDA", "CAGrad", "Normalize"]

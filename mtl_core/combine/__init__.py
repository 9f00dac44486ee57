"""Gradient-combination methods: one file per method, all sharing :class:`Combiner` from base.py.

>>> c = make_combiner("cagrad", c=0.5)
>>> out = c.combine(G, rng=rng)     # out.direction (P,), out.task_weights (T,) or None, out.info

Registered: sum, mean, pcgrad, mgda, cagrad (c), normalize, nash_mtl, imtl_g, fairgrad (alpha), aligned_mtl.
"""

from __future__ import annotations

from .base import COMBINERS, CombineResult, Combiner, project_simplex, register_combiner

# importing each file runs its @register_combiner decorator once
from . import sum, mean, pcgrad, mgda, cagrad, normalize, nash_mtl, fairgrad, imtl_g, aligned_mtl  # noqa: E402,F401
from .sum import Sum
from .mean import Mean
from .pcgrad import PCGrad
from .mgda import MGDA
from .cagrad import CAGrad
from .normalize import Normalize
from .nash_mtl import NashMTL
from .imtl_g import IMTLG
from .fairgrad import FairGrad
from .aligned_mtl import AlignedMTL


def combiner_settings(name: str) -> dict:
    """Setting names of a registered combiner and their defaults."""
    return COMBINERS.settings(name)


def make_combiner(name: str, **settings) -> Combiner:
    """Build the combiner registered as ``name``.

    Raises ValueError for an unknown name (listing the valid ones) or an unknown setting (naming it and listing
    the valid ones); the class itself validates each setting's value.
    """
    return COMBINERS.make(name, **settings)


__all__ = [
    "COMBINERS",
    "CombineResult",
    "Combiner",
    "register_combiner",
    "make_combiner",
    "combiner_settings",
    "project_simplex",
    "Sum",
    "Mean",
    "PCGrad",
    "MGDA",
    "CAGrad",
    "Normalize",
    "NashMTL",
    "IMTLG",
    "FairGrad",
    "AlignedMTL",
]

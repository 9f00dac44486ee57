"""Loss-weighting methods: one file per method, all sharing :class:`Weighting` from base.py.

>>> w = make_weighting("uncertainty", n_tasks=2, lr=0.05)
>>> weights = w.step([1.0, 2.0], step=0)       # (T,) weights to use now
"""
from __future__ import annotations

import inspect

from .base import WEIGHTINGS, Weighting, register_weighting
# importing each file runs its @register_weighting decorator once
from . import equal, fixed, uncertainty, gradnorm, loss_norm, dwa, performance, curriculum  # noqa: E402,F401
from .equal import Equal
from .fixed import Fixed
from .uncertainty import Uncertainty
from .gradnorm import GradNorm
from .loss_norm import LossNorm
from .dwa import DWA
from .performance import Performance
from .curriculum import Curriculum


def weighting_settings(name: str) -> dict:
    """Setting names of a registered weighting and their defaults (``n_tasks`` excluded)."""
    cls = _lookup(name)
    return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
            if p.kind == p.KEYWORD_ONLY}


def _lookup(name):
    if name not in WEIGHTINGS:
        raise ValueError(f"unknown weighting {name!r}; valid names: {sorted(WEIGHTINGS)}")
    return WEIGHTINGS[name]


def make_weighting(name: str, n_tasks: int, **settings) -> Weighting:
    """Build the weighting registered as ``name`` for ``n_tasks`` tasks.

    Raises ValueError for an unknown name (listing the valid ones) or an unknown setting (naming it and listing
    the valid ones); the class itself validates each setting's value.
    """
    cls = _lookup(name)
    valid = weighting_settings(name)
    for key in settings:
        if key not in valid:
            raise ValueError(f"unknown setting {key!r} for weighting {name!r}; valid settings: {sorted(valid)}")
    return cls(n_tasks, **settings)


__all__ = ["WEIGHTINGS", "Weighting", "register_weighting", "make_weighting", "weighting_settings",
           "Equal", "Fixed", "Uncertainty", "GradNorm", "LossNorm", "DWA", "Performance", "Curriculum"]

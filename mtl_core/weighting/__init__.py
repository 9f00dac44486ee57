"""Loss-weighting methods: one file per method, all sharing :class:`Weighting` from base.py.

>>> w = make_weighting("uncertainty", n_tasks=2, lr=0.05)
>>> weights = w.step([1.0, 2.0], step=0)       # (T,) weights to use now
"""

from __future__ import annotations

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
    return WEIGHTINGS.settings(name)


def make_weighting(name: str, n_tasks: int, **settings) -> Weighting:
    """Build the weighting registered as ``name`` for ``n_tasks`` tasks.

    Raises ValueError for an unknown name (listing the valid ones) or an unknown setting (naming it and listing
    the valid ones); the class itself validates each setting's value.
    """
    return WEIGHTINGS.make(name, n_tasks, **settings)


__all__ = [
    "WEIGHTINGS",
    "Weighting",
    "register_weighting",
    "make_weighting",
    "weighting_settings",
    "Equal",
    "Fixed",
    "Uncertainty",
    "GradNorm",
    "LossNorm",
    "DWA",
    "Performance",
    "Curriculum",
]

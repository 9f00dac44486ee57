"""mtl_core: multi-task learning from scratch in NumPy.

Submodules load on first use (``mtl_core.nets``, ``mtl_core.trainer`` ...) so that importing the package in the
browser costs almost nothing. See docs/architecture.md for the contracts between parts.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# public name -> submodule that defines it
_EXPORTS = {
    "TaskSpec": "tasks",
    "MultiTaskNet": "nets",
    "SeparateNets": "nets",
    "CrossStitchNet": "nets",
    "TaskGrads": "nets",
    "TwoHead": "twohead",
    "two_head_loss": "twohead",
    "Trainer": "trainer",
    "StepRecord": "trainer",
    "SGD": "optim",
    "Adam": "optim",
    "make_weighting": "weighting",
    "WEIGHTINGS": "weighting",
    "make_combiner": "combine",
    "COMBINERS": "combine",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_EXPORTS))

"""Common base class and registry of the loss-weighting methods.

A weighting turns the per-task losses of one training step into per-task weights; the trainer then scales each
task's gradient by its weight. Methods with internal state (learned log-variances, GradNorm weights, loss
history) update it inside ``step``, so call ``step`` exactly once per training step.
"""

from __future__ import annotations

import inspect

import numpy as np

from .._registry import Registry
from .._checks import finite_array, integer

WEIGHTINGS = Registry("weighting")
register_weighting = WEIGHTINGS.register  # class decorator: each name once


class Weighting:
    """Base class: validates the inputs of ``step`` and delegates to ``_weights``.

    Subclasses set ``name`` (registry key), ``needs_grads`` / ``needs_metrics`` (what the trainer must pass),
    take their settings as explicit keyword arguments of ``__init__`` and implement ``_weights``.

    Parameters
    ----------
    n_tasks : int
        T, the number of tasks (>= 1).
    """

    name = "base"
    needs_grads = False
    needs_metrics = False

    def __init__(self, n_tasks: int):
        self.n_tasks = integer("n_tasks", n_tasks, low=1)
        self.n_steps = 0

    # --- public API -------------------------------------------------------------------------------------------
    def step(self, losses, *, step: int, grads_last=None, metrics=None) -> np.ndarray:
        """Weights to use for this step's losses; updates the method's own state.

        Parameters
        ----------
        losses : array-like (T,)
            Per-task losses of this step, finite and >= 0.
        step : int
            Global training step (>= 0). Only schedule-based methods (curriculum) read it; the others count
            their own calls so that they stay correct however the trainer numbers its steps.
        grads_last : array-like (T, Q), optional
            Unweighted per-task gradients of the last shared layer (GradNorm needs them).
        metrics : array-like (T,), optional
            Per-task scores in [0, 1], higher = better (performance weighting).

        Returns
        -------
        np.ndarray (T,)
            Non-negative weights (a fresh array, safe to log).
        """
        losses = self._check_losses(losses)
        step = integer("step", step, low=0)
        if grads_last is not None or self.needs_grads:
            grads_last = self._check_grads_last(grads_last)
        if metrics is not None:
            metrics = self._check_metrics(metrics)
        weights = np.array(self._weights(losses, step, grads_last, metrics), dtype=np.float64)
        self.n_steps += 1
        return weights

    def state(self) -> dict:
        """Loggable internals as JSON-friendly values (lists and floats)."""
        return {}

    def reset(self) -> None:
        """Forget all state learned from previous steps (settings are kept)."""
        self.n_steps = 0

    def settings(self) -> dict:
        """The keyword settings this instance was built with (name -> value)."""
        out = {}
        for p in inspect.signature(type(self).__init__).parameters.values():
            if p.kind == p.KEYWORD_ONLY:
                out[p.name] = getattr(self, p.name)
        return out

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.settings().items())
        return f"{type(self).__name__}(n_tasks={self.n_tasks}{', ' if args else ''}{args})"

    # --- for subclasses ---------------------------------------------------------------------------------------
    def _weights(self, losses, step, grads_last, metrics) -> np.ndarray:
        raise NotImplementedError

    def _check_losses(self, losses) -> np.ndarray:
        losses = finite_array("losses", losses, ndim=1).astype(np.float64)
        if losses.shape != (self.n_tasks,):
            raise ValueError(f"losses must have shape ({self.n_tasks},), got {losses.shape}")
        if np.any(losses < 0):
            raise ValueError(f"losses must be >= 0, got {losses.tolist()}")
        return losses

    def _check_grads_last(self, grads_last) -> np.ndarray:
        if grads_last is None:
            raise ValueError(f"grads_last is required by the {self.name!r} weighting (shape (T, Q))")
        g = finite_array("grads_last", grads_last, ndim=2).astype(np.float64)
        if g.shape[0] != self.n_tasks:
            raise ValueError(f"grads_last must have {self.n_tasks} rows, got shape {g.shape}")
        return g

    def _check_metrics(self, metrics) -> np.ndarray:
        m = finite_array("metrics", metrics, ndim=1).astype(np.float64)
        if m.shape != (self.n_tasks,):
            raise ValueError(f"metrics must have shape ({self.n_tasks},), got {m.shape}")
        if np.any((m < 0) | (m > 1)):
            raise ValueError(f"metrics must lie in [0, 1] (higher = better), got {m.tolist()}")
        return m


def relative_to_initial(losses: np.ndarray, initial: np.ndarray) -> np.ndarray:
    """``losses / initial`` with 1 where the initial loss was 0 (nothing to normalise by)."""
    safe = np.where(initial > 0, initial, 1.0)
    return np.where(initial > 0, losses / safe, 1.0)


def update_initial(initial: np.ndarray | None, losses: np.ndarray) -> np.ndarray:
    """Per-task "initial loss": the first POSITIVE loss seen for each task (0 until there is one).

    A task may have no labels in the first batch (its loss is then reported as 0); taking its first real loss
    instead keeps the "relative to initial" ratios meaningful.
    """
    if initial is None:
        return losses.copy()
    return np.where(initial > 0, initial, losses)

"""Common base class, result type and registry of the gradient-combination methods.

A combiner receives the per-task gradients ``G`` (T, P) of the shared parameters (already multiplied by the
loss weights) and returns ONE update direction (P,). The update is ``params -= lr * direction``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field

import numpy as np

from .._registry import Registry
from .._checks import finite_array, generator

COMBINERS = Registry("combiner")
register_combiner = COMBINERS.register  # class decorator: each name once


@dataclass
class CombineResult:
    """Output of :meth:`Combiner.combine`.

    Attributes
    ----------
    direction : np.ndarray (P,)
        Descent direction.
    task_weights : np.ndarray (T,) or None
        Coefficients with ``direction == task_weights @ G`` (up to rounding) when the method is a linear
        combination of the task gradients, else None.
    info : dict
        Loggable scalars (floats / ints).
    """

    direction: np.ndarray
    task_weights: np.ndarray | None
    info: dict = field(default_factory=dict)


class Combiner:
    """Base class: validates ``G`` (and ``rng``) and delegates to ``_combine``.

    Subclasses set ``name`` (registry key), take their settings as explicit keyword arguments of ``__init__``
    (a method without settings inherits this class's ``__init__``, which takes none), and implement
    ``_combine(G, rng) -> CombineResult``. ``needs_rng`` says whether ``rng`` is required.
    """

    name = "base"
    needs_rng = False

    def __init__(self):
        pass

    def combine(self, G, *, rng: np.random.Generator | None = None) -> CombineResult:
        """Combine the task gradients.

        Parameters
        ----------
        G : array-like (T, P)
            Per-task (weighted) gradients, finite. Zero rows are allowed.
        rng : np.random.Generator
            Source of randomness (PCGrad's visiting order); ignored by deterministic methods.

        Returns
        -------
        CombineResult
        """
        G = finite_array("G", G, ndim=2).astype(np.float64, copy=False)
        if G.shape[0] < 1 or G.shape[1] < 1:
            raise ValueError(f"G must have at least one task row and one parameter column, got shape {G.shape}")
        if rng is not None or self.needs_rng:
            rng = generator("rng", rng)
        return self._combine(G, rng)

    def _combine(self, G: np.ndarray, rng) -> CombineResult:
        raise NotImplementedError

    def settings(self) -> dict:
        """The keyword settings this instance was built with (name -> value)."""
        return {
            p.name: getattr(self, p.name)
            for p in inspect.signature(type(self).__init__).parameters.values()
            if p.kind == p.KEYWORD_ONLY
        }

    def __repr__(self):
        return f"{type(self).__name__}(" + ", ".join(f"{k}={v!r}" for k, v in self.settings().items()) + ")"


# A task gradient this many times smaller than the largest one counts as zero in the Gram-based solvers
# (Nash-MTL, FairGrad, IMTL-G): their weights grow like 1/||g_k|| or faster and would leave the float range.
NEGLIGIBLE = 1e-100


def scaled_gram(G: np.ndarray) -> tuple[np.ndarray, int]:
    """Gram matrix of ``G`` scaled by an exact power of two.

    Parameters
    ----------
    G : np.ndarray (T, P)

    Returns
    -------
    M : np.ndarray (T, T)
        ``Gs @ Gs.T`` with ``Gs = G * 2**-e``, so ``G @ G.T == 4**e * M`` up to the rounding of the product.
    e : int
        The exponent, chosen so that ``max |Gs|`` lies in [0.5, 1).

    A power of two changes no digit of the mantissas, so a solver working on ``M`` gives bit-for-bit what it
    would give on ``G @ G.T`` had that not over- or underflowed; gradients from 1e-150 to 1e150 stay in range.
    """
    peak = float(np.max(np.abs(G))) if G.size else 0.0
    if peak == 0.0:
        return np.zeros((G.shape[0], G.shape[0])), 0
    e = int(np.frexp(peak)[1])
    Gs = np.ldexp(G, -e)
    return Gs @ Gs.T, e


def active_rows(M: np.ndarray) -> np.ndarray:
    """Indices of the tasks whose gradient norm (``sqrt(diag(M))``) is not negligible (see ``NEGLIGIBLE``)."""
    norms = np.sqrt(np.maximum(np.diag(M), 0.0))
    return np.nonzero(norms > NEGLIGIBLE * norms.max())[0] if norms.size and norms.max() > 0 else np.zeros(0, int)


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` (T,) onto the probability simplex {w >= 0, sum w = 1}.

    Sort-based algorithm (Held et al. 1974; Duchi et al. 2008): find the threshold tau so that
    ``max(v - tau, 0)`` sums to 1.
    """
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    k = np.arange(1, v.size + 1)
    positive = np.nonzero(u - css / k > 0)[0]
    # mathematically index 0 always qualifies; with |v| > 2**53 rounding can hide it
    rho = positive[-1] if positive.size else 0
    tau = css[rho] / (rho + 1.0)
    return np.maximum(v - tau, 0.0)

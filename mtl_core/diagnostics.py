"""Gradient diagnostics: how much do the tasks agree?

All functions take the per-task gradient matrix ``G`` of shape (T, P) (row k = dL_k/dparams, usually restricted
to the shared parameters). A zero row (a task with no labels in the batch, or a dead layer) has no direction, so
its cosines are reported as 0 rather than NaN.
"""

from __future__ import annotations

import numpy as np

from ._checks import finite_array, integer, real


def _grads(G) -> np.ndarray:
    G = finite_array("G", G, ndim=2).astype(np.float64, copy=False)
    if G.shape[0] < 1:
        raise ValueError(f"G must have at least one row (task), got shape {G.shape}")
    return G


def _scaled_rows(G: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows divided by their largest |entry| (zero rows stay zero) and those maxima, shapes (T, P), (T,).

    Squaring a tiny gradient (|g| ~ 1e-200) underflows to 0; scaling first keeps norms and directions exact.
    """
    peak = np.max(np.abs(G), axis=1)
    safe = np.where(peak > 0, peak, 1.0)
    return G / safe[:, None], peak


def task_norms(G) -> np.ndarray:
    """Euclidean norm of every task gradient: (T, P) -> (T,)."""
    H, peak = _scaled_rows(_grads(G))
    return peak * np.linalg.norm(H, axis=1)


def cosine_matrix(G) -> np.ndarray:
    """Pairwise cosine similarities (T, T); entries involving a zero-norm row are 0 (diagonal too)."""
    H, _ = _scaled_rows(_grads(G))
    norms = np.linalg.norm(H, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    unit = H / safe[:, None]  # zero rows stay zero -> their cosines are 0
    cos = unit @ unit.T
    # rounding can push |cos| a hair past 1; clip so arccos-style consumers never see NaN
    return np.clip(cos, -1.0, 1.0)


def conflict_flags(G) -> np.ndarray:
    """Bool (T, T): True where two different tasks' gradients conflict (cosine < 0). Diagonal is False."""
    flags = cosine_matrix(G) < 0.0
    np.fill_diagonal(flags, False)
    return flags


class NegativeTransferMonitor:
    """Running watch on gradient conflict between every pair of tasks.

    Call ``update(G)`` once per training step. It keeps an exponential moving average of each pair's cosine
    and counts how often the pair conflicted (cosine < 0). ``report()`` flags a pair whose conflict rate exceeds
    ``threshold`` once at least ``warmup`` steps have been seen — persistent conflict is a symptom (not a proof)
    of negative transfer.

    Parameters
    ----------
    n_tasks : int
        T, >= 1.
    decay : float
        EMA decay in [0, 1): ``ema <- decay * ema + (1 - decay) * cos``; the first update sets ``ema = cos``.
    threshold : float
        Conflict rate in [0, 1] above which a pair is flagged.
    warmup : int
        Number of updates before any flag is raised, >= 0.
    task_names : sequence of str, optional
        Names used in the report; default "0", "1", ...
    """

    def __init__(self, n_tasks: int, *, decay: float = 0.9, threshold: float = 0.5, warmup: int = 50, task_names=None):
        self.n_tasks = integer("n_tasks", n_tasks, low=1)
        self.decay = real("decay", decay, low=0.0, high=1.0, high_open=True)
        self.threshold = real("threshold", threshold, low=0.0, high=1.0)
        self.warmup = integer("warmup", warmup, low=0)
        if task_names is None:
            task_names = [str(k) for k in range(self.n_tasks)]
        task_names = [str(n) for n in task_names]
        if len(task_names) != self.n_tasks:
            raise ValueError(f"task_names must have {self.n_tasks} names, got {len(task_names)}")
        self.task_names = task_names
        self.reset()

    def reset(self) -> None:
        """Forget everything seen so far."""
        self.n_steps = 0
        self.ema_cosine = np.zeros((self.n_tasks, self.n_tasks))
        self.conflict_counts = np.zeros((self.n_tasks, self.n_tasks), dtype=np.int64)

    def update(self, G) -> np.ndarray:
        """Record one step's gradients ``G`` (T, P); returns that step's cosine matrix (T, T)."""
        G = _grads(G)
        if G.shape[0] != self.n_tasks:
            raise ValueError(f"G must have {self.n_tasks} rows, got shape {G.shape}")
        cos = cosine_matrix(G)
        if self.n_steps == 0:
            self.ema_cosine = cos.copy()
        else:
            self.ema_cosine = self.decay * self.ema_cosine + (1.0 - self.decay) * cos
        flags = cos < 0.0
        np.fill_diagonal(flags, False)
        self.conflict_counts += flags
        self.n_steps += 1
        return cos

    @property
    def conflict_rate(self) -> np.ndarray:
        """(T, T) fraction of updates in which each pair conflicted (0 before any update)."""
        return self.conflict_counts / max(self.n_steps, 1)

    def report(self) -> dict:
        """JSON-friendly summary.

        Returns
        -------
        dict
            ``{"n_steps": int, "warmed_up": bool, "threshold": float,
            "pairs": [{"i", "j", "tasks": [a, b], "ema_cosine", "conflict_rate", "flag"}, ...] (i < j),
            "flagged": [[a, b], ...]}``
        """
        rate = self.conflict_rate
        warmed = self.n_steps >= self.warmup and self.n_steps > 0
        pairs, flagged = [], []
        for i in range(self.n_tasks):
            for j in range(i + 1, self.n_tasks):
                flag = bool(warmed and rate[i, j] > self.threshold)
                names = [self.task_names[i], self.task_names[j]]
                pairs.append(
                    {
                        "i": i,
                        "j": j,
                        "tasks": names,
                        "ema_cosine": float(self.ema_cosine[i, j]),
                        "conflict_rate": float(rate[i, j]),
                        "flag": flag,
                    }
                )
                if flag:
                    flagged.append(names)
        return {
            "n_steps": self.n_steps,
            "warmed_up": bool(warmed),
            "threshold": self.threshold,
            "pairs": pairs,
            "flagged": flagged,
        }

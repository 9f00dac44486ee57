"""Task samplers: which task's dataset to draw the next batch from, when tasks have separate datasets.

With dataset sizes n_k, the probability of picking task k is

* ``uniform``      : 1 / K                    (small tasks are over-sampled, big ones under-used)
* ``proportional`` : n_k / sum(n)             (every example equally likely; small tasks starve)
* ``temperature``  : n_k^alpha / sum(n^alpha) (alpha = 1 proportional, alpha = 0 uniform; in between the
  "temperature" T = 1/alpha of multilingual training, e.g. alpha = 0.3)
"""

from __future__ import annotations

import numpy as np

from . import _checks

METHODS = ("uniform", "proportional", "temperature")


class TaskSampler:
    """Draw task names with probabilities set by dataset sizes.

    Parameters
    ----------
    sizes : dict task name -> int >= 1
        Number of training examples of each task (insertion order = task order).
    method : {"uniform", "proportional", "temperature"}
    alpha : float >= 0
        Exponent of the temperature sampler (ignored by the other methods).
    """

    def __init__(self, sizes: dict, *, method: str = "uniform", alpha: float = 0.5):
        if not isinstance(sizes, dict) or not sizes:
            raise ValueError(f"sizes must be a non-empty dict task -> int, got {sizes!r}")
        for name, n in sizes.items():
            if not isinstance(name, str) or not name:
                raise ValueError(f"sizes keys must be non-empty strings, got {name!r}")
            _checks.integer(f"sizes[{name!r}]", n, low=1)
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.sizes = {k: int(v) for k, v in sizes.items()}
        self.method = method
        self.alpha = _checks.real("alpha", alpha, low=0.0)
        self.task_names = list(self.sizes)
        self._p = self._compute()

    @classmethod
    def from_datasets(cls, datasets: dict, **kwargs) -> "TaskSampler":
        """Build from ``{name: MultiTaskDataset}`` (e.g. ``make_unequal_tasks``), using each one's row count."""
        if not isinstance(datasets, dict):
            raise ValueError(f"datasets must be a dict name -> dataset, got {type(datasets).__name__}")
        return cls({k: int(d.n_samples) for k, d in datasets.items()}, **kwargs)

    def _compute(self) -> np.ndarray:
        n = np.array([self.sizes[k] for k in self.task_names], dtype=np.float64)
        if self.method == "uniform":
            w = np.ones_like(n)
        elif self.method == "proportional":
            w = n
        else:
            # divide by the largest first so that n**alpha cannot overflow for big alpha
            w = (n / n.max()) ** self.alpha
        return w / w.sum()

    def probabilities(self) -> dict[str, float]:
        """{task: probability}, summing to 1."""
        return {k: float(p) for k, p in zip(self.task_names, self._p)}

    def sample_indices(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """(n,) int array of indices into ``self.task_names``."""
        n = _checks.integer("n", n, low=0)
        rng = _checks.generator("rng", rng)
        return rng.choice(len(self.task_names), size=n, p=self._p)

    def sample(self, n: int, *, rng: np.random.Generator) -> np.ndarray:
        """(n,) array of task names (str), drawn independently with ``probabilities()``."""
        idx = self.sample_indices(n, rng=rng)
        return np.array(self.task_names)[idx] if n else np.array([], dtype=str)

    def __repr__(self):
        return f"TaskSampler({self.sizes}, method={self.method!r}, alpha={self.alpha})"

"""The seed exercise: a shared trunk with two regression heads and a fixed-weight loss.

::

    x --> Dense(H) --> ReLU --> h --+--> Dense(1) --> out_a
                                    +--> Dense(1) --> out_b

The heads share nothing but ``h``. Each of the three dense layers is initialised from its
own random stream (``np.random.SeedSequence(seed).spawn(3)``), so the heads start
independent. The combined loss is ``alpha * L_a + (1 - alpha) * L_b`` with MSE losses.

The classic pitfall: a head returns (N, 1); subtracting an (N,) target from it silently
broadcasts to (N, N). Here targets are flattened to (N,) and shapes are checked, never
broadcast.
"""

from __future__ import annotations

import numbers

import numpy as np

from ._checks import finite_array, integer, real


def _check_seed(seed) -> int:
    """Accept an int, or a float holding an integral value (3.0 -> 3; 3.5 is an error)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Real):
        raise ValueError(f"seed must be a non-negative integer (or integral float), got {seed!r}")
    if isinstance(seed, numbers.Integral):
        return integer("seed", seed, low=0)
    v = float(seed)
    if not np.isfinite(v):
        raise ValueError(f"seed must be finite, got {seed!r}")
    if v != np.floor(v):
        raise ValueError(f"seed must be integral-valued, got {seed!r}")
    if v < 0:
        raise ValueError(f"seed must be >= 0, got {seed!r}")
    return int(v)


def _lecun_normal(rng: np.random.Generator, fan_in: int, fan_out: int) -> np.ndarray:
    # variance 1 / fan_in (the default Dense kernel init in Flax)
    return rng.standard_normal((fan_in, fan_out)) / np.sqrt(fan_in)


class TwoHead:
    """Shared Dense(H) + ReLU trunk and two independent Dense(1) heads.

    Parameters
    ----------
    hidden : int, trunk width H (default 8)
    seed : int >= 0; streams 0, 1, 2 of ``SeedSequence(seed).spawn(3)`` initialise the
        trunk, head a and head b
    in_dim : int, optional; if None it is taken from ``x`` at the first forward

    Attributes (after initialisation)
    ----------
    W1 (D, H), b1 (H,), Wa (H, 1), ba (1,), Wb (H, 1), bb (1,)
    """

    def __init__(self, hidden: int = 8, seed: int = 0, in_dim: int | None = None):
        self.hidden = integer("hidden", hidden, low=1)
        self.seed = _check_seed(seed)
        self.in_dim = None
        streams = np.random.SeedSequence(self.seed).spawn(3)
        self._rngs = [np.random.default_rng(s) for s in streams]
        # heads do not depend on the input width, so they are drawn now
        self.Wa = _lecun_normal(self._rngs[1], self.hidden, 1)
        self.ba = np.zeros(1)
        self.Wb = _lecun_normal(self._rngs[2], self.hidden, 1)
        self.bb = np.zeros(1)
        self.W1 = self.b1 = None
        if in_dim is not None:
            self._init_trunk(integer("in_dim", in_dim, low=1))

    def _init_trunk(self, in_dim: int) -> None:
        self.in_dim = in_dim
        self.W1 = _lecun_normal(self._rngs[0], in_dim, self.hidden)
        self.b1 = np.zeros(self.hidden)

    def forward(self, x):
        """Both heads' outputs.

        Parameters
        ----------
        x : (N, D) finite

        Returns
        -------
        out_a : (N, 1)
        out_b : (N, 1)
        """
        x = finite_array("x", x, ndim=2).astype(np.float64, copy=False)
        if x.shape[0] < 1 or x.shape[1] < 1:
            raise ValueError(f"x must have at least one row and one column, got shape {x.shape}")
        if self.in_dim is None:
            self._init_trunk(x.shape[1])
        elif x.shape[1] != self.in_dim:
            raise ValueError(f"x must have {self.in_dim} columns (in_dim), got shape {x.shape}")
        h = np.maximum(x @ self.W1 + self.b1, 0.0)
        return h @ self.Wa + self.ba, h @ self.Wb + self.bb

    __call__ = forward


def _flat_target(name: str, y, n: int) -> np.ndarray:
    y = finite_array(name, y, ndim=(1, 2)).astype(np.float64, copy=False)
    if y.ndim == 2:
        if y.shape[1] != 1:
            raise ValueError(f"{name} must have shape ({n},) or ({n}, 1), got {y.shape}")
        y = y[:, 0]
    if y.shape[0] != n:
        raise ValueError(f"{name} must have {n} rows to match x, got shape {y.shape}")
    return y


def two_head_loss(seed, x, y_a, y_b, alpha, *, hidden: int = 8) -> np.ndarray:
    """Combined two-head MSE loss of a freshly initialised :class:`TwoHead`.

    Parameters
    ----------
    seed : int or integral float (cast to int)
    x : (N, D)
    y_a, y_b : (N,) or (N, 1) regression targets
    alpha : float in [0, 1], the weight of task a
    hidden : trunk width

    Returns
    -------
    (3,) array ``[alpha * L_a + (1 - alpha) * L_b, L_a, L_b]``
    """
    alpha = real("alpha", alpha, low=0.0, high=1.0)
    model = TwoHead(hidden=hidden, seed=_check_seed(seed))
    x = finite_array("x", x, ndim=2)
    n = x.shape[0]
    y_a = _flat_target("y_a", y_a, n)
    y_b = _flat_target("y_b", y_b, n)
    out_a, out_b = model.forward(x)
    # flatten the (N, 1) heads before subtracting: (N, 1) - (N,) would broadcast to (N, N)
    loss_a = float(np.mean((out_a[:, 0] - y_a) ** 2))
    loss_b = float(np.mean((out_b[:, 0] - y_b) ** 2))
    return np.array([alpha * loss_a + (1.0 - alpha) * loss_b, loss_a, loss_b])

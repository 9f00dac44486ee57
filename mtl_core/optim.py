"""Optimizers that update ONE flat parameter vector in place.

Every model keeps its parameters in a single 1-D array (see docs/architecture.md), so an optimizer is a few
vector operations. State (momentum buffer, Adam moments) is created lazily the first time ``step`` sees the
parameters and has their size and dtype; ``reset()`` forgets it.
"""

from __future__ import annotations

import numpy as np

from ._checks import real


def _check_pair(params, grad, state_size):
    if not isinstance(params, np.ndarray) or params.ndim != 1 or params.dtype.kind != "f":
        raise ValueError(
            f"params must be a 1-D float numpy array (updated in place), got "
            f"{type(params).__name__} {getattr(params, 'shape', '')}"
        )
    grad = np.asarray(grad)
    if grad.shape != params.shape:
        raise ValueError(f"grad must have the shape of params {params.shape}, got {grad.shape}")
    if grad.dtype.kind not in "biuf" or not np.all(np.isfinite(grad)):
        raise ValueError("grad must be numeric and finite (contains NaN or Inf)")
    if state_size is not None and state_size != params.size:
        raise ValueError(
            f"params has size {params.size} but the optimizer state has size {state_size}; "
            "call reset() before switching to other parameters"
        )
    return grad


class _Optimizer:
    """What every optimizer shares: a step size ``lr`` checked whenever it is set."""

    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value):
        # a setter so a UI slider or a schedule can change lr between steps with the same validation
        self._lr = real("lr", value, low=0.0, low_open=True)


class SGD(_Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum.

    ``v <- momentum * v + grad``; plain: ``params -= lr * v``; Nesterov: ``params -= lr * (grad + momentum * v)``
    (the PyTorch formulation, so both agree step for step).

    Parameters
    ----------
    lr : float
        Step size, > 0.
    momentum : float
        In [0, 1). 0 means no velocity buffer.
    nesterov : bool
        Look-ahead momentum; needs momentum > 0.
    """

    def __init__(self, lr: float, momentum: float = 0.0, nesterov: bool = False):
        self.lr = lr
        self.momentum = real("momentum", momentum, low=0.0, high=1.0, high_open=True)
        if not isinstance(nesterov, bool):
            raise ValueError(f"nesterov must be a bool, got {nesterov!r}")
        if nesterov and self.momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        self.nesterov = nesterov
        self.reset()

    def reset(self) -> None:
        """Forget the velocity buffer."""
        self.velocity = None
        self.n_steps = 0

    def step(self, params: np.ndarray, grad) -> np.ndarray:
        """Update ``params`` (P,) in place with ``grad`` (P,); returns ``params``."""
        grad = _check_pair(params, grad, None if self.velocity is None else self.velocity.size)
        if self.momentum == 0.0:
            params -= self.lr * grad
        else:
            if self.velocity is None:
                self.velocity = np.zeros_like(params)
            self.velocity *= self.momentum
            self.velocity += grad
            if self.nesterov:
                params -= self.lr * (grad + self.momentum * self.velocity)
            else:
                params -= self.lr * self.velocity
        self.n_steps += 1
        return params


class Adam(_Optimizer):
    """Adam (Kingma & Ba 2015) with bias correction.

    Parameters
    ----------
    lr : float
        Step size, > 0.
    betas : (float, float)
        Decay rates of the first and second moment estimates, each in [0, 1).
    eps : float
        Added to the root of the second moment, > 0.
    """

    def __init__(self, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr = lr
        try:
            b1, b2 = betas
        except (TypeError, ValueError):
            raise ValueError(f"betas must be a pair of floats, got {betas!r}") from None
        self.betas = (
            real("betas[0]", b1, low=0.0, high=1.0, high_open=True),
            real("betas[1]", b2, low=0.0, high=1.0, high_open=True),
        )
        self.eps = real("eps", eps, low=0.0, low_open=True)
        self.reset()

    def reset(self) -> None:
        """Forget the moment estimates and the step count."""
        self.m = None
        self.v = None
        self.n_steps = 0

    def step(self, params: np.ndarray, grad) -> np.ndarray:
        """Update ``params`` (P,) in place with ``grad`` (P,); returns ``params``."""
        grad = _check_pair(params, grad, None if self.m is None else self.m.size)
        if self.m is None:
            self.m = np.zeros_like(params)
            self.v = np.zeros_like(params)
        b1, b2 = self.betas
        self.n_steps += 1
        self.m *= b1
        self.m += (1.0 - b1) * grad
        self.v *= b2
        self.v += (1.0 - b2) * grad * grad
        m_hat = self.m / (1.0 - b1**self.n_steps)
        v_hat = self.v / (1.0 - b2**self.n_steps)
        params -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
        return params

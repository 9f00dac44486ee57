"""Dense layers, activations and dropout: each backward sits beside its forward.

Everything works on plain arrays. A layer's parameters are views into a model's flat
parameter vector, so these functions never allocate parameters themselves.

Activation backwards are written in terms of the activation's OUTPUT ``a`` (all four
activations here allow it), which lets a model overwrite the pre-activation in place and
keep one array per layer. The backwards broadcast, so ``da`` may carry extra leading axes
(e.g. (T, N, H) upstream gradients of T tasks against an (N, H) activation).
"""

from __future__ import annotations

import numpy as np

from ._checks import generator, real

# ---------------------------------------------------------------- dense


def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Affine map.

    Parameters
    ----------
    x : (N, I) or (..., N, I)
    W : (I, O) or (..., I, O)
    b : (O,) or broadcastable to the output

    Returns
    -------
    y : (N, O) or (..., N, O), ``x @ W + b``
    """
    y = np.matmul(x, W)
    y += b
    return y


def dense_backward(dy: np.ndarray, x: np.ndarray, W: np.ndarray, *, need_dx: bool = True):
    """Gradients of :func:`dense_forward` for a single (N, I) batch.

    Parameters
    ----------
    dy : (N, O) upstream gradient
    x : (N, I) the layer input
    W : (I, O)
    need_dx : skip the input gradient when the input is data

    Returns
    -------
    dx : (N, I) or None
    dW : (I, O)
    db : (O,)
    """
    dW = x.T @ dy
    db = dy.sum(axis=0)
    dx = dy @ W.T if need_dx else None
    return dx, dW, db


# ---------------------------------------------------------------- activations
# forward(z, out=None) -> a ; backward(da, a) -> dz.  ``out=z`` is allowed (in place).


def relu_forward(z, out=None):
    return np.maximum(z, 0, out=out)


def relu_backward(da, a):
    # a > 0 exactly where z > 0; the kink at 0 gets gradient 0 (same as PyTorch)
    return da * (a > 0)


def tanh_forward(z, out=None):
    return np.tanh(z, out=out)


def tanh_backward(da, a):
    return da * (1 - a * a)


def sigmoid_forward(z, out=None):
    """Logistic sigmoid that never overflows: exp is only taken of -|z|."""
    e = np.exp(-np.abs(z))
    pos = z >= 0
    # z >= 0: 1 / (1 + e^-z);  z < 0: e^z / (1 + e^z)
    num = np.where(pos, 1, e)
    return np.divide(num, 1 + e, out=out)


def sigmoid_backward(da, a):
    return da * (a * (1 - a))


def linear_forward(z, out=None):
    if out is None or out is z:
        return z
    out[...] = z
    return out


def linear_backward(da, a):
    return da


# d a / d z as a function of the output a (None = identity), for models that multiply a
# stacked (T, N, H) upstream gradient in place instead of calling the backward above
def relu_derivative(a):
    return a > 0


def tanh_derivative(a):
    return 1 - a * a


def sigmoid_derivative(a):
    return a * (1 - a)


def linear_derivative(a):
    return None


DERIVATIVES = {
    "relu": relu_derivative,
    "tanh": tanh_derivative,
    "sigmoid": sigmoid_derivative,
    "linear": linear_derivative,
}

ACTIVATIONS = {
    "relu": (relu_forward, relu_backward),
    "tanh": (tanh_forward, tanh_backward),
    "sigmoid": (sigmoid_forward, sigmoid_backward),
    "linear": (linear_forward, linear_backward),
}


def activation(name: str):
    """Return ``(forward, backward)`` for an activation name."""
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {name!r}")
    return ACTIVATIONS[name]


# ---------------------------------------------------------------- dropout


def dropout_forward(a: np.ndarray, p: float, *, rng: np.random.Generator):
    """Inverted dropout: zero each entry with probability ``p`` and scale survivors by 1/(1-p).

    Scaling at train time keeps the expected activation unchanged, so evaluation needs no
    rescaling (the model just skips dropout).

    Parameters
    ----------
    a : (N, H) activations
    p : drop probability in [0, 1)
    rng : the only source of randomness

    Returns
    -------
    out : (N, H)
    mask : (N, H) the multiplier applied (0 or 1/(1-p)); pass it to :func:`dropout_backward`
    """
    p = real("p", p, low=0.0, high=1.0, high_open=True)
    generator("rng", rng)
    if p == 0.0:
        mask = np.ones_like(a)
    else:
        keep = rng.random(a.shape) >= p
        mask = keep.astype(a.dtype) * a.dtype.type(1.0 / (1.0 - p))
    return a * mask, mask


def dropout_backward(dout: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Gradient of :func:`dropout_forward`: the same mask again (broadcasts over leading axes)."""
    return dout * mask

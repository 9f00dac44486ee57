"""The seed exercise: TwoHead + two_head_loss against a PyTorch reference."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.twohead import TwoHead, two_head_loss

torch = pytest.importorskip("torch")


def torch_reference(model, x, y_a, y_b, alpha):
    """Same weights, torch ops: relu(x W1 + b1), two Dense(1) heads, MSE against flattened targets."""
    t = lambda a: torch.tensor(np.asarray(a, dtype=np.float64))  # noqa: E731
    h = torch.relu(t(x) @ t(model.W1) + t(model.b1))
    out_a = (h @ t(model.Wa) + t(model.ba)).reshape(-1)
    out_b = (h @ t(model.Wb) + t(model.bb)).reshape(-1)
    la = torch.nn.functional.mse_loss(out_a, t(y_a).reshape(-1))
    lb = torch.nn.functional.mse_loss(out_b, t(y_b).reshape(-1))
    return np.array([float(alpha * la + (1 - alpha) * lb), float(la), float(lb)])


@pytest.mark.parametrize("seed,n,d,alpha", [(0, 5, 3, 0.5), (7, 1, 1, 0.0), (123, 40, 6, 1.0), (3, 9, 2, 0.3)])
def test_loss_matches_torch(seed, n, d, alpha):
    rng = np.random.default_rng(seed + 100)
    x = rng.normal(size=(n, d))
    y_a, y_b = rng.normal(size=n), rng.normal(size=n) * 5
    got = two_head_loss(seed, x, y_a, y_b, alpha)
    model = TwoHead(hidden=8, seed=seed)
    model.forward(x)
    want = torch_reference(model, x, y_a, y_b, alpha)
    assert got.shape == (3,) and got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    assert got[0] == pytest.approx(alpha * got[1] + (1 - alpha) * got[2])


def test_forward_shapes_and_lazy_in_dim():
    x = np.random.default_rng(0).normal(size=(6, 4))
    m = TwoHead(hidden=5, seed=1)
    out_a, out_b = m.forward(x)
    assert out_a.shape == (6, 1) and out_b.shape == (6, 1)
    assert m.in_dim == 4 and m.W1.shape == (4, 5) and m.Wa.shape == (5, 1)
    with pytest.raises(ValueError, match="x"):
        m.forward(np.zeros((2, 3)))
    m2 = TwoHead(hidden=5, seed=1, in_dim=4)
    np.testing.assert_array_equal(m2.W1, m.W1)


def test_heads_start_independent_and_seeded():
    m = TwoHead(seed=0, in_dim=3)
    assert not np.allclose(m.Wa, m.Wb)
    same = TwoHead(seed=0, in_dim=3)
    other = TwoHead(seed=1, in_dim=3)
    np.testing.assert_array_equal(m.Wa, same.Wa)
    np.testing.assert_array_equal(m.W1, same.W1)
    assert not np.allclose(m.Wa, other.Wa)
    # each layer has its own stream: the heads do not depend on the input width
    wide = TwoHead(seed=0, in_dim=10)
    np.testing.assert_array_equal(m.Wa, wide.Wa)
    np.testing.assert_array_equal(m.Wb, wide.Wb)


def test_float_seed_and_column_targets():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(7, 2))
    y_a, y_b = rng.normal(size=7), rng.normal(size=7)
    base = two_head_loss(3, x, y_a, y_b, 0.25)
    np.testing.assert_array_equal(two_head_loss(3.0, x, y_a, y_b, 0.25), base)
    np.testing.assert_array_equal(two_head_loss(np.float64(3.0), x, y_a, y_b, 0.25), base)
    np.testing.assert_array_equal(two_head_loss(3, x, y_a.reshape(-1, 1), y_b.reshape(-1, 1), 0.25), base)
    # the (N, 1) - (N,) -> (N, N) broadcast would give this instead
    m = TwoHead(seed=3)
    out_a, _ = m.forward(x)
    broadcast = np.mean((out_a - y_a) ** 2)
    assert base[1] != pytest.approx(broadcast)


X = np.zeros((4, 2))
Y = np.zeros(4)


@pytest.mark.parametrize(
    "args,match",
    [
        ((3.5, X, Y, Y, 0.5), "seed"),
        ((float("nan"), X, Y, Y, 0.5), "seed"),
        ((float("inf"), X, Y, Y, 0.5), "seed"),
        ((-1, X, Y, Y, 0.5), "seed"),
        (("3", X, Y, Y, 0.5), "seed"),
        ((True, X, Y, Y, 0.5), "seed"),
        ((0, X, Y, Y, 1.5), "alpha"),
        ((0, X, Y, Y, -0.1), "alpha"),
        ((0, X, Y, Y, float("nan")), "alpha"),
        ((0, X, np.zeros(3), Y, 0.5), "y_a"),
        ((0, X, Y, np.zeros(5), 0.5), "y_b"),
        ((0, X, np.zeros((4, 2)), Y, 0.5), "y_a"),
        ((0, X, Y, np.zeros((4, 1, 1)), 0.5), "y_b"),
        ((0, np.zeros(4), Y, Y, 0.5), "x"),
        ((0, np.zeros((4, 2, 1)), Y, Y, 0.5), "x"),
        ((0, np.array([[0.0, np.nan]] * 4), Y, Y, 0.5), "x"),
        ((0, X, np.array([0.0, np.inf, 0.0, 0.0]), Y, 0.5), "y_a"),
        ((0, X, Y, np.array([0.0, np.nan, 0.0, 0.0]), 0.5), "y_b"),
    ],
)
def test_bad_inputs_raise_value_error(args, match):
    with pytest.raises(ValueError, match=match):
        two_head_loss(*args)


def test_bad_constructor_args():
    with pytest.raises(ValueError, match="hidden"):
        TwoHead(hidden=0)
    with pytest.raises(ValueError, match="seed"):
        TwoHead(seed=2.5)
    with pytest.raises(ValueError, match="in_dim"):
        TwoHead(in_dim=0)

"""Optimizers: in-place updates agree with torch.optim step for step; validation."""

import numpy as np
import pytest

from mtl_core.optim import SGD, Adam


def torch_trajectory(make_opt, p0, grads):
    torch = pytest.importorskip("torch")
    p = torch.tensor(p0.copy(), dtype=torch.float64, requires_grad=True)
    opt = make_opt([p])
    out = []
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return out


@pytest.mark.parametrize("momentum,nesterov", [(0.0, False), (0.9, False), (0.9, True)])
def test_sgd_matches_torch(momentum, nesterov):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    p0 = rng.normal(size=7)
    grads = [rng.normal(size=7) for _ in range(6)]
    ref = torch_trajectory(lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=momentum, nesterov=nesterov), p0, grads)
    params = p0.copy()
    buf = params  # the update must happen in place
    opt = SGD(0.1, momentum=momentum, nesterov=nesterov)
    for g, r in zip(grads, ref, strict=True):
        opt.step(params, g)
        np.testing.assert_allclose(params, r, atol=1e-14)
    assert buf is params


def test_adam_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    p0 = rng.normal(size=5)
    grads = [rng.normal(size=5) for _ in range(8)]
    ref = torch_trajectory(lambda ps: torch.optim.Adam(ps, lr=0.01, betas=(0.8, 0.99), eps=1e-8), p0, grads)
    params = p0.copy()
    opt = Adam(lr=0.01, betas=(0.8, 0.99))
    for g, r in zip(grads, ref, strict=True):
        opt.step(params, g)
        np.testing.assert_allclose(params, r, atol=1e-13)


def test_adam_first_step_is_lr_times_sign_and_reset():
    params = np.zeros(3)
    opt = Adam(lr=0.5)
    opt.step(params, np.array([2.0, -3.0, 0.0]))
    np.testing.assert_allclose(params, [-0.5, 0.5, 0.0], atol=1e-8)
    opt.reset()
    assert opt.m is None and opt.n_steps == 0
    opt.step(np.zeros(5), np.ones(5))  # after reset a new size is fine


def test_views_are_updated_and_float32_kept():
    params = np.ones(6, dtype=np.float32)
    W = params[:4].reshape(2, 2)  # like a layer's weight view
    opt = SGD(0.5, momentum=0.5)
    opt.step(params, np.ones(6, dtype=np.float32))
    assert params.dtype == np.float32 and opt.velocity.dtype == np.float32
    np.testing.assert_allclose(W, 0.5)


def test_sgd_minimises_a_quadratic():
    params = np.array([3.0, -2.0])
    opt = SGD(0.1, momentum=0.5)
    for _ in range(200):
        opt.step(params, 2 * params)
    assert np.linalg.norm(params) < 1e-8


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: SGD(0.0), "lr"),
        (lambda: SGD(-1.0), "lr"),
        (lambda: SGD(float("nan")), "lr"),
        (lambda: SGD(0.1, momentum=1.0), "momentum"),
        (lambda: SGD(0.1, momentum=-0.1), "momentum"),
        (lambda: SGD(0.1, nesterov=True), "nesterov"),
        (lambda: SGD(0.1, momentum=0.9, nesterov=1), "nesterov"),
        (lambda: Adam(lr=0.0), "lr"),
        (lambda: Adam(betas=(0.9, 1.0)), "betas"),
        (lambda: Adam(betas=0.9), "betas"),
        (lambda: Adam(eps=0.0), "eps"),
    ],
)
def test_bad_settings(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize("opt", [SGD(0.1, momentum=0.9), Adam()])
def test_bad_step_arguments(opt):
    with pytest.raises(ValueError, match="params"):
        opt.step([1.0, 2.0], np.ones(2))  # a list cannot be updated in place
    with pytest.raises(ValueError, match="params"):
        opt.step(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="params"):
        opt.step(np.ones(2, dtype=int), np.ones(2))
    with pytest.raises(ValueError, match="grad"):
        opt.step(np.ones(2), np.ones(3))
    with pytest.raises(ValueError, match="grad"):
        opt.step(np.ones(2), np.array([1.0, np.nan]))
    opt.step(np.ones(2), np.ones(2))
    with pytest.raises(ValueError, match="reset"):
        opt.step(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="lr"):
        opt.lr = 0.0

"""Every per-task gradient of every model against central finite differences AND PyTorch autograd.

The PyTorch reference below is written independently of mtl_core's backprop: it only reads
the parameter LAYOUT (``net.layout``: name, slice, shape) to slice the same flat vector, and
recomputes the model and the masked losses with torch ops in float64.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
F = torch.nn.functional

from mtl_core import layers  # noqa: E402
from mtl_core.losses import loss_for  # noqa: E402
from mtl_core.nets import CrossStitchNet, MultiTaskNet, SeparateNets  # noqa: E402
from mtl_core.tasks import TaskSpec  # noqa: E402

ACTS = ("relu", "tanh", "sigmoid", "linear")
MODELS = (MultiTaskNet, SeparateNets, CrossStitchNet)
TOL = 1e-6


def rel_err(a, b):
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


# ---------------------------------------------------------------- torch reference

TORCH_ACT = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid, "linear": lambda z: z}


def _torch_head(P, prefix, spec, h, act):
    for j in range(len(spec.hidden)):
        h = act(h @ P[f"{prefix}task.{spec.name}.hidden.{j}.W"] + P[f"{prefix}task.{spec.name}.hidden.{j}.b"])
    out = h @ P[f"{prefix}task.{spec.name}.out.W"] + P[f"{prefix}task.{spec.name}.out.b"]
    return out if spec.kind == "multiclass" else out[:, 0]


def _torch_hard_sharing(P, prefix, tasks, depth, x, act):
    outs, h = [], x
    for l in range(depth):
        h = act(h @ P[f"{prefix}trunk.{l}.W"] + P[f"{prefix}trunk.{l}.b"])
        outs.append(h)
    preds = {}
    for spec in tasks:
        att = depth - 1 if spec.attach_at is None else spec.attach_at
        preds[spec.name] = _torch_head(P, prefix, spec, x if att < 0 else outs[att], act)
    return preds


def _torch_cross_stitch(P, tasks, depth, x, act):
    T = len(tasks)
    s = [x] * T
    stitched = []
    for l in range(depth):
        W, b, A = P[f"trunk.{l}.W"], P[f"trunk.{l}.b"], P[f"stitch.{l}"]
        a = [act(s[t] @ W[t] + b[t]) for t in range(T)]
        s = [sum(A[t, u] * a[u] for u in range(T)) for t in range(T)]
        stitched.append(s)
    preds = {}
    for k, spec in enumerate(tasks):
        att = depth - 1 if spec.attach_at is None else spec.attach_at
        preds[spec.name] = _torch_head(P, "", spec, stitched[att][k], act)
    return preds


def torch_preds(net, theta, x):
    P = {name: theta[sl].view(shape) for name, sl, shape in net.layout}
    act = TORCH_ACT[net.activation]
    depth = len(net.trunk_widths)
    if isinstance(net, CrossStitchNet):
        return _torch_cross_stitch(P, net.tasks, depth, x, act)
    if isinstance(net, SeparateNets):
        preds = {}
        for spec in net.tasks:
            preds.update(_torch_hard_sharing(P, f"net.{spec.name}.", [spec], depth, x, act))
        return preds
    return _torch_hard_sharing(P, "", net.tasks, depth, x, act)


def torch_task_loss(spec, pred, target, mask, theta):
    m = torch.ones(pred.shape[0], dtype=torch.bool) if mask is None else torch.tensor(mask)
    if not bool(m.any()):
        return (theta * 0).sum()  # a task without labels: loss 0, zero gradient
    t = torch.tensor(np.asarray(target, dtype=np.float64).reshape(-1))
    p, t = pred[m], t[m]
    if spec.kind == "multiclass":
        return F.cross_entropy(p, t.long())
    if spec.kind == "binary":
        return F.binary_cross_entropy_with_logits(p, t)
    if spec.loss == "smooth_l1":
        return F.smooth_l1_loss(p, t, beta=1.0)
    return F.mse_loss(p, t)


def torch_losses_and_grads(net, x, targets, masks):
    theta = torch.tensor(net.params.astype(np.float64), requires_grad=True)
    preds = torch_preds(net, theta, torch.tensor(x))
    losses = [torch_task_loss(s, preds[s.name], targets[s.name], masks.get(s.name), theta) for s in net.tasks]
    grads = []
    for loss in losses:
        (g,) = torch.autograd.grad(loss, theta, retain_graph=True, allow_unused=True)
        grads.append(np.zeros(net.n_params) if g is None else g.numpy())
    return np.array([float(v.detach()) for v in losses]), np.stack(grads)


def torch_regularization(net, l2):
    theta = torch.tensor(net.params.astype(np.float64), requires_grad=True)
    value = sum(0.5 * l2 * (theta[sl] ** 2).sum() for name, sl, _ in net.layout if name.endswith(".W"))
    (g,) = torch.autograd.grad(value, theta)
    return float(value.detach()), g.numpy()


# ---------------------------------------------------------------- finite differences


def fd_jacobian(net, x, targets, masks, *, train=False, seed=None, eps=1e-6):
    """(T, P) central differences of the per-task losses (public forward + public losses)."""

    def losses():
        rng = None if seed is None else np.random.default_rng(seed)
        preds = net.forward(x, train=train, rng=rng)
        return np.array([loss_for(s)(preds[s.name], targets[s.name], masks.get(s.name))[0] for s in net.tasks])

    J = np.zeros((len(net.tasks), net.n_params))
    for i in range(net.n_params):
        old = net.params[i]
        net.params[i] = old + eps
        up = losses()
        net.params[i] = old - eps
        down = losses()
        net.params[i] = old
        J[:, i] = (up - down) / (2 * eps)
    return J


# ---------------------------------------------------------------- random problems


def random_problem(model, activation, seed, *, n=9, dropout=0.0):
    rng = np.random.default_rng(seed)
    depth = int(rng.integers(1, 4))
    trunk = tuple(int(w) for w in rng.integers(2, 5, size=depth))
    in_dim = int(rng.integers(1, 4))
    kinds = [("regression", "mse"), ("regression", "smooth_l1"), ("binary", "mse"), ("multiclass", "mse")]
    order = rng.permutation(len(kinds))
    tasks = []
    for k in order:
        kind, loss = kinds[k]
        hidden = tuple(int(w) for w in rng.integers(2, 4, size=int(rng.integers(0, 3))))
        attach = None if rng.random() < 0.5 else int(rng.integers(0, depth))
        tasks.append(
            TaskSpec(
                f"t{k}",
                kind,
                n_classes=3 if kind == "multiclass" else None,
                loss=loss,
                hidden=hidden,
                attach_at=attach,
                auxiliary=bool(rng.random() < 0.3),
            )
        )
    kw = {} if model is CrossStitchNet else {"dropout": dropout}
    net = model(in_dim, tasks, trunk=trunk, activation=activation, rng=rng, **kw)
    # random weights AND biases (zero biases put ReLU inputs exactly on the kink for all-zero rows)
    net.params[...] = rng.normal(size=net.n_params) * 0.7
    x = rng.normal(size=(n, in_dim))
    targets, masks = {}, {}
    for s in tasks:
        if s.kind == "multiclass":
            y = rng.integers(0, 3, size=n).astype(float)
        elif s.kind == "binary":
            y = rng.random(n)  # soft labels in [0, 1] exercise the general BCE formula
        else:
            y = rng.normal(size=n) * 2.0  # |error| both below and above smooth_l1's beta = 1
        m = rng.random(n) < 0.6
        m[rng.integers(n)] = True
        y[~m] = np.nan  # missing labels stored as NaN must be ignored
        targets[s.name], masks[s.name] = y, m
    # one task with no labelled row in this batch
    empty = tasks[int(rng.integers(len(tasks)))].name
    masks[empty] = np.zeros(n, dtype=bool)
    return net, x, targets, masks, empty


CASES = [(m, a, 10 * i + j) for i, m in enumerate(MODELS) for j, a in enumerate(ACTS)]


@pytest.mark.parametrize("model,activation,seed", CASES, ids=[f"{m.__name__}-{a}" for m, a, _ in CASES])
def test_per_task_grads_match_fd_and_torch(model, activation, seed):
    net, x, targets, masks, empty = random_problem(model, activation, seed)
    res = net.losses_and_grads(x, targets, masks, train=False)
    T, P = len(net.tasks), net.n_params
    assert res.grads.shape == (T, P) and res.losses.shape == (T,)
    assert np.all(np.isfinite(res.grads)) and np.all(np.isfinite(res.losses))

    t_losses, t_grads = torch_losses_and_grads(net, x, targets, masks)
    J = fd_jacobian(net, x, targets, masks)
    np.testing.assert_allclose(res.losses, t_losses, rtol=1e-10, atol=1e-12)
    for k, spec in enumerate(net.tasks):
        assert rel_err(res.grads[k], t_grads[k]) <= TOL, (spec.name, "torch", rel_err(res.grads[k], t_grads[k]))
        assert rel_err(res.grads[k], J[k]) <= TOL, (spec.name, "fd", rel_err(res.grads[k], J[k]))
        # a task's gradient never touches another task's own parameters
        for other, sl in net.task_slices.items():
            if other != spec.name:
                assert not np.any(res.grads[k, sl])
    k_empty = net.task_names.index(empty)
    assert res.losses[k_empty] == 0.0 and not np.any(res.grads[k_empty])
    # every parameter is reached by some task that has labels (no silently dead block)
    reached = np.any(res.grads != 0, axis=0)
    others = [net.task_slices[s.name] for s in net.tasks if s.name != empty]
    for sl in others:
        assert reached[sl].any()
    if model is SeparateNets:
        assert net.n_shared == 0
    else:
        assert net.n_shared > 0 and reached[: net.n_shared].any()


@pytest.mark.parametrize("model", [MultiTaskNet, SeparateNets])
def test_dropout_grads_match_fd_with_same_mask(model):
    # the same rng seed gives the same dropout masks, so FD sees the same function
    net, x, targets, masks, _ = random_problem(model, "tanh", 7, dropout=0.4)
    res = net.losses_and_grads(x, targets, masks, rng=np.random.default_rng(3), train=True)
    J = fd_jacobian(net, x, targets, masks, train=True, seed=3)
    for k in range(len(net.tasks)):
        assert rel_err(res.grads[k], J[k]) <= TOL
    # and dropout really changed something compared with evaluation mode
    ev = net.losses_and_grads(x, targets, masks, train=False)
    assert not np.allclose(ev.grads, res.grads)


@pytest.mark.parametrize("model", MODELS)
def test_regularization_matches_torch_and_fd(model):
    net, _, _, _, _ = random_problem(model, "relu", 5)
    l2 = 0.3
    value, grad = net.regularization(l2)
    t_value, t_grad = torch_regularization(net, l2)
    assert abs(value - t_value) <= 1e-10 * max(1.0, abs(t_value))
    assert rel_err(grad, t_grad) <= TOL
    eps = 1e-6
    fd = np.zeros(net.n_params)
    for i in range(net.n_params):
        old = net.params[i]
        net.params[i] = old + eps
        up = net.regularization(l2)[0]
        net.params[i] = old - eps
        down = net.regularization(l2)[0]
        net.params[i] = old
        fd[i] = (up - down) / (2 * eps)
    assert rel_err(grad, fd) <= TOL
    # biases are not penalised
    for name, sl, _ in net.layout:
        if name.endswith(".b"):
            assert not np.any(grad[sl])


def test_cross_stitch_units_get_gradients_from_every_task():
    tasks = [TaskSpec("a"), TaskSpec("b", "binary"), TaskSpec("c", "multiclass", n_classes=3)]
    net = CrossStitchNet(2, tasks, trunk=(3, 4), activation="tanh", rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 2))
    targets = {"a": rng.normal(size=6), "b": (rng.random(6) < 0.5) * 1.0, "c": rng.integers(0, 3, 6)}
    res = net.losses_and_grads(x, targets)
    t_losses, t_grads = torch_losses_and_grads(net, x, targets, {})
    for name, sl, shape in net.layout:
        if name.startswith("stitch."):
            assert shape == (3, 3)
            np.testing.assert_allclose(np.diag(net.params[sl].reshape(shape)), 0.9)
            for k in range(3):
                assert np.any(res.grads[k, sl] != 0)
                assert rel_err(res.grads[k, sl], t_grads[k, sl]) <= TOL


def test_float32_grads_close_to_float64():
    tasks = [TaskSpec("a", "binary"), TaskSpec("b", "regression", hidden=(4,))]
    x = np.random.default_rng(0).normal(size=(32, 3))
    targets = {"a": (x[:, 0] > 0) * 1.0, "b": x[:, 1]}
    n64 = MultiTaskNet(3, tasks, trunk=(8, 8), rng=np.random.default_rng(1))
    n32 = MultiTaskNet(3, tasks, trunk=(8, 8), rng=np.random.default_rng(1), dtype=np.float32)
    r64 = n64.losses_and_grads(x, targets)
    r32 = n32.losses_and_grads(x, targets)
    assert n32.params.dtype == np.float32 and r32.grads.dtype == np.float32
    assert r32.preds["a"].dtype == np.float32
    for k in range(2):
        assert rel_err(r32.grads[k], r64.grads[k]) < 1e-5


# ---------------------------------------------------------------- layers.py building blocks


def _fd(fn, arr, eps=1e-6):
    """Central differences of the scalar fn() with respect to every entry of arr (in place)."""
    out = np.zeros_like(arr)
    for idx in np.ndindex(arr.shape):
        old = arr[idx]
        arr[idx] = old + eps
        up = fn()
        arr[idx] = old - eps
        down = fn()
        arr[idx] = old
        out[idx] = (up - down) / (2 * eps)
    return out


def test_dense_backward_matches_fd():
    rng = np.random.default_rng(0)
    x, W, b, r = rng.normal(size=(5, 3)), rng.normal(size=(3, 4)), rng.normal(size=4), rng.normal(size=(5, 4))
    loss = lambda: float(np.sum(layers.dense_forward(x, W, b) * r))  # noqa: E731  (d loss / d y = r)
    dx, dW, db = layers.dense_backward(r, x, W)
    assert rel_err(dx, _fd(loss, x)) <= TOL
    assert rel_err(dW, _fd(loss, W)) <= TOL
    assert rel_err(db, _fd(loss, b)) <= TOL
    assert layers.dense_backward(r, x, W, need_dx=False)[0] is None


@pytest.mark.parametrize("name", ACTS)
def test_activation_backward_and_derivative_match_fd_and_torch(name):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, 3)) * 3
    r = rng.normal(size=(4, 3))
    fwd, bwd = layers.activation(name)
    a = fwd(z.copy())
    dz = bwd(r, a)
    assert rel_err(dz, _fd(lambda: float(np.sum(fwd(z.copy()) * r)), z)) <= TOL
    zt = torch.tensor(z, requires_grad=True)
    (TORCH_ACT[name](zt) * torch.tensor(r)).sum().backward()
    assert rel_err(dz, zt.grad.numpy()) <= 1e-12
    d = layers.DERIVATIVES[name](a)
    np.testing.assert_allclose(r if d is None else r * d, dz)
    # in place forward gives the same values, and the sigmoid never overflows
    zz = z.copy()
    np.testing.assert_allclose(fwd(zz, out=zz), a)
    with np.errstate(over="raise"):
        big = layers.sigmoid_forward(np.array([-1000.0, 1000.0]))
    np.testing.assert_allclose(big, [0.0, 1.0])
    with pytest.raises(ValueError, match="activation"):
        layers.activation("swish")


def test_dropout_forward_backward():
    rng = np.random.default_rng(2)
    a = rng.normal(size=(200, 50))
    out, mask = layers.dropout_forward(a, 0.25, rng=np.random.default_rng(0))
    kept = mask != 0
    assert 0.7 < kept.mean() < 0.8
    np.testing.assert_allclose(out[kept], a[kept] / 0.75)
    assert np.all(out[~kept] == 0)
    r = rng.normal(size=a.shape)
    np.testing.assert_array_equal(layers.dropout_backward(r, mask), r * mask)
    same, _ = layers.dropout_forward(a, 0.25, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(same, out)
    np.testing.assert_array_equal(layers.dropout_forward(a, 0.0, rng=rng)[0], a)
    with pytest.raises(ValueError, match="p"):
        layers.dropout_forward(a, 1.0, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        layers.dropout_forward(a, 0.5, rng=None)

"""Models: shapes, layout, determinism, dropout modes, state handling and argument checks."""

from __future__ import annotations

import numpy as np
import pytest

from mtl_core.nets import CrossStitchNet, MultiTaskNet, SeparateNets, TaskGrads
from mtl_core.tasks import TaskSpec

MODELS = (MultiTaskNet, SeparateNets, CrossStitchNet)
TASKS = [
    TaskSpec("reg", hidden=(5,)),
    TaskSpec("bin", "binary", attach_at=0),
    TaskSpec("cls", "multiclass", n_classes=4, auxiliary=True),
]


def make(model, seed=0, **kw):
    return model(3, TASKS, trunk=(6, 7), rng=np.random.default_rng(seed), **kw)


def batch(n=11, seed=1):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    targets = {"reg": rng.normal(size=n), "bin": (rng.random(n) < 0.5) * 1.0, "cls": rng.integers(0, 4, n)}
    return x, targets


@pytest.mark.parametrize("model", MODELS)
def test_shapes_and_contract_attributes(model):
    net = make(model)
    x, targets = batch()
    res = net.losses_and_grads(x, targets)
    T, P = 3, net.n_params
    assert isinstance(res, TaskGrads)
    assert res.losses.shape == (T,) and res.grads.shape == (T, P) and res.n_shared == net.n_shared
    assert net.params.shape == (P,) and net.task_names == ["reg", "bin", "cls"]
    assert net.eval_task_names == ["reg", "bin"]
    assert res.preds["reg"].shape == (11,) and res.preds["bin"].shape == (11,) and res.preds["cls"].shape == (11, 4)
    preds = net.forward(x)
    for k in preds:
        np.testing.assert_allclose(preds[k], res.preds[k], rtol=1e-12)
    # the task slices tile params[n_shared:] in task order, without overlap
    stop = net.n_shared
    for name in net.task_names:
        sl = net.task_slices[name]
        assert sl.start == stop and sl.stop > sl.start
        stop = sl.stop
    assert stop == P
    # the layout covers the vector exactly once
    covered = np.zeros(P, dtype=int)
    for _, sl, shape in net.layout:
        assert sl.stop - sl.start == int(np.prod(shape))
        covered[sl] += 1
    assert np.all(covered == 1)
    if model is SeparateNets:
        assert net.n_shared == 0 and net.last_shared == slice(0, 0)
    else:
        name = [n for n, sl, _ in net.layout if sl == net.last_shared]
        assert name == ["trunk.1.W"]
        assert net.last_shared.stop <= net.n_shared


@pytest.mark.parametrize("model", MODELS)
def test_weights_are_views_into_params(model):
    net = make(model)
    x, _ = batch()
    before = net.forward(x)
    net.params *= 1.5  # one vector op must move every layer
    after = net.forward(x)
    for k in before:
        assert not np.allclose(before[k], after[k])
    net.params[net.task_slices["reg"]] = 0.0
    assert np.all(net.forward(x)["reg"] == 0.0)


@pytest.mark.parametrize("model", MODELS)
def test_same_seed_same_params_and_copy_state(model):
    a, b, c = make(model, seed=3), make(model, seed=3), make(model, seed=4)
    np.testing.assert_array_equal(a.params, b.params)
    assert not np.array_equal(a.params, c.params)
    d = a.copy()
    np.testing.assert_array_equal(d.params, a.params)
    d.params += 1.0
    assert not np.array_equal(d.params, a.params)
    x, _ = batch()
    assert not np.allclose(d.forward(x)["reg"], a.forward(x)["reg"])
    state = d.get_state()
    a.set_state(state)
    np.testing.assert_allclose(a.forward(x)["cls"], d.forward(x)["cls"])
    state["params"][:] = 0.0  # get_state returns a copy
    assert np.any(d.params != 0.0)
    with pytest.raises(ValueError, match="params"):
        a.set_state({"params": np.zeros(3)})


def test_cross_stitch_starts_near_identity():
    net = make(CrossStitchNet)
    for name, sl, shape in net.layout:
        if name.startswith("stitch."):
            A = net.params[sl].reshape(shape)
            np.testing.assert_allclose(A, [[0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.05, 0.05, 0.9]])
    one = CrossStitchNet(2, [TaskSpec("a")], trunk=(3,), rng=np.random.default_rng(0))
    assert one.params[[sl for n, sl, _ in one.layout if n == "stitch.0"][0]].tolist() == [1.0]


@pytest.mark.parametrize("model", [MultiTaskNet, SeparateNets])
def test_dropout_only_in_train_mode(model):
    net = make(model, dropout=0.5)
    x, targets = batch()
    e1, e2 = net.forward(x), net.forward(x, train=False, rng=np.random.default_rng(0))
    np.testing.assert_array_equal(e1["reg"], e2["reg"])
    t1 = net.forward(x, train=True, rng=np.random.default_rng(0))
    t2 = net.forward(x, train=True, rng=np.random.default_rng(0))
    t3 = net.forward(x, train=True, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(t1["reg"], t2["reg"])  # same rng -> same masks
    assert not np.allclose(t1["reg"], e1["reg"])
    assert not np.allclose(t1["reg"], t3["reg"])
    r_eval = net.losses_and_grads(x, targets, train=False)
    np.testing.assert_allclose(r_eval.preds["reg"], e1["reg"])
    with pytest.raises(ValueError, match="rng"):
        net.losses_and_grads(x, targets, train=True)
    with pytest.raises(ValueError, match="rng"):
        net.forward(x, train=True)
    # without dropout no rng is needed
    plain = make(model)
    plain.losses_and_grads(x, targets, train=True)


def test_no_trunk_means_linear_heads():
    net = MultiTaskNet(3, [TaskSpec("a"), TaskSpec("b", "binary")], trunk=(), rng=np.random.default_rng(0))
    assert net.n_shared == 0
    x, targets = batch()
    res = net.losses_and_grads(x, {"a": targets["reg"], "b": targets["bin"]})
    W = net.params[net.task_slices["a"]][:3]
    b = net.params[net.task_slices["a"]][3]
    np.testing.assert_allclose(res.preds["a"], x @ W + b)


def test_regularization_value_and_bad_l2():
    net = make(MultiTaskNet)
    value, grad = net.regularization(0.0)
    assert value == 0.0 and not np.any(grad)
    value, grad = net.regularization(2.0)
    weights = np.concatenate([net.params[sl] for n, sl, _ in net.layout if n.endswith(".W")])
    assert value == pytest.approx(float(weights @ weights))
    with pytest.raises(ValueError, match="l2"):
        net.regularization(-1.0)


def test_float32_dtype_is_used_throughout():
    net = make(MultiTaskNet, dtype=np.float32)
    x, targets = batch()
    res = net.losses_and_grads(x, targets)
    assert net.params.dtype == np.float32 and res.grads.dtype == np.float32
    assert all(p.dtype == np.float32 for p in res.preds.values())


BAD_CONSTRUCTOR_ARGS = [
    (dict(in_dim=0), "in_dim"),
    (dict(in_dim=2.5), "in_dim"),
    (dict(tasks=[]), "tasks"),
    (dict(tasks=["a"]), "tasks"),
    (dict(tasks=[TaskSpec("a"), TaskSpec("a")]), "tasks"),
    (dict(tasks=[TaskSpec("a", attach_at=2)]), "attach_at"),
    (dict(trunk=(4, 0)), "trunk"),
    (dict(trunk=5), "trunk"),
    (dict(activation="gelu"), "activation"),
    (dict(dropout=1.0), "dropout"),
    (dict(dropout=-0.1), "dropout"),
    (dict(rng=0), "rng"),
    (dict(dtype=np.int32), "dtype"),
]
# CrossStitchNet takes no dropout argument, so those two cases do not apply to it
BAD_CASES = [
    (m, kw, match)
    for m in MODELS
    for kw, match in BAD_CONSTRUCTOR_ARGS
    if not (m is CrossStitchNet and "dropout" in kw)
]


@pytest.mark.parametrize("model,kwargs,match", BAD_CASES)
def test_bad_constructor_args(model, kwargs, match):
    args = dict(in_dim=3, tasks=[TaskSpec("a")], trunk=(4, 4), rng=np.random.default_rng(0))
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        model(args.pop("in_dim"), args.pop("tasks"), **args)


def test_cross_stitch_needs_a_trunk():
    with pytest.raises(ValueError, match="trunk"):
        CrossStitchNet(3, [TaskSpec("a")], trunk=(), rng=np.random.default_rng(0))


@pytest.mark.parametrize("model", MODELS)
def test_bad_batches_raise(model):
    net = make(model)
    x, targets = batch()
    bad_x_nan = x.copy()
    bad_x_nan[2, 1] = np.nan
    cases = [
        (lambda: net.losses_and_grads(x[:, :2], targets), "x"),
        (lambda: net.losses_and_grads(x[0], targets), "x"),
        (lambda: net.losses_and_grads(bad_x_nan, targets), "x"),
        (lambda: net.forward(np.full((2, 3), np.inf)), "x"),
        (lambda: net.losses_and_grads(x, {**targets, "zzz": targets["reg"]}), "zzz"),
        (lambda: net.losses_and_grads(x, targets, {"zzz": np.ones(11, dtype=bool)}), "zzz"),
        (lambda: net.losses_and_grads(x, {**targets, "reg": targets["reg"][:5]}), "reg"),
        (lambda: net.losses_and_grads(x, {**targets, "reg": np.zeros((11, 2))}), "reg"),
        (lambda: net.losses_and_grads(x, {**targets, "cls": np.full(11, 7)}), "cls"),
        (lambda: net.losses_and_grads(x, {**targets, "bin": np.full(11, np.nan)}), "bin"),
        (lambda: net.losses_and_grads(x, targets, {"reg": np.ones(10, dtype=bool)}), "reg"),
        (lambda: net.losses_and_grads(x, targets, {"reg": np.ones(11)}), "reg"),
        (lambda: net.losses_and_grads(x, [1, 2]), "targets"),
        (lambda: net.losses_and_grads(x, targets, masks=[1]), "masks"),
        (lambda: net.forward(x, train="yes"), "train"),
    ]
    for call, match in cases:
        with pytest.raises(ValueError, match=match):
            call()


def test_column_target_is_flattened_not_broadcast():
    net = make(MultiTaskNet)
    x, targets = batch()
    flat = net.losses_and_grads(x, targets)
    col = net.losses_and_grads(x, {**targets, "reg": targets["reg"].reshape(-1, 1)})
    np.testing.assert_array_equal(col.losses, flat.losses)
    np.testing.assert_array_equal(col.grads, flat.grads)
    assert flat.losses[0] == pytest.approx(np.mean((flat.preds["reg"] - targets["reg"]) ** 2))


def test_input_is_not_modified_and_float_targets_for_classes_work():
    net = make(MultiTaskNet, dtype=np.float32)
    x, targets = batch()
    x0 = x.copy()
    targets["cls"] = targets["cls"].astype(float)
    targets["cls"][0] = np.nan
    net.losses_and_grads(x, targets, {"cls": np.arange(11) > 0})
    np.testing.assert_array_equal(x, x0)


def test_stitch_matrices_are_a_copy_of_the_mixing_units_and_follow_training():
    net = make(CrossStitchNet)
    A = net.stitch_matrices()
    assert A.shape == (2, 3, 3)
    for l in range(2):
        sl = [s for n, s, _ in net.layout if n == f"stitch.{l}"][0]
        np.testing.assert_array_equal(A[l], net.params[sl].reshape(3, 3))
    A[:] = 7.0  # a copy: the net is untouched
    assert not np.any(net.stitch_matrices() == 7.0)
    x, targets = batch()
    g = net.losses_and_grads(x, targets).grads.sum(axis=0)
    net.params -= 0.1 * g
    assert not np.allclose(net.stitch_matrices(), A)


@pytest.mark.parametrize("branch", [0, 1, 2, 3])
def test_branched_net_shares_exactly_the_first_layers(branch):
    from mtl_core.nets import branched_net

    widths = (4, 5, 6)
    tasks = [TaskSpec("a", "binary"), TaskSpec("b", hidden=(2,))]
    net = branched_net(3, tasks, widths=widths, branch=branch, activation="tanh", rng=np.random.default_rng(0))
    dims = (3,) + widths
    assert net.n_shared == sum(dims[l] * dims[l + 1] + dims[l + 1] for l in range(branch))
    assert net.trunk_widths == widths[:branch]
    assert [t.hidden for t in net.tasks] == [widths[branch:], widths[branch:] + (2,)]
    if branch == 0:  # nothing shared: as big as two separate nets (b's extra 6 -> 2 layer aside)
        plain = [TaskSpec("a", "binary"), TaskSpec("b")]
        sep = SeparateNets(3, plain, trunk=widths, rng=np.random.default_rng(0))
        extra = (6 * 2 + 2) + (2 + 1) - (6 + 1)
        assert net.n_params == sep.n_params + extra
    if branch == len(widths):
        full = MultiTaskNet(3, tasks, trunk=widths, activation="tanh", rng=np.random.default_rng(0))
        np.testing.assert_array_equal(net.params, full.params)
    x = np.random.default_rng(1).normal(size=(5, 3))
    res = net.losses_and_grads(x, {"a": np.ones(5), "b": np.zeros(5)})
    # task a's loss never reaches task b's own layers and vice versa
    assert not np.any(res.grads[0, net.task_slices["b"]]) and not np.any(res.grads[1, net.task_slices["a"]])


def test_branched_net_refuses_bad_arguments():
    from mtl_core.nets import branched_net

    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="branch"):
        branched_net(3, [TaskSpec("a")], widths=(4, 4), branch=3, rng=rng)
    with pytest.raises(ValueError, match="branch"):
        branched_net(3, [TaskSpec("a")], widths=(4, 4), branch=-1, rng=rng)
    with pytest.raises(ValueError, match="trunk"):
        branched_net(3, [TaskSpec("a")], widths=(), branch=0, rng=rng)
    with pytest.raises(ValueError, match="attach_at"):
        branched_net(3, [TaskSpec("a", attach_at=0)], widths=(4, 4), branch=1, rng=rng)

"""Masked losses: values against PyTorch, mask semantics, no broadcasting, bad inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mtl_core.losses import LOSSES, bce_with_logits, loss_for, mse, prepare_target, smooth_l1, softmax_cross_entropy
from mtl_core.nets import CrossStitchNet, MultiTaskNet, SeparateNets
from mtl_core.tasks import TaskSpec

torch = pytest.importorskip("torch")
F = torch.nn.functional

REG = ("mse", "smooth_l1", "bce_with_logits")


def _data(name, n, rng):
    if name == "softmax_cross_entropy":
        return rng.normal(size=(n, 4)) * 3, rng.integers(0, 4, size=n).astype(float)
    if name == "bce_with_logits":
        return rng.normal(size=n) * 4, (rng.random(n) < 0.5).astype(float)
    return rng.normal(size=n), rng.normal(size=n) * 2


def _torch_value_grad(name, pred, target, mask):
    p = torch.tensor(pred, requires_grad=True)
    m = torch.tensor(mask)
    t = torch.tensor(np.nan_to_num(target))
    fn = {
        "mse": F.mse_loss,
        "smooth_l1": F.smooth_l1_loss,
        "bce_with_logits": F.binary_cross_entropy_with_logits,
        "softmax_cross_entropy": lambda a, b: F.cross_entropy(a, b.long()),
    }[name]
    loss = fn(p[m], t[m])
    loss.backward()
    return float(loss.detach()), p.grad.numpy()


@pytest.mark.parametrize("name", list(LOSSES))
def test_values_and_grads_match_torch_on_labelled_rows(name):
    rng = np.random.default_rng(0)
    pred, target = _data(name, 12, rng)
    mask = rng.random(12) < 0.6
    mask[0] = True
    target[~mask] = np.nan
    value, grad = LOSSES[name](pred, target, mask)
    t_value, t_grad = _torch_value_grad(name, pred, target, mask)
    assert value == pytest.approx(t_value, rel=1e-12, abs=1e-14)
    np.testing.assert_allclose(grad, t_grad, rtol=1e-10, atol=1e-14)
    assert grad.shape == pred.shape
    assert not np.any(grad[~mask])


@pytest.mark.parametrize("name", list(LOSSES))
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(2, 20))
def test_unlabelled_rows_change_nothing(name, seed, n):
    rng = np.random.default_rng(seed)
    pred, target = _data(name, n, rng)
    mask = rng.random(n) < 0.5
    value, grad = LOSSES[name](pred, target, mask)
    # scramble predictions and targets in unlabelled rows (NaN targets included)
    pred2, target2 = pred.copy(), target.copy()
    pred2[~mask] = rng.normal(size=pred2[~mask].shape) * 100
    target2[~mask] = np.nan
    value2, grad2 = LOSSES[name](pred2, target2, mask)
    assert value2 == value
    np.testing.assert_array_equal(grad2, grad)
    # equals the plain loss of the labelled rows alone
    if mask.any():
        sub_value, sub_grad = LOSSES[name](pred[mask], target[mask])
        assert value == pytest.approx(sub_value, rel=1e-12, abs=1e-15)
        np.testing.assert_allclose(grad[mask], sub_grad, rtol=1e-12, atol=1e-15)
    else:
        assert value == 0.0 and not np.any(grad)


@pytest.mark.parametrize("name", list(LOSSES))
def test_all_missing_gives_exact_zero_and_no_nan(name):
    rng = np.random.default_rng(1)
    pred, _ = _data(name, 5, rng)
    target = np.full(5, np.nan)
    value, grad = LOSSES[name](pred, target, np.zeros(5, dtype=bool))
    assert value == 0.0
    assert grad.shape == pred.shape and np.all(grad == 0) and not np.any(np.isnan(grad))


@pytest.mark.parametrize("name", REG)
def test_column_targets_and_preds_do_not_broadcast(name):
    rng = np.random.default_rng(2)
    pred, target = _data(name, 7, rng)
    flat = LOSSES[name](pred, target)
    col_t = LOSSES[name](pred, target.reshape(-1, 1))
    col_p = LOSSES[name](pred.reshape(-1, 1), target)
    assert col_t[0] == pytest.approx(flat[0], rel=1e-14) and col_p[0] == pytest.approx(flat[0], rel=1e-14)
    assert col_t[1].shape == (7,) and col_p[1].shape == (7, 1)
    # the broadcast bug would average over 49 pairs: make sure we are not computing that
    wrong = np.mean((pred.reshape(-1, 1) - target.reshape(1, -1)) ** 2)
    if name == "mse":
        assert flat[0] != pytest.approx(wrong)
        assert flat[0] == pytest.approx(np.mean((pred - target) ** 2), rel=1e-14)


def test_bce_is_stable_for_huge_logits():
    z = np.array([1000.0, -1000.0, 800.0, -800.0])
    y = np.array([1.0, 0.0, 0.0, 1.0])
    value, grad = bce_with_logits(z, y)
    assert np.isfinite(value) and np.all(np.isfinite(grad))
    assert value == pytest.approx((0 + 0 + 800 + 800) / 4)
    np.testing.assert_allclose(grad, np.array([0.0, 0.0, 1.0, -1.0]) / 4)


def test_softmax_ce_is_stable_and_accepts_int_targets():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0]])
    value, grad = softmax_cross_entropy(logits, np.array([0, 2]))
    assert value == pytest.approx(np.log(3) / 2)
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-15)


def test_smooth_l1_switches_at_beta_one():
    value, grad = smooth_l1(np.array([0.5, 3.0, -2.0]), np.zeros(3))
    assert value == pytest.approx((0.125 + 2.5 + 1.5) / 3)
    np.testing.assert_allclose(grad, np.array([0.5, 1.0, -1.0]) / 3)


def test_loss_for_picks_by_task_spec():
    assert loss_for(TaskSpec("a")) is mse
    assert loss_for(TaskSpec("a", loss="smooth_l1")) is smooth_l1
    assert loss_for(TaskSpec("a", "binary")) is bce_with_logits
    assert loss_for(TaskSpec("a", "multiclass", n_classes=3)) is softmax_cross_entropy
    with pytest.raises(ValueError, match="task_spec"):
        loss_for("regression")


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: mse(np.zeros(3), np.zeros(4)), "target"),
        (lambda: mse(np.zeros(3), np.zeros((3, 2))), "target"),
        (lambda: mse(np.zeros((3, 2)), np.zeros(3)), "pred"),
        (lambda: mse(np.zeros(3), np.array([0.0, np.nan, 1.0])), "target"),
        (lambda: mse(np.zeros(3), np.array([0.0, np.inf, 1.0]), np.array([True, True, False])), "target"),
        (lambda: mse(np.zeros(3), np.zeros(3), np.array([1, 0, 1])), "mask"),
        (lambda: mse(np.zeros(3), np.zeros(3), np.ones(4, dtype=bool)), "mask"),
        (lambda: mse(np.zeros(3), np.array(["a", "b", "c"])), "target"),
        (lambda: mse(np.zeros(0), np.zeros(0)), "pred"),
        (lambda: bce_with_logits(np.zeros(2), np.array([0.0, 2.0])), "target"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 3])), "target"),
        (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.array([0.5, 1.0])), "target"),
        (lambda: softmax_cross_entropy(np.zeros(3), np.array([0, 1, 1])), "pred"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_prepare_target_weights():
    y, w = prepare_target("mse", np.array([1.0, np.nan, 3.0, 4.0]), np.array([True, False, True, False]), 4)
    np.testing.assert_array_equal(y, [1.0, 0.0, 3.0, 0.0])
    np.testing.assert_array_equal(w, [0.5, 0.0, 0.5, 0.0])
    y, w = prepare_target("mse", np.arange(3.0), None, 3)
    assert w is None


# ---------------------------------------------------------------- masks through the models


@pytest.mark.parametrize("model", [MultiTaskNet, SeparateNets, CrossStitchNet])
def test_model_masked_rows_change_nothing(model):
    tasks = [TaskSpec("r", loss="smooth_l1"), TaskSpec("b", "binary"), TaskSpec("c", "multiclass", n_classes=3)]
    net = model(3, tasks, trunk=(5,), rng=np.random.default_rng(0))
    rng = np.random.default_rng(1)
    n = 10
    x = rng.normal(size=(n, 3))
    targets = {"r": rng.normal(size=n), "b": (rng.random(n) < 0.5) * 1.0, "c": rng.integers(0, 3, n) * 1.0}
    # row 3 is labelled for no task: it must not matter at all
    masks = {k: np.ones(n, dtype=bool) for k in targets}
    for k in masks:
        masks[k][3] = False
    masks["r"][5] = False
    res = net.losses_and_grads(x, targets, masks)
    x2 = x.copy()
    x2[3] = [50.0, -20.0, 7.0]
    t2 = {k: v.copy() for k, v in targets.items()}
    for k in t2:
        t2[k][3] = np.nan
    t2["r"][5] = np.nan
    res2 = net.losses_and_grads(x2, t2, masks)
    np.testing.assert_allclose(res2.losses, res.losses, rtol=1e-12)
    np.testing.assert_allclose(res2.grads, res.grads, rtol=1e-10, atol=1e-14)


def test_model_task_without_labels_or_target_has_zero_loss_and_grad():
    tasks = [TaskSpec("a"), TaskSpec("b", "binary")]
    net = MultiTaskNet(2, tasks, trunk=(4,), rng=np.random.default_rng(0))
    x = np.random.default_rng(1).normal(size=(6, 2))
    res = net.losses_and_grads(x, {"a": np.ones(6), "b": np.full(6, np.nan)}, {"b": np.zeros(6, dtype=bool)})
    assert res.losses[1] == 0.0 and not np.any(res.grads[1])
    assert res.losses[0] > 0 and np.any(res.grads[0])
    res2 = net.losses_and_grads(x, {"a": np.ones(6)})  # "b" absent from targets: unlabelled
    np.testing.assert_array_equal(res2.grads, res.grads)

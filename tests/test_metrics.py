import warnings

import numpy as np
import pytest

from mtl_core.metrics import (
    HIGHER_IS_BETTER,
    accuracy,
    delta_m,
    ece,
    evaluate,
    expected_calibration_error,
    f1,
    mae,
    rmse,
)
from mtl_core.tasks import TaskSpec


# -- straightforward reference implementations (loops, no vectorisation tricks) ---------------------------------


def ref_f1_class(yhat, y, k):
    tp = sum(1 for a, b in zip(yhat, y) if a == k and b == k)
    fp = sum(1 for a, b in zip(yhat, y) if a == k and b != k)
    fn = sum(1 for a, b in zip(yhat, y) if a != k and b == k)
    prec = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return 2 * prec * rec / (prec + rec) if prec + rec else 0.0


def ref_macro_f1(yhat, y):
    labels = sorted(set(yhat) | set(y))
    return sum(ref_f1_class(yhat, y, k) for k in labels) / len(labels)


def ref_ece(conf, correct, n_bins):
    total = 0.0
    n = len(conf)
    for b in range(n_bins):
        lo, hi = b / n_bins, (b + 1) / n_bins
        idx = [i for i, c in enumerate(conf) if (lo < c <= hi) or (b == 0 and c == 0)]
        if idx:
            acc = sum(correct[i] for i in idx) / len(idx)
            cf = sum(conf[i] for i in idx) / len(idx)
            total += len(idx) / n * abs(acc - cf)
    return total


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


# -- hand-computed examples -------------------------------------------------------------------------------------


def test_accuracy_binary_logits_probabilities_and_multiclass():
    y = np.array([1, 0, 1, 1])
    logits = np.array([2.0, -1.0, -0.5, 0.3])  # predicts 1, 0, 0, 1 -> 3/4
    assert accuracy(logits, y) == 0.75
    probs = np.array([0.9, 0.2, 0.4, 0.6])
    assert accuracy(probs, y, from_logits=False) == 0.75
    # the same numbers read as logits would all be > 0
    assert accuracy(probs, y, from_logits=True) == 0.75 and accuracy(probs, 1 - y, from_logits=True) == 0.25
    scores = np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [0.1, 0.2, 0.0]])
    assert accuracy(scores, np.array([0, 2, 0])) == pytest.approx(2 / 3)


def test_mask_selects_labelled_rows_and_ignores_hidden_targets():
    y = np.array([1.0, np.nan, 0.0, 1.0])
    logits = np.array([1.0, 5.0, 1.0, 1.0])
    mask = np.array([True, False, True, True])
    assert accuracy(logits, y, mask=mask) == pytest.approx(2 / 3)
    pred = np.array([1.0, 2.0, 3.0, 4.0])
    tgt = np.array([1.0, np.nan, 5.0, 4.0])
    assert rmse(pred, tgt, mask=mask) == pytest.approx(np.sqrt(4 / 3))
    assert mae(pred, tgt, mask=mask) == pytest.approx(2 / 3)


def test_no_labelled_rows_gives_nan_without_warning():
    none = np.zeros(3, dtype=bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for fn, p, t in [
            (accuracy, np.zeros(3), np.zeros(3)),
            (f1, np.zeros(3), np.zeros(3)),
            (ece, np.zeros(3), np.zeros(3)),
            (rmse, np.zeros(3), np.zeros(3)),
            (mae, np.zeros(3), np.zeros(3)),
            (accuracy, np.zeros((3, 2)), np.zeros(3)),
        ]:
            assert np.isnan(fn(p, t, mask=none))


def test_f1_binary_hand_example():
    y = np.array([1, 1, 1, 0, 0, 0])
    yhat_logits = np.array([1, 1, -1, 1, -1, -1.0])  # tp=2 fp=1 fn=1 -> P=R=2/3 -> F1=2/3
    assert f1(yhat_logits, y) == pytest.approx(2 / 3)
    # no positives at all: the zero_division=0 convention
    assert f1(np.array([-1.0, -2.0]), np.array([0, 0])) == 0.0


def test_f1_macro_hand_example():
    y = np.array([0, 0, 1, 2])
    yhat = np.array([0, 1, 1, 1])
    scores = np.eye(3)[yhat]
    # class 0: tp1 fp0 fn1 -> 2/3; class 1: tp1 fp2 fn0 -> 1/2; class 2: tp0 -> 0
    assert f1(scores, y) == pytest.approx((2 / 3 + 1 / 2 + 0) / 3)


def test_rmse_mae_hand_example_and_column_vector():
    p = np.array([1.0, 2.0, 3.0])
    t = np.array([2.0, 2.0, 5.0])
    assert rmse(p, t) == pytest.approx(np.sqrt(5 / 3))
    assert mae(p, t) == pytest.approx(1.0)
    assert rmse(p[:, None], t[:, None]) == pytest.approx(np.sqrt(5 / 3))


def test_ece_hand_example():
    # probabilities of class 1; confidences 0.9, 0.9, 0.6, 0.7 -> bins (0.8,0.9] x2, (0.5,0.6], (0.6,0.7]
    p = np.array([0.9, 0.1, 0.6, 0.3])
    y = np.array([1, 1, 0, 0])
    # bin 0.9: conf 0.9, acc 1/2 -> 2/4 * 0.4; bin 0.6: conf .6 acc 0 -> 1/4*.6; bin 0.7: conf .7 acc 1 -> 1/4*.3
    expected = 0.5 * 0.4 + 0.25 * 0.6 + 0.25 * 0.3
    assert expected_calibration_error(p, y, from_logits=False) == pytest.approx(expected)
    logits = np.log(p / (1 - p))
    assert ece(logits, y) == pytest.approx(expected)
    # perfectly confident and right -> 0
    assert ece(np.array([50.0, -50.0]), np.array([1, 0])) == pytest.approx(0.0, abs=1e-12)


# -- against reference implementations on random data ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_against_references_random(seed):
    rng = np.random.default_rng(seed)
    n = 200
    mask = rng.random(n) < 0.8
    # binary
    logits = rng.normal(0, 2, n)
    y = (rng.random(n) < 0.5).astype(float)
    prob = 1 / (1 + np.exp(-logits))
    yl, pl = y[mask], prob[mask]
    yhat = (pl > 0.5).astype(int)
    assert accuracy(logits, y, mask=mask) == pytest.approx(np.mean(yhat == yl))
    assert f1(logits, y, mask=mask) == pytest.approx(ref_f1_class(yhat, yl.astype(int), 1))
    conf = np.maximum(pl, 1 - pl)
    assert ece(logits, y, mask=mask) == pytest.approx(ref_ece(conf, yhat == yl, 10))
    assert ece(logits, y, mask=mask, n_bins=7) == pytest.approx(ref_ece(conf, yhat == yl, 7))
    # multiclass
    c = 4
    z = rng.normal(0, 1.5, (n, c))
    yc = rng.integers(0, c, n)
    pz = softmax(z[mask])
    yhc = np.argmax(pz, axis=1)
    assert accuracy(z, yc, mask=mask) == pytest.approx(np.mean(yhc == yc[mask]))
    assert f1(z, yc, mask=mask) == pytest.approx(ref_macro_f1(list(yhc), list(yc[mask])))
    assert ece(z, yc, mask=mask) == pytest.approx(ref_ece(pz.max(axis=1), yhc == yc[mask], 10))
    assert ece(softmax(z), yc, mask=mask, from_logits=False) == pytest.approx(
        ref_ece(pz.max(axis=1), yhc == yc[mask], 10)
    )
    # regression
    p, t = rng.normal(size=n), rng.normal(size=n)
    d = (p - t)[mask]
    assert rmse(p, t, mask=mask) == pytest.approx(np.sqrt(np.mean(d**2)))
    assert mae(p, t, mask=mask) == pytest.approx(np.mean(np.abs(d)))


def test_metric_validation():
    with pytest.raises(ValueError, match="target"):
        accuracy(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="mask"):
        accuracy(np.zeros(3), np.zeros(3), mask=np.ones(3))
    with pytest.raises(ValueError, match="target"):
        accuracy(np.zeros(3), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="target"):
        f1(np.zeros((3, 2)), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="pred"):
        accuracy(np.array([0.2, 1.5]), np.array([0, 1]), from_logits=False)
    with pytest.raises(ValueError, match="pred"):
        rmse(np.array([np.nan, 1.0]), np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="pred"):
        rmse(np.zeros((3, 2)), np.zeros(3))
    with pytest.raises(ValueError, match="n_bins"):
        ece(np.zeros(3), np.zeros(3), n_bins=0)


# -- evaluate and delta_m --------------------------------------------------------------------------------------


def test_evaluate_picks_metrics_by_kind_and_skips_auxiliary():
    tasks = [
        TaskSpec("r"),
        TaskSpec("b", kind="binary"),
        TaskSpec("m", kind="multiclass", n_classes=3),
        TaskSpec("aux", auxiliary=True),
    ]
    preds = {
        "r": np.array([1.0, 2.0]),
        "b": np.array([1.0, -1.0]),
        "m": np.array([[1.0, 0, 0], [0, 0, 1.0]]),
        "aux": np.zeros(2),
    }
    targets = {"r": np.array([1.0, 4.0]), "b": np.array([1.0, 1.0]), "m": np.array([0, 1]), "aux": np.zeros(2)}
    masks = {"r": np.array([True, True]), "b": np.array([True, False])}
    out = evaluate(tasks, preds, targets, masks)
    assert set(out) == {"r", "b", "m"}
    assert set(out["r"]) == {"rmse", "mae"}
    assert set(out["b"]) == set(out["m"]) == {"accuracy", "f1", "ece"}
    assert out["r"]["rmse"] == pytest.approx(np.sqrt(2.0)) and out["r"]["mae"] == pytest.approx(1.0)
    assert out["b"]["accuracy"] == 1.0  # only the labelled row counts
    assert out["m"]["accuracy"] == 0.5
    assert set(HIGHER_IS_BETTER) >= {m for v in out.values() for m in v}
    with pytest.raises(ValueError, match="preds"):
        evaluate(tasks, {"r": preds["r"]}, targets)
    with pytest.raises(ValueError, match="preds\\['m'\\]"):
        evaluate(tasks, {**preds, "m": np.zeros((2, 4))}, targets)


def test_delta_m_matches_libmtl_definition():
    # LibMTL's docstring example: per task mean over metrics of (-1)^w (B - N) / B with w = 1 if higher is better,
    # then mean over tasks; we report it in percent.
    base = {"A": {"m1": 96.0, "m2": 98.0}, "B": {"m3": 0.2}}
    new = {"A": {"m1": 93.0, "m2": 99.0}, "B": {"m3": 0.5}}
    hib = {"m1": True, "m2": False, "m3": True}
    a = ((93 - 96) / 96 + -(99 - 98) / 98) / 2
    b = (0.5 - 0.2) / 0.2
    assert delta_m(new, base, hib) == pytest.approx(100 * (a + b) / 2)
    # per-task directions and flat {task: value} inputs
    assert delta_m({"x": 0.9, "y": 1.0}, {"x": 0.8, "y": 2.0}, {"x": True, "y": False}) == pytest.approx(
        100 * ((0.9 - 0.8) / 0.8 + (2.0 - 1.0) / 2.0) / 2
    )
    assert delta_m(new, base, {"A": {"m1": True, "m2": False}, "B": True}) == pytest.approx(100 * (a + b) / 2)


def test_delta_m_defaults_and_sign():
    single = {"t": {"accuracy": 0.8, "rmse": 2.0}}
    better = {"t": {"accuracy": 0.88, "rmse": 1.5}}
    worse = {"t": {"accuracy": 0.72, "rmse": 2.5}}
    assert delta_m(better, single) == pytest.approx(100 * (0.1 + 0.25) / 2)
    assert delta_m(worse, single) == pytest.approx(-100 * (0.1 + 0.25) / 2)
    assert delta_m(single, single) == 0.0


def test_delta_m_validation():
    with pytest.raises(ValueError, match="single"):
        delta_m({"t": {"rmse": 1.0}}, {"t": {"rmse": 0.0}})
    with pytest.raises(ValueError, match="same tasks"):
        delta_m({"t": 1.0}, {"u": 1.0}, {"t": True, "u": True})
    with pytest.raises(ValueError, match="higher_is_better"):
        delta_m({"t": {"weird": 1.0}}, {"t": {"weird": 2.0}})
    with pytest.raises(ValueError, match="no metric in common"):
        delta_m({"t": {"rmse": 1.0}}, {"t": {"mae": 2.0}})
    with pytest.raises(ValueError, match="mtl"):
        delta_m({"t": {"rmse": float("nan")}}, {"t": {"rmse": 2.0}})

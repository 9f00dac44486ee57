"""Per-task evaluation metrics and the multi-task improvement Delta_m.

Prediction formats follow the models: regression (N,), binary (N,) logits (or probabilities with
``from_logits=False``), multiclass (N, C) logits (argmax is the same for logits and probabilities; ECE applies a
softmax when ``from_logits=True``). Every metric takes ``mask`` (bool (N,), True = labelled) and scores only the
labelled rows; with no labelled row it returns NaN, silently. Targets of unlabelled rows are never read, so they
may hold placeholders or NaN.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .tasks import check_unique

# direction of every metric ``evaluate`` reports, used by ``delta_m`` by default
HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "ece": False, "rmse": False, "mae": False}


def _select(pred, target, mask, *, pred_ndim):
    """Validate shapes, keep the labelled rows, check they are finite. -> (pred, target) as float arrays."""
    p = np.asarray(pred)
    if p.dtype.kind not in "biuf":
        raise ValueError(f"pred must be numeric, got dtype {p.dtype}")
    p = p.astype(np.float64)
    if p.ndim not in pred_ndim:
        raise ValueError(f"pred must have ndim in {pred_ndim}, got shape {p.shape}")
    t = np.asarray(target)
    if t.dtype.kind not in "biuf":
        raise ValueError(f"target must be numeric, got dtype {t.dtype}")
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]  # (N, 1) accepted; it must never broadcast against (N,)
    n = p.shape[0]
    if t.shape != (n,):
        raise ValueError(f"target must have shape ({n},) to match pred {p.shape}, got {t.shape}")
    if mask is None:
        m = np.ones(n, dtype=bool)
    else:
        m = np.asarray(mask)
        if m.dtype != bool or m.shape != (n,):
            raise ValueError(f"mask must be a bool array of shape ({n},), got {m.dtype} {m.shape}")
    p, t = p[m], t[m].astype(np.float64)
    if not np.all(np.isfinite(p)):
        raise ValueError("pred contains NaN or Inf in labelled rows")
    if not np.all(np.isfinite(t)):
        raise ValueError("target contains NaN or Inf in labelled rows")
    return p, t


def _binary_prob(p: np.ndarray, from_logits: bool) -> np.ndarray:
    if from_logits:
        # numerically stable sigmoid
        e = np.exp(-np.abs(p))
        return np.where(p >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
    if np.any((p < 0) | (p > 1)):
        raise ValueError("pred must be probabilities in [0, 1] when from_logits=False")
    return p


def _check_binary_target(t):
    if not np.all((t == 0) | (t == 1)):
        raise ValueError("target must be 0/1 for binary predictions")


def _class_target(t, c):
    if np.any(t != np.round(t)) or (t.size and (t.min() < 0 or t.max() >= c)):
        raise ValueError(f"target must be integer class ids in [0, {c})")
    return t.astype(np.int64)


def _labels(pred, target, mask, from_logits):
    """-> (predicted labels, true labels, n_classes) for binary (N,) or multiclass (N, C) predictions."""
    p, t = _select(pred, target, mask, pred_ndim=(1, 2))
    if p.ndim == 1:
        _check_binary_target(t)
        thr = 0.0 if from_logits else 0.5
        if not from_logits:
            _binary_prob(p, False)  # range check
        return (p > thr).astype(np.int64), t.astype(np.int64), 2
    c = p.shape[1]
    return np.argmax(p, axis=1), _class_target(t, c), c


def accuracy(pred, target, *, mask=None, from_logits: bool = True) -> float:
    """Fraction of labelled rows predicted correctly.

    Parameters
    ----------
    pred : (N,) binary logits (> 0 means class 1) or, with ``from_logits=False``, probabilities (> 0.5);
           or (N, C) multiclass scores (argmax).
    target : (N,) 0/1 or class ids
    mask : bool (N,), optional
    from_logits : bool
        How to read (N,) binary predictions.
    """
    yhat, y, _ = _labels(pred, target, mask, from_logits)
    return float(np.mean(yhat == y)) if y.size else float("nan")


def f1(pred, target, *, mask=None, from_logits: bool = True) -> float:
    """F1 score: of class 1 for binary predictions, macro-averaged for multiclass.

    Conventions (those of scikit-learn with ``zero_division=0``): a class with no true and no predicted positives
    scores 0 in the binary case; macro F1 averages over the classes that occur in the targets or the predictions.
    """
    yhat, y, c = _labels(pred, target, mask, from_logits)
    if not y.size:
        return float("nan")
    classes = [1] if np.asarray(pred).ndim == 1 else np.union1d(y, yhat)
    scores = []
    for k in classes:
        tp = np.sum((yhat == k) & (y == k))
        fp = np.sum((yhat == k) & (y != k))
        fn = np.sum((yhat != k) & (y == k))
        denom = 2 * tp + fp + fn
        scores.append(2.0 * tp / denom if denom else 0.0)
    return float(np.mean(scores))


def expected_calibration_error(pred, target, *, mask=None, n_bins: int = 10, from_logits: bool = True) -> float:
    """Expected calibration error of the top-label confidence, equal-width bins on [0, 1].

    ``ECE = sum_b (|B_b| / N) |acc(B_b) - conf(B_b)|``, bin b = ((b-1)/n_bins, b/n_bins] (bin 1 also takes 0).
    Binary predictions are read as two classes: confidence = max(p, 1 - p), correct = (p > 0.5) == target.
    Multiclass: confidence = max softmax probability (or the max of given probabilities if ``from_logits=False``).
    """
    n_bins = _checks.integer("n_bins", n_bins, low=1)
    p, t = _select(pred, target, mask, pred_ndim=(1, 2))
    if not t.size:
        return float("nan")
    if p.ndim == 1:
        _check_binary_target(t)
        prob = _binary_prob(p, from_logits)
        conf = np.maximum(prob, 1.0 - prob)
        correct = (prob > 0.5) == (t == 1)
    else:
        y = _class_target(t, p.shape[1])
        if from_logits:
            z = np.exp(p - p.max(axis=1, keepdims=True))
            prob = z / z.sum(axis=1, keepdims=True)
        else:
            prob = p
            if np.any(prob < 0) or np.any(prob > 1):
                raise ValueError("pred must be probabilities in [0, 1] when from_logits=False")
        conf = prob.max(axis=1)
        correct = np.argmax(prob, axis=1) == y
    # bin index: ceil(conf * n_bins) - 1, so a right edge belongs to its own bin and 0 goes to the first bin
    # intp, not int64: bincount refuses int64 on 32-bit WebAssembly (Pyodide)
    b = np.clip(np.ceil(conf * n_bins).astype(np.intp) - 1, 0, n_bins - 1)
    count = np.bincount(b, minlength=n_bins)
    conf_sum = np.bincount(b, weights=conf, minlength=n_bins)
    acc_sum = np.bincount(b, weights=correct.astype(np.float64), minlength=n_bins)
    # sum over bins of |B|/N * |acc - conf| == sum |acc_sum - conf_sum| / N
    return float(np.sum(np.abs(acc_sum - conf_sum)) / count.sum())


ece = expected_calibration_error


def _flat_col(pred):
    p = np.asarray(pred)
    return p[:, 0] if p.ndim == 2 and p.shape[1] == 1 else p


def rmse(pred, target, *, mask=None) -> float:
    """Root mean squared error over labelled rows. pred (N,) or (N, 1)."""
    p, t = _select(_flat_col(pred), target, mask, pred_ndim=(1,))
    return float(np.sqrt(np.mean((p - t) ** 2))) if t.size else float("nan")


def mae(pred, target, *, mask=None) -> float:
    """Mean absolute error over labelled rows. pred (N,) or (N, 1)."""
    p, t = _select(_flat_col(pred), target, mask, pred_ndim=(1,))
    return float(np.mean(np.abs(p - t))) if t.size else float("nan")


def evaluate(tasks, preds: dict, targets: dict, masks: dict | None = None, *, n_bins: int = 10) -> dict:
    """Score every non-auxiliary task with the metrics of its kind.

    regression -> {"rmse", "mae"}; binary (logits) and multiclass (logits) -> {"accuracy", "f1", "ece"}.

    Parameters
    ----------
    tasks : sequence of TaskSpec
    preds : {task: prediction} as returned by ``net.forward``
    targets : {task: (N,)}
    masks : {task: bool (N,)}, optional; a missing key means all labelled

    Returns
    -------
    {task: {metric: float}} (NaN values for a task with no labelled row)
    """
    tasks = check_unique(tasks)
    masks = {} if masks is None else masks
    for name, d in (("preds", preds), ("targets", targets), ("masks", masks)):
        if not isinstance(d, dict):
            raise ValueError(f"{name} must be a dict task -> array, got {type(d).__name__}")
    out = {}
    for spec in tasks:
        if spec.auxiliary:
            continue
        for name, d in (("preds", preds), ("targets", targets)):
            if spec.name not in d:
                raise ValueError(f"{name} has no entry for task {spec.name!r}")
        p, t, m = preds[spec.name], targets[spec.name], masks.get(spec.name)
        if spec.kind == "regression":
            out[spec.name] = {"rmse": rmse(p, t, mask=m), "mae": mae(p, t, mask=m)}
        else:
            if spec.kind == "multiclass" and (np.ndim(p) != 2 or np.shape(p)[1] != spec.n_classes):
                raise ValueError(f"preds[{spec.name!r}] must have shape (N, {spec.n_classes}), got {np.shape(p)}")
            if spec.kind == "binary" and np.ndim(p) != 1:
                raise ValueError(f"preds[{spec.name!r}] must be binary logits of shape (N,), got {np.shape(p)}")
            out[spec.name] = {
                "accuracy": accuracy(p, t, mask=m),
                "f1": f1(p, t, mask=m),
                "ece": expected_calibration_error(p, t, mask=m, n_bins=n_bins),
            }
    return out


def delta_m(mtl: dict, single: dict, higher_is_better: dict | None = None) -> float:
    """Multi-task improvement over single-task baselines, in percent (the Delta_m of LibMTL / Maninis et al.).

    ``Delta_m = 100 / K * sum_k mean_{metrics m of task k} (-1)^{l_km} (M_mtl,km - M_stl,km) / M_stl,km``
    where l_km = 1 if lower is better. Positive = the multi-task model is better on average. Like LibMTL's
    ``count_improvement``, metrics are first averaged within a task, then over the K tasks.

    Parameters
    ----------
    mtl, single : {task: {metric: value}} (the output of :func:`evaluate`) or {task: value}
        Only metrics present in both are compared; ``single`` must be non-zero there.
    higher_is_better : {metric: bool}, {task: {metric: bool}} or {task: bool}
        Defaults to ``HIGHER_IS_BETTER`` (accuracy, f1 up; ece, rmse, mae down).

    Returns
    -------
    float (percent)
    """
    for name, d in (("mtl", mtl), ("single", single)):
        if not isinstance(d, dict) or not d:
            raise ValueError(f"{name} must be a non-empty dict task -> metrics")
    hib = HIGHER_IS_BETTER if higher_is_better is None else higher_is_better
    if not isinstance(hib, dict):
        raise ValueError(f"higher_is_better must be a dict, got {type(hib).__name__}")
    if set(mtl) != set(single):
        raise ValueError(f"mtl and single must have the same tasks, got {sorted(mtl)} vs {sorted(single)}")
    per_task = []
    for task in mtl:
        a, b = mtl[task], single[task]
        flat = not isinstance(a, dict)
        if flat != (not isinstance(b, dict)):
            raise ValueError(f"mtl[{task!r}] and single[{task!r}] must both be dicts or both be numbers")
        pairs = {None: (a, b)} if flat else {m: (a[m], b[m]) for m in a if m in b}
        if not pairs:
            raise ValueError(f"task {task!r}: no metric in common between mtl and single")
        terms = []
        for metric, (va, vb) in pairs.items():
            label = task if metric is None else f"{task}/{metric}"
            va = _checks.real(f"mtl[{label}]", va)
            vb = _checks.real(f"single[{label}]", vb)
            if vb == 0.0:
                raise ValueError(f"single[{label}] is 0: the relative change is undefined")
            up = _direction(hib, task, metric)
            terms.append((va - vb) / vb * (1.0 if up else -1.0))
        per_task.append(np.mean(terms))
    return float(100.0 * np.mean(per_task))


def _direction(hib: dict, task: str, metric) -> bool:
    if task in hib:
        v = hib[task]
        if isinstance(v, dict):
            if metric not in v:
                raise ValueError(f"higher_is_better[{task!r}] has no entry for metric {metric!r}")
            return bool(v[metric])
        return bool(v)
    if metric is not None and metric in hib:
        return bool(hib[metric])
    raise ValueError(
        f"higher_is_better has no direction for task {task!r}" + ("" if metric is None else f" / metric {metric!r}")
    )

"""Masked losses: each returns the loss value and d(loss)/d(prediction) side by side.

A task's loss is the mean over its LABELLED rows only (``mask`` True). Unlabelled rows
contribute nothing: their targets may hold anything, including NaN (missing labels are
often stored as NaN), and their gradient entries are exactly 0. A batch with no labelled
row gives loss 0.0 and an all-zero gradient, never NaN.

Every public loss has the signature ``loss(pred, target, mask=None) -> (value, grad)``:

pred : (N,) or (N, 1) for mse / smooth_l1 / bce_with_logits, (N, C) logits for softmax CE
target : (N,) or (N, 1); an (N, 1) target is flattened, it never broadcasts against (N,)
mask : bool (N,) or None (= every row labelled)
value : float
grad : same shape as ``pred``

Internally each loss is split into a checked front (shapes, NaN in labelled targets)
and a raw kernel ``_name(pred (N,...), y (N,), w)`` with ``w`` either None (plain mean)
or per-row weights mask / n_labelled. Models validate once and call the kernels.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- raw kernels
# pred and y are clean (no NaN in any row), w is None or (N,) weights summing to 1 (or all 0).


def _mse(pred, y, w):
    d = pred - y
    if w is None:
        n = d.shape[0]
        return float(d @ d) / n, d * (2.0 / n)
    wd = w * d
    return float(wd @ d), wd * 2


def _smooth_l1(pred, y, w):
    # Huber with beta = 1: 0.5 d^2 inside |d| < 1, |d| - 0.5 outside; gradient is clip(d, -1, 1)
    d = pred - y
    ad = np.abs(d)
    per_row = np.where(ad < 1, 0.5 * d * d, ad - 0.5)
    g = np.clip(d, -1, 1)
    if w is None:
        n = d.shape[0]
        return float(per_row.sum()) / n, g * (1.0 / n)
    return float(w @ per_row), g * w


def _bce_with_logits(z, y, w):
    # log(1 + e^z) - z y, written so that exp only ever sees -|z| (no overflow for large |z|)
    e = np.exp(-np.abs(z))
    per_row = np.maximum(z, 0) - z * y + np.log1p(e)
    # sigmoid from the same e: z >= 0 -> 1 / (1 + e), z < 0 -> e / (1 + e)
    s = np.where(z >= 0, 1, e) / (1 + e)
    g = s - y
    if w is None:
        n = z.shape[0]
        g *= 1.0 / n
        return float(per_row.sum()) / n, g
    g *= w
    return float(w @ per_row), g


def _softmax_cross_entropy(logits, y, w):
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    ex = np.exp(shifted)
    tot = ex.sum(axis=1, keepdims=True)
    rows = np.arange(n)
    per_row = np.log(tot[:, 0]) - shifted[rows, y]
    g = ex / tot
    g[rows, y] -= 1
    if w is None:
        g *= 1.0 / n
        return float(per_row.sum()) / n, g
    g *= w[:, None]
    return float(w @ per_row), g


KERNELS = {
    "mse": _mse,
    "smooth_l1": _smooth_l1,
    "bce_with_logits": _bce_with_logits,
    "softmax_cross_entropy": _softmax_cross_entropy,
}

# ---------------------------------------------------------------- checks


def _check_mask(mask, n: int, name: str = "mask"):
    """Return a bool (N,) mask, or None when every row is labelled."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.dtype != np.bool_:
        raise ValueError(f"{name} must be a boolean array, got dtype {m.dtype}")
    if m.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {m.shape}")
    return m


def _numeric(value, name: str) -> np.ndarray:
    """``value`` as an array of a numeric dtype (NaN allowed: targets of unlabelled rows, diverged predictions)."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric array-like: {exc}") from None
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    return arr


def _flat_target(target, n: int, name: str) -> np.ndarray:
    t = _numeric(target, name)
    if t.ndim == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) or ({n}, 1), got {t.shape}")
    return t


def prepare_target(
    loss: str,
    target,
    mask,
    n: int,
    *,
    dtype=np.float64,
    n_classes: int | None = None,
    name: str = "target",
    mask_name: str = "mask",
):
    """Check a target against a loss and clean it for the raw kernels.

    Parameters
    ----------
    loss : a key of :data:`KERNELS`
    target : (N,) or (N, 1); entries in unlabelled rows are ignored (may be NaN)
    mask : bool (N,) or None
    n : number of rows N
    dtype : float dtype of the cleaned regression / binary target
    n_classes : number of classes C (softmax CE only)

    Returns
    -------
    y : (N,) cleaned target (intp class ids for softmax CE); unlabelled rows set to 0
    w : (N,) per-row weights mask / n_labelled (all 0 if nothing is labelled), or None
        when every row is labelled (plain mean)
    """
    t = _flat_target(target, n, name)
    m = _check_mask(mask, n, mask_name)
    if m is not None and m.all():
        m = None
    lab = t if m is None else t[m]
    if lab.dtype.kind == "f" and not np.all(np.isfinite(lab)):
        raise ValueError(f"{name} contains NaN or Inf in labelled rows")
    if loss == "softmax_cross_entropy":
        if lab.size and (np.any(lab != np.floor(lab)) or lab.min() < 0 or lab.max() >= n_classes):
            raise ValueError(f"{name} must hold integer class ids in [0, {n_classes}) in labelled rows")
        y = np.zeros(n, dtype=np.intp)  # intp, not int64: Pyodide (wasm32) indexes with int32
    else:
        if loss == "bce_with_logits" and lab.size and (lab.min() < 0 or lab.max() > 1):
            raise ValueError(f"{name} must lie in [0, 1] for binary cross-entropy")
        y = np.zeros(n, dtype=dtype)
    if m is None:
        y[:] = t
        return y, None
    y[m] = lab
    k = int(m.sum())
    w = m.astype(dtype)
    if k:
        w /= k
    return y, w


def _check_pred(pred, *, multiclass: bool) -> np.ndarray:
    # predictions are NOT checked for NaN: a diverged model must show up as a NaN loss
    p = _numeric(pred, "pred")
    if p.dtype.kind != "f":
        p = p.astype(np.float64)
    if multiclass:
        if p.ndim != 2 or p.shape[1] < 2:
            raise ValueError(f"pred must have shape (N, C) with C >= 2, got {p.shape}")
    elif not (p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1)):
        raise ValueError(f"pred must have shape (N,) or (N, 1), got {p.shape}")
    if p.shape[0] == 0:
        raise ValueError("pred must have at least one row")
    return p


def _apply(loss: str, pred, target, mask):
    multiclass = loss == "softmax_cross_entropy"
    p = _check_pred(pred, multiclass=multiclass)
    n = p.shape[0]
    y, w = prepare_target(loss, target, mask, n, dtype=p.dtype.type, n_classes=p.shape[1] if multiclass else None)
    flat = p if multiclass else p.reshape(n)
    value, grad = KERNELS[loss](flat, y, w)
    return value, grad.reshape(p.shape)


# ---------------------------------------------------------------- public losses


def mse(pred, target, mask=None):
    """Mean squared error over labelled rows: mean((pred - target)^2); grad 2 (pred - target) / n."""
    return _apply("mse", pred, target, mask)


def smooth_l1(pred, target, mask=None):
    """Huber loss with beta = 1 (PyTorch's smooth_l1_loss) over labelled rows."""
    return _apply("smooth_l1", pred, target, mask)


def bce_with_logits(pred, target, mask=None):
    """Binary cross-entropy on logits, stable for any logit size; target in [0, 1]."""
    return _apply("bce_with_logits", pred, target, mask)


def softmax_cross_entropy(pred, target, mask=None):
    """Softmax cross-entropy of (N, C) logits against integer class ids (float ids like 2.0 are accepted)."""
    return _apply("softmax_cross_entropy", pred, target, mask)


LOSSES = {
    "mse": mse,
    "smooth_l1": smooth_l1,
    "bce_with_logits": bce_with_logits,
    "softmax_cross_entropy": softmax_cross_entropy,
}


def loss_name(task_spec) -> str:
    """Key of :data:`LOSSES` / :data:`KERNELS` that scores a TaskSpec."""
    kind = getattr(task_spec, "kind", None)
    if kind == "binary":
        return "bce_with_logits"
    if kind == "multiclass":
        return "softmax_cross_entropy"
    if kind == "regression":
        if task_spec.loss not in ("mse", "smooth_l1"):
            raise ValueError(f"task_spec.loss must be 'mse' or 'smooth_l1', got {task_spec.loss!r}")
        return task_spec.loss
    raise ValueError(f"task_spec must be a TaskSpec with a known kind, got {task_spec!r}")


def loss_for(task_spec):
    """The public loss function ``(pred, target, mask=None) -> (value, grad)`` for a TaskSpec."""
    return LOSSES[loss_name(task_spec)]

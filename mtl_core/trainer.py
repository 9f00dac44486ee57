"""The multi-task training loop.

One step is: sample a batch -> forward -> per-task losses -> loss weights -> per-task gradients ``[T, P]`` ->
combine the shared columns (sum, PCGrad, MGDA, ...) -> optimizer update. Every step leaves a
:class:`StepRecord` in ``history`` so a UI can plot losses, weights, gradient cosines and norms as they happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping

import numpy as np

from mtl_core import _checks
from mtl_core.combine import make_combiner
from mtl_core.diagnostics import cosine_matrix, task_norms
from mtl_core.optim import Adam
from mtl_core.weighting import make_weighting


@dataclass
class StepRecord:
    """What one training step did.

    Attributes
    ----------
    step : int
        0-based index of the step.
    losses : ndarray, shape (T,)
        Per-task mean losses on the batch, before weighting.
    weights : ndarray, shape (T,)
        Loss weights the weighting method chose for this step.
    cosine : ndarray, shape (T, T)
        Cosines between the tasks' (weighted) shared-parameter gradients.
    norms : ndarray, shape (T,)
        Norms of the tasks' weighted shared-parameter gradients.
    total : float
        Weighted loss sum_k w_k L_k (+ the L2 term when used).
    combine_info : dict
        Loggable scalars from the combination method (e.g. number of PCGrad projections).
    metrics : dict or None
        {task: {metric: value}} on the evaluation data, when evaluated at this step.
    diverged : str or None
        Why training stopped at this step (a loss, gradient or parameter became NaN/Inf).
    """

    step: int
    losses: np.ndarray
    weights: np.ndarray
    cosine: np.ndarray
    norms: np.ndarray
    total: float
    combine_info: dict = field(default_factory=dict)
    metrics: dict | None = None
    diverged: str | None = None

    def as_dict(self) -> dict:
        """JSON-friendly copy (lists and floats) for logs and UIs."""
        return {
            "step": self.step,
            "losses": self.losses.tolist(),
            "weights": self.weights.tolist(),
            "cosine": self.cosine.tolist(),
            "norms": self.norms.tolist(),
            "total": float(self.total),
            "combine_info": dict(self.combine_info),
            "metrics": self.metrics,
            "diverged": self.diverged,
        }


class Trainer:
    """Train a multi-task model with a loss weighting and a gradient-combination method.

    Parameters
    ----------
    net : MultiTaskNet, SeparateNets or CrossStitchNet
        Any model with the ``losses_and_grads`` contract of ``docs/architecture.md``.
    data : MultiTaskDataset or dict of str -> MultiTaskDataset
        One dataset labelling every task on the same rows, or one dataset per task (unequal sizes). With separate
        datasets each batch row comes from one task's dataset, chosen by ``sampler``, and is labelled for that
        task only (the masked losses ignore it for the others).
    weighting : str or Weighting
        A registered name (``"equal"``, ``"uncertainty"``, ``"gradnorm"``, ...) or an instance.
    combiner : str or Combiner
        A registered name (``"sum"``, ``"pcgrad"``, ``"mgda"``, ``"cagrad"``, ...) or an instance.
    optimizer : SGD or Adam, optional
        Defaults to ``Adam(lr=0.01)``.
    batch_size : int
        Rows per step; a batch never exceeds the data, so small datasets train full-batch.
    l2 : float
        Weight decay as an extra objective, added after combination so surgery never projects it away.
    sampler : TaskSampler, optional
        Task sampler for separate datasets; defaults to proportional to dataset size.
    eval_data : MultiTaskDataset, optional
        Evaluated every ``eval_every`` steps into ``StepRecord.metrics``.
    seed : int
        Seeds the trainer's own stream (batches, dropout, PCGrad order). The model's initial weights come from
        the rng the model was built with.
    """

    def __init__(
        self,
        net,
        data,
        *,
        weighting="equal",
        combiner="sum",
        optimizer=None,
        batch_size: int = 64,
        l2: float = 0.0,
        sampler=None,
        eval_data=None,
        eval_every: int = 0,
        seed: int = 0,
        weighting_kwargs: Mapping | None = None,
        combiner_kwargs: Mapping | None = None,
    ):
        self.net = net
        self.task_names = list(net.task_names)
        self.n_tasks = len(self.task_names)
        self.batch_size = _checks.integer("batch_size", batch_size, low=1)
        self.l2 = _checks.real("l2", l2, low=0.0)
        self.eval_every = _checks.integer("eval_every", eval_every, low=0)
        self.seed = _checks.integer("seed", seed, low=0)
        self.rng = np.random.default_rng(self.seed)
        self.optimizer = optimizer if optimizer is not None else Adam(lr=0.01)
        self.weighting = (
            make_weighting(weighting, n_tasks=self.n_tasks, **dict(weighting_kwargs or {}))
            if isinstance(weighting, str)
            else weighting
        )
        self.combiner = (
            make_combiner(combiner, **dict(combiner_kwargs or {})) if isinstance(combiner, str) else combiner
        )
        self._set_data(data, sampler)
        self.eval_data = eval_data
        self.history: list[StepRecord] = []
        self.diverged: str | None = None
        self.step_count = 0

    # ------------------------------------------------------------------ data
    def _set_data(self, data, sampler) -> None:
        if isinstance(data, Mapping):
            unknown = set(data) - set(self.task_names)
            if unknown or not data:
                raise ValueError(f"data: keys must be task names {self.task_names}, got {sorted(data)}")
            self.per_task = {k: data[k] for k in self.task_names if k in data}
            if sampler is None:
                from mtl_core.sampling import TaskSampler

                sampler = TaskSampler({k: d.n_samples for k, d in self.per_task.items()}, method="proportional")
            self.sampler = sampler
            self.data = None
            dims = {d.x.shape[1] for d in self.per_task.values()}
            if len(dims) != 1:
                raise ValueError(f"data: every task's inputs must have the same width, got {sorted(dims)}")
        else:
            for name in self.task_names:
                if name not in data.targets:
                    raise ValueError(f"data: no targets for task {name!r}")
            self.data = data
            self.per_task = None
            self.sampler = None

    def _batch(self):
        if self.data is not None:
            n = self.data.n_samples
            if self.batch_size >= n:
                idx = np.arange(n)
            else:
                idx = self.rng.choice(n, size=self.batch_size, replace=False)
            return self.data.batch(idx)
        # separate datasets: allocate rows to tasks by the sampler, label each row for its own task only
        drawn = np.asarray(self.sampler.sample(self.batch_size, rng=self.rng))
        xs, targets, masks = [], {k: [] for k in self.task_names}, {k: [] for k in self.task_names}
        for name, ds in self.per_task.items():
            count = (
                int(np.sum(drawn == name))
                if drawn.dtype.kind in "UO"
                else int(np.sum(drawn == list(self.per_task).index(name)))
            )
            if count == 0:
                continue
            idx = self.rng.choice(ds.n_samples, size=count, replace=count > ds.n_samples)
            x, t, m = ds.batch(idx)
            xs.append(x)
            for other in self.task_names:
                if other == name:
                    targets[other].append(np.asarray(t[name], dtype=float))
                    masks[other].append(np.asarray(m[name], dtype=bool))
                else:
                    targets[other].append(np.zeros(count))
                    masks[other].append(np.zeros(count, dtype=bool))
        x = np.concatenate(xs)
        return (x, {k: np.concatenate(v) for k, v in targets.items()}, {k: np.concatenate(v) for k, v in masks.items()})

    def _kpis(self, preds, targets, masks) -> np.ndarray:
        """Per-task score in [0, 1] (higher is better) for performance-based weighting."""
        kpi = np.zeros(self.n_tasks)
        tasks = {t.name: t for t in self._tasks()}
        for k, name in enumerate(self.task_names):
            m = np.asarray(masks.get(name, np.ones(len(targets[name]), bool)), bool)
            if not m.any():
                kpi[k] = 1.0
                continue
            p, y = np.asarray(preds[name])[m], np.asarray(targets[name])[m]
            kind = tasks[name].kind if name in tasks else "regression"
            if kind == "binary":
                kpi[k] = np.mean((p > 0) == (y > 0.5))
            elif kind == "multiclass":
                kpi[k] = np.mean(np.argmax(p, axis=1) == y.astype(int))
            else:  # R^2 clipped to [0, 1]
                var = float(np.var(y)) or 1.0
                kpi[k] = float(np.clip(1.0 - np.mean((p.reshape(-1) - y) ** 2) / var, 0.0, 1.0))
        return np.clip(kpi, 1e-6, 1.0)

    def _tasks(self):
        if self.data is not None:
            return self.data.tasks
        return [t for ds in self.per_task.values() for t in ds.tasks]

    # ------------------------------------------------------------------ training
    def step(self) -> StepRecord:
        """Run one training step and append its record to ``history``.

        A step whose losses, gradient or updated parameters are not finite sets ``diverged`` to the reason, is
        recorded with that reason, and leaves the parameters as they were before the step.
        """
        if self.diverged is not None:
            raise RuntimeError(f"training has diverged ({self.diverged}); reset the model to continue")
        # overflow is expected on the way to a divergence, which is detected and reported below
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._step()

    def _step(self) -> StepRecord:
        t = self.step_count
        x, targets, masks = self._batch()
        res = self.net.losses_and_grads(x, targets, masks, rng=self.rng, train=True)
        losses = np.asarray(res.losses, dtype=float)
        T, n_shared = self.n_tasks, res.n_shared
        reason = _nonfinite("loss", losses, self.task_names, t)
        if reason is None:
            reason = _nonfinite("gradient", res.grads, self.task_names, t)
        if reason is not None:
            return self._record_divergence(t, losses, reason)

        grads_last = res.grads[:, self.net.last_shared] if getattr(self.weighting, "needs_grads", False) else None
        metrics = self._kpis(res.preds, targets, masks) if getattr(self.weighting, "needs_metrics", False) else None
        weights = np.asarray(self.weighting.step(losses, step=t, grads_last=grads_last, metrics=metrics), float)

        weighted = res.grads * weights.astype(res.grads.dtype)[:, None]
        shared = weighted[:, :n_shared]
        if n_shared:
            out = self.combiner.combine(shared, rng=self.rng)
            shared_dir, info = out.direction, dict(out.info or {})
        else:
            shared_dir, info = np.zeros(0, dtype=res.grads.dtype), {}
        direction = np.concatenate([shared_dir, weighted[:, n_shared:].sum(axis=0)])
        total = float(weights @ losses)
        if self.l2:
            reg_value, reg_grad = self.net.regularization(self.l2)
            direction = direction + reg_grad
            total += float(reg_value)
        if not np.all(np.isfinite(direction)):
            return self._record_divergence(t, losses, f"the combined update became non-finite at step {t}", weights)
        before = self.net.params.copy()
        self.optimizer.step(self.net.params, direction.astype(self.net.params.dtype, copy=False))
        if not np.all(np.isfinite(self.net.params)):
            self.net.params[...] = before
            return self._record_divergence(
                t, losses, f"the parameters became non-finite at step {t} (learning rate too large?)", weights
            )

        rec = StepRecord(
            step=t,
            losses=losses,
            weights=weights,
            cosine=cosine_matrix(shared) if n_shared else np.eye(T),
            norms=task_norms(shared) if n_shared else np.zeros(T),
            total=total,
            combine_info=info,
        )
        self.step_count += 1
        if self.eval_data is not None and self.eval_every and self.step_count % self.eval_every == 0:
            rec.metrics = self.evaluate(self.eval_data)
        self.history.append(rec)
        return rec

    def _record_divergence(self, t, losses, reason, weights=None) -> StepRecord:
        self.diverged = reason
        T = self.n_tasks
        rec = StepRecord(
            step=t,
            losses=np.asarray(losses, float),
            weights=np.full(T, np.nan) if weights is None else weights,
            cosine=np.full((T, T), np.nan),
            norms=np.full(T, np.nan),
            total=float("nan"),
            diverged=reason,
        )
        self.history.append(rec)
        return rec

    def run(self, n_steps: int, callback: Callable[[StepRecord], bool | None] | None = None) -> list[StepRecord]:
        """Run up to ``n_steps`` steps; stops early on divergence or when ``callback(record)`` returns False."""
        n_steps = _checks.integer("n_steps", n_steps, low=0)
        done = []
        for _ in range(n_steps):
            if self.diverged is not None:
                break
            rec = self.step()
            done.append(rec)
            if rec.diverged is not None:
                break
            if callback is not None and callback(rec) is False:
                break
        return done

    def evaluate(self, data) -> dict:
        """Per-task metrics ({task: {metric: value}}) of the current model on ``data``, auxiliary tasks left out."""
        from mtl_core.metrics import evaluate

        preds = self.net.forward(data.x)
        return evaluate(data.tasks, preds, data.targets, data.masks)


def _nonfinite(what: str, values: np.ndarray, names, step: int) -> str | None:
    bad = ~np.isfinite(values)
    if not bad.any():
        return None
    row = int(np.argwhere(bad)[0][0])
    kind = "nan" if np.isnan(values.reshape(len(names), -1)[row]).any() else "inf"
    return f"{what} of task {names[row]!r} became {kind} at step {step}"

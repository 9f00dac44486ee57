"""State of the "Loss-Weighting Lab" page (app/weighting_lab.py is its view): settings, data, one trainer per
weighting method and the plot data, with no widgets.

Data, nets, weightings, samplers, training and losses come from ``mtl_core``; plot data lives in Bokeh
ColumnDataSources named as listed in app/weighting_lab.py.

Your own data (issue 14): ``data = "custom"`` trains on an uploaded ``x…,y_reg,y_cls`` file (:meth:`WeightingLabState.
load_csv`), kept in this state (the server session's, or the worker's on the static site) and in the browser tab
(``common.keep_own_data``), never in the URL.
Its inputs are standardised, its targets are left as they are (their scales are the point of this page), and its
rows are split into training and test rows like the generated data's.
"""

from __future__ import annotations

import numpy as np
import param
from bokeh.models import ColumnDataSource

from app import common
from app.custom_data import CustomData, CustomDataError, fit_inputs, parse_regression_classification, train_on
from app.settings import CUSTOM, Setting, data_setting, lr_setting, optimizer_setting, seed_setting, settings_class

METHODS = ("equal", "uncertainty", "gradnorm", "dwa")
METHOD_LABELS = {"equal": "Equal", "uncertainty": "Uncertainty", "gradnorm": "GradNorm", "dwa": "DWA"}
DATA_LABELS = {"scale": "Scale mismatch", "unequal": "Unequal sizes"}
N_BIG = 1000  # rows of the big task in the unequal-sizes setting
N_SCALE = 400  # rows of the scale-mismatch data
TEST_FRACTION = 0.3
MAX_STEPS = 1000
STEPS_PER_TICK = 8  # steps per 100-ms tick to start with; common.Animator adapts it to keep ticks short
RECORD_EVERY = 8  # while training live, the curves get a point every this many steps (not every tick)
BATCH = 64
TRUNK = (32, 32)
BLOWUP = 1e4  # a test loss this many times its starting value counts as diverged (keeps plots readable)
CUSTOM_TASKS = ("y_reg", "y_cls")  # one's own data: the tasks are named after the file's columns
FALLBACK_NOTICE = (
    "There is no data of your own in this browser tab (your file never travels in a link; a reload of the tab "
    "you uploaded it in keeps it): showing the generated data. Upload a CSV (x…, y_reg, y_cls) to use your own."
)

SETTINGS = (
    Setting(
        "methods",
        "multi",
        METHODS,
        choices=METHODS,
        label="Weighting methods",
        labels=METHOD_LABELS,
        help="Each chosen method trains its own copy of the same network, side by side.",
    ),
    data_setting(
        DATA_LABELS,
        "Regression + classification with mismatched loss scales, two tasks of unequal size, or your own CSV "
        "(x…, y_reg, y_cls).",
    ),
    Setting(
        "scale_log10",
        "float",
        2.0,
        0.0,
        3.0,
        step=0.25,
        label="Regression scale (log₁₀)",
        help="Scale mismatch only: the regression target is multiplied by 10^this.",
    ),
    Setting(
        "missing",
        "float",
        0.0,
        0.0,
        0.9,
        step=0.05,
        label="Missing labels",
        help="Fraction of each task's training labels hidden; masked losses average over the rest.",
    ),
    Setting(
        "alpha",
        "float",
        0.5,
        0.0,
        1.0,
        step=0.05,
        label="Sampling exponent α",
        help="Unequal sizes only: P(task k) ∝ n_k^α (α = 1 proportional to size, α = 0 uniform).",
    ),
    Setting(
        "n_small",
        "int",
        50,
        10,
        1000,
        step=10,
        label="Small task rows",
        help="Unequal sizes only: rows of the small task (the big one has 1000).",
    ),
    optimizer_setting("sgd", "Adam, or plain SGD (which feels the loss scales)."),
    lr_setting(0.01, 0.0001, 1.0, "Step size; changes apply at once, without a reset."),
    seed_setting("Seeds the data, the split, the nets and batches."),
)
RESET_ON = tuple(s.name for s in SETTINGS if s.name != "lr")


def _empty_curves() -> dict:
    return {k: [] for k in ("step", "loss_0", "loss_1", "weight_0", "weight_1", "share_0")}


def _positive(v: float) -> float:
    """Log axes cannot show 0 or negatives: those points become gaps (NaN) rather than breaking the plot."""
    v = float(v)
    return v if np.isfinite(v) and v > 0 else float("nan")


def sampling_probabilities(sizes: dict, alpha: float) -> dict:
    """{task: P(task)} of the temperature sampler, P ∝ n^alpha (from mtl_core.sampling.TaskSampler)."""
    from mtl_core.sampling import TaskSampler

    return TaskSampler(sizes, method="temperature", alpha=alpha).probabilities()


_Settings = settings_class("_WeightingLabSettings", SETTINGS)


class WeightingLabState(common.TrainingClock, _Settings):
    """Settings, data, one trainer per weighting method, and the plot data (no widgets).

    ``tick()`` runs a few steps of every run (what the periodic callback calls), ``step_once()`` exactly one,
    ``reset()`` rebuilds data and runs from the settings. Plot data lives in ``self.sources``.
    """

    max_steps, steps_per_tick, reset_on = MAX_STEPS, STEPS_PER_TICK, RESET_ON
    error = param.String("", doc="Which runs diverged and what to do, plain text; empty when fine.")
    summary = param.String("", doc="Plain text, one line per method: latest test losses.")
    sampling_text = param.String("", doc="Plain text: the sampling rule and its probabilities.")
    data_summary = param.String("", doc="Plain text: the rows and labels the runs train on.")
    data_error = param.String("", doc="Plain text: why the last upload was refused (the data stayed).")
    fallback_notice = param.String("", doc="Plain text: set when data=custom came without data of one's own.")
    custom = param.ClassSelector(
        class_=CustomData, default=None, allow_None=True, doc="The reader's own rows: this session and its browser tab."
    )

    def __init__(self, **params):
        self._generated = "scale"  # the generated data to go back to
        super().__init__(**params)
        self.sources = {f"curves_{m}": ColumnDataSource(_empty_curves(), name=f"curves_{m}") for m in METHODS}
        self.sources["sampling"] = ColumnDataSource({"task": [], "size": [], "prob": []}, name="sampling_source")
        self.sources["sampling_curve"] = ColumnDataSource({"alpha": [], "p_0": [], "p_1": []}, name="sampling_curve")
        self.sources["sampling_marker"] = ColumnDataSource({"alpha": [], "p": []}, name="sampling_marker")
        self.reset()

    # ------------------------------------------------------------------ building the runs
    @property
    def sizes(self) -> dict:
        """Rows per task of the unequal-sizes setting."""
        return {"big": N_BIG, "small": int(self.n_small)}

    def _make_data(self):
        """(train, test, tasks): train/test are a dataset (scale, custom) or {task: dataset} (unequal)."""
        from mtl_core.data import make_scale_mismatch, make_unequal_tasks

        data_ss, split_ss, miss_ss = np.random.SeedSequence(self.seed).spawn(3)
        data_rng, split_rng, miss_rng = (np.random.default_rng(s) for s in (data_ss, split_ss, miss_ss))
        if self.data in ("scale", CUSTOM):
            if self.data == CUSTOM:
                full = _dataset(self.custom)
            else:
                full = make_scale_mismatch(N_SCALE, rng=data_rng, scale=10.0**self.scale_log10)
            train, test = full.split(TEST_FRACTION, rng=split_rng)
            # labels go missing in training only: the test losses stay comparable across settings
            if self.missing > 0:
                train = train.with_missing(self.missing, rng=miss_rng)
            return train, test, list(full.tasks)
        parts = make_unequal_tasks(self.sizes, rng=data_rng)
        train, test = {}, {}
        for name, ds in parts.items():
            tr, te = ds.split(TEST_FRACTION, rng=split_rng)
            train[name] = tr.with_missing(self.missing, rng=miss_rng) if self.missing > 0 else tr
            test[name] = te
        return train, test, [parts[n].tasks[0] for n in parts]

    def _make_optimizer(self):
        from mtl_core.optim import SGD, Adam

        return Adam(lr=self.lr) if self.optimizer == "adam" else SGD(lr=self.lr)

    def reset(self) -> None:
        """Draw the data and fresh, identical nets for every chosen method; clear every curve."""
        from mtl_core.nets import MultiTaskNet
        from mtl_core.sampling import TaskSampler
        from mtl_core.trainer import Trainer

        self.running = False
        if self.data == CUSTOM and self.custom is None:
            # only at construction (a watcher handles every later change, _on_reset_setting): nothing listens yet
            self.fallback_notice = FALLBACK_NOTICE
            with param.parameterized.discard_events(self):
                self.data = self._generated
        if self.data != CUSTOM:
            self._generated = self.data
        self.train_data, self.test_data, self.tasks = self._make_data()
        self.task_names = [t.name for t in self.tasks]
        in_dim = (self.train_data if self.data != "unequal" else next(iter(self.train_data.values()))).in_dim
        net_seed, train_seed = np.random.SeedSequence(self.seed).spawn(5)[3:5]
        train_seed = int(train_seed.generate_state(1)[0])
        self.runs = {}
        for m in self.methods:
            # same init for every method: differences come from the weighting alone
            net = MultiTaskNet(in_dim, self.tasks, trunk=TRUNK, activation="tanh", rng=np.random.default_rng(net_seed))
            sampler = None
            if self.data == "unequal":
                sizes = {k: int(d.n_samples) for k, d in self.train_data.items()}
                sampler = TaskSampler(sizes, method="temperature", alpha=self.alpha)
            self.runs[m] = Trainer(
                net,
                self.train_data,
                weighting=m,
                combiner="sum",
                weighting_kwargs=common.WEIGHTING_KWARGS.get(m),
                optimizer=self._make_optimizer(),
                batch_size=BATCH,
                sampler=sampler,
                seed=train_seed,
            )
        self.error = ""
        self.blown = {}
        self.initial_losses = {}
        self.steps = 0
        for m in METHODS:
            self.sources[f"curves_{m}"].data = _empty_curves()
        self._record()
        self._update_sampling()
        self._update_text()
        self._update_summary()

    # ------------------------------------------------------------------ the reader's own data
    def _on_reset_setting(self, *events) -> None:
        if self.data == CUSTOM and self.custom is None:
            # data=custom from a link (or the Data choice) without a file of one's own in this session: say so and
            # go back to the generated data (that change comes through here again and starts the new run)
            self.fallback_notice = self.data_error = FALLBACK_NOTICE  # the notice on top, and beside the upload
            self.data = self._generated
            return
        super()._on_reset_setting(*events)

    def load_csv(self, raw: bytes | str) -> bool:
        """Train on an uploaded ``x…,y_reg,y_cls`` file; False (``data_error`` says why) if it is refused, and then
        the data stays as it was."""
        try:
            table = fit_inputs(parse_regression_classification(raw))
        except CustomDataError as exc:
            self.data_error = str(exc)
            return False
        train_on(self, table)
        return True

    def reset_to_generated(self) -> None:
        """Forget the reader's own file and train on the generated data again."""
        self.custom = None
        self.data_error = ""
        if self.data == CUSTOM:
            self.data = self._generated
        else:
            self._on_reset_setting()

    def _update_summary(self) -> None:
        n_train, n_test = _rows(self.train_data), _rows(self.test_data)
        split = f"{n_train} training rows, {n_test} test rows"
        if self.data == CUSTOM:
            c = self.custom
            cols = ", ".join(c.x_columns)
            counts = ", ".join(f"{k} {v}" for k, v in c.n_labelled().items())
            note = f"; {c.note}" if c.note else ""
            self.data_summary = (
                f"Your data: {c.n_rows} rows, {len(c.x_columns)} input column{'s' * (len(c.x_columns) > 1)} "
                f"({cols}); labels: {counts}; {split}{note}."
            )
        elif self.data == "scale":
            self.data_summary = f"Generated data (scale mismatch): {split}, 2 inputs, both labels on every row."
        else:
            self.data_summary = f"Generated data (unequal sizes): {split}, 2 inputs, one task per dataset."

    def optimizers(self) -> list:
        return [tr.optimizer for tr in self.runs.values()]

    # ------------------------------------------------------------------ training
    def can_train(self) -> bool:
        return bool(self._active())  # go on while at least one run has not diverged

    def _active(self) -> list[str]:
        return [m for m in self.runs if self.diverged(m) is None]

    def diverged(self, method: str) -> str | None:
        """Why a run stopped (the trainer saw NaN/Inf, or its test loss blew up), or None."""
        return self.runs[method].diverged or self.blown.get(method)

    def _train(self, n: int) -> None:
        n = max(0, min(n, self.max_steps - self.steps))
        if n == 0 or not self._active():
            return
        for m in self._active():
            self.runs[m].run(n)
        before, self.steps = self.steps, self.steps + n
        # However many steps the Animator gives a tick (1 to 12), the curves get a point every RECORD_EVERY steps:
        # a point per short tick would send the browser more redraws than it can follow (and the lines more points
        # than they need). A Step, or a tick of a paused page, always shows its result.
        if not self.running or self.steps // RECORD_EVERY > before // RECORD_EVERY or self.steps >= self.max_steps:
            self._record()
        bad = [(m, self.diverged(m)) for m in self.runs if self.diverged(m) is not None]
        if bad:
            lines = [f"{METHOD_LABELS[m]} diverged ({why}); its curves stop at the last good step." for m, why in bad]
            lines.append("Lower the learning rate (or the regression scale) and press Reset.")
            self.error = " ".join(lines)
        self._update_text()

    # ------------------------------------------------------------------ recording
    def test_losses(self, method: str) -> np.ndarray:
        """(2,) mean test loss of each task for one run."""
        from mtl_core.losses import loss_for

        net = self.runs[method].net
        out = np.zeros(len(self.tasks))
        for k, spec in enumerate(self.tasks):
            test = self.test_data[spec.name] if self.data == "unequal" else self.test_data
            pred = net.forward(test.x)[spec.name]
            out[k] = loss_for(spec)(pred, test.targets[spec.name], test.masks[spec.name])[0]
        return out

    def _record(self) -> None:
        for m, tr in self.runs.items():
            if self.diverged(m) is not None:
                continue
            losses = self.test_losses(m)
            start = self.initial_losses.setdefault(m, losses.copy())
            grown = ~np.isfinite(losses) | (losses > BLOWUP * np.maximum(start, 1e-12))
            if grown.any():
                k = int(np.argmax(grown))
                self.blown[m] = (
                    f"the test loss of task '{self.task_names[k]}' grew over {BLOWUP:.0e} times its "
                    f"starting value by step {self.steps}"
                )
                continue
            if tr.history:
                rec = tr.history[-1]
                weights, batch_losses = np.asarray(rec.weights, float), np.asarray(rec.losses, float)
            else:  # before the first step: the weights the method would start with
                weights, batch_losses = self._initial_weights(m), losses
            weighted = weights * batch_losses
            share = weighted[0] / weighted.sum() if weighted.sum() > 0 else float("nan")
            common.append_rows(
                self.sources[f"curves_{m}"],
                {
                    "step": [self.steps],
                    "loss_0": [_positive(losses[0])],
                    "loss_1": [_positive(losses[1])],
                    "weight_0": [_positive(weights[0])],
                    "weight_1": [_positive(weights[1])],
                    "share_0": [float(share)],
                },
            )

    def _initial_weights(self, method: str) -> np.ndarray:
        w = self.runs[method].weighting
        if method == "uncertainty":
            return 0.5 * np.exp(-np.asarray(w.log_var, float))
        if method == "gradnorm":
            return np.asarray(w.w, float).copy()
        return np.ones(len(self.tasks))

    def _update_sampling(self) -> None:
        sizes = self.sizes
        probs = sampling_probabilities(sizes, self.alpha)
        names = list(sizes)
        self.sources["sampling"].data = {
            "task": names,
            "size": [sizes[k] for k in names],
            "prob": [probs[k] for k in names],
        }
        alphas = np.linspace(0.0, 1.0, 41)
        curve = np.array([[sampling_probabilities(sizes, a)[k] for k in names] for a in alphas])
        self.sources["sampling_curve"].data = {"alpha": alphas, "p_0": curve[:, 0], "p_1": curve[:, 1]}
        self.sources["sampling_marker"].data = {
            "alpha": [self.alpha, self.alpha],
            "p": [probs[names[0]], probs[names[1]]],
        }
        uniform, prop = 1.0 / len(names), sizes["small"] / sum(sizes.values())
        where = (
            ""
            if self.data == "unequal"
            else " (These are used when Data = Unequal sizes; in the scale-mismatch data (and your own) every row "
            "can have both labels, so there is nothing to sample.)"
        )
        self.sampling_text = (
            f"P(small) = {probs['small']:.3f}, P(big) = {probs['big']:.3f} at α = {self.alpha:.2f}, "
            f"for {sizes['big']} vs {sizes['small']} rows. Uniform (α = 0) would give {uniform:.2f} each; "
            f"proportional (α = 1) gives the small task only {prop:.3f}." + where
        )

    # ------------------------------------------------------------------ readouts
    def latest(self, method: str) -> dict:
        """Last recorded values of a run's curves ({column: value})."""
        data = self.sources[f"curves_{method}"].data
        return {k: data[k][-1] for k in data if len(data[k])}

    def describe(self) -> dict[str, str]:
        """The plots in words, now (the page's text alternative; keys start the figures' names)."""
        t0, t1 = self.task_names
        texts = {"status": f"{self.status_line() if self.runs else 'No weighting method chosen'}."}
        last = {m: self.latest(m) for m in self.runs}
        if not any(last.values()):
            texts["loss"] = "No training yet: the curves are empty."
        else:

            def per_method(fmt) -> str:
                return "; ".join(
                    f"{METHOD_LABELS[m]} {fmt(v)}{' (diverged)' if self.diverged(m) else ''}"
                    for m, v in last.items()
                    if v
                )

            texts["loss_figure_0"] = f"Test loss of {t0} - " + per_method(lambda v: f"{v['loss_0']:.4g}") + "."
            texts["loss_figure_1"] = f"Test loss of {t1} - " + per_method(lambda v: f"{v['loss_1']:.4g}") + "."
            texts["weight"] = (
                f"Loss weights {t0} / {t1} - "
                + per_method(lambda v: f"{v['weight_0']:.3g} / {v['weight_1']:.3g}")
                + "."
            )
            texts["share"] = (
                f"{t0}'s share of the weighted loss - " + per_method(lambda v: f"{100 * v['share_0']:.0f}%") + "."
            )
        texts["sampling"] = self.sampling_text.split(". ")[0].rstrip(".") + "."  # its first sentence: the numbers
        return texts

    def _update_text(self) -> None:
        self.status = self.status_line() if self.runs else "Pick at least one weighting method to train."
        t0, t1 = self.task_names
        lines = []
        for m in self.runs:
            last = self.latest(m)
            tail = " (diverged)" if self.diverged(m) else ""
            lines.append(
                f"{METHOD_LABELS[m]}: test loss {t0} = {last['loss_0']:.4g}, {t1} = {last['loss_1']:.4g}; "
                f"weights {last['weight_0']:.3g} / {last['weight_1']:.3g}; "
                f"{t0}'s share of the weighted loss {100 * last['share_0']:.0f}%{tail}"
            )
        self.summary = "\n".join(lines)


def _rows(data) -> int:
    return sum(d.n_samples for d in data.values()) if isinstance(data, dict) else data.n_samples


def _dataset(custom: CustomData):
    """One MultiTaskDataset from one's own rows: regression "y_reg" and binary "y_cls" (NaN = no label)."""
    from mtl_core.data import MultiTaskDataset
    from mtl_core.tasks import TaskSpec

    tasks = [TaskSpec(CUSTOM_TASKS[0], kind="regression"), TaskSpec(CUSTOM_TASKS[1], kind="binary")]
    masks = {t: ~np.isnan(custom.labels[t]) for t in CUSTOM_TASKS}
    targets = {t: np.nan_to_num(custom.labels[t]) for t in CUSTOM_TASKS}
    return MultiTaskDataset(custom.x, targets, masks, tasks)

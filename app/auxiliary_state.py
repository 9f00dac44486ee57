"""State of the "Auxiliary tasks and evaluation" page (app/auxiliary.py is its view): settings, data, the live
runs, the number-of-tasks sweep, the two-head exercise and the plot data, with no widgets.

Data, nets, weightings, training, metrics and the two-head model come from ``mtl_core``; plot data lives in Bokeh
ColumnDataSources named as listed in app/auxiliary.py.

Your own data (issue 14): ``data = "custom"`` trains the three runs on ``self.custom``, an uploaded
``x1,x2,main,aux`` file (:meth:`AuxiliaryState.load_csv`): ``main`` 0/1 on the few rows that have a main label
(empty elsewhere: the unlabelled rows the page is about), ``aux`` on (nearly) every row, 0/1 or a number as
``aux_kind`` says. A quarter of the main-labelled rows and a quarter of the others are held out to score on. Kept
in this state and in the browser tab (``common.keep_own_data``); the URL says ``data=custom`` and falls back to the
generated data (``fallback_notice``) when there is no file in this tab. The sweep and the two-head exercise always
use their own generated data.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import param
from bokeh.models import ColumnDataSource

from app import common
from app.custom_data import CustomData, CustomDataError, fit_inputs, hold_out_stratified, parse_main_aux, train_on
from app.settings import CUSTOM, Setting, data_setting, seed_setting, settings_class

MAX_STEPS = 400
STEPS_PER_TICK = 8  # steps per 100-ms tick to start with; common.Animator adapts it to keep ticks short
RECORD_EVERY = 5  # while training live, the curves and the table get a point every this many steps
N_TRAIN = 200  # rows of the training set; every one has an auxiliary label, only ``main_labels`` a main label
N_TEST = 1000  # fresh rows, every task labelled: a test accuracy good to about +-1.5 points
TRUNK = (16, 16)
LR = 0.03
TWIST = 0.3  # how much the arms of the pattern turn (mtl_core.data): learnable by a small net from ~20 labels
NOISE = 0.05
SWEEP_ROWS = 20  # rows of each task in the number-of-tasks sweep
SWEEP_STEPS = 300  # full-batch steps of each sweep run
SWEEP_REPEATS = 2  # runs (seeds) averaged per number of tasks
TWO_HEAD_ROWS = 6  # rows of the two-head exercise: its (N, N) matrix stays readable
TWO_HEAD_HIDDEN = 8
GENERATED = "generated"
HOLDOUT = 0.25  # of the main-labelled rows of a file, and of the others: held out to score on
EXTENT = 3.5  # a file's inputs inside [-EXTENT, EXTENT]^2 stay as they are (the generated inputs are N(0, I))
DATA_KNOBS = ("relatedness", "main_labels")  # they shape the generated data only
FALLBACK_NOTICE = (
    "There is no data of your own in this browser tab (your file never travels in a link; a reload of the tab "
    "you uploaded it in keeps it): showing the generated data. Upload a CSV to use your own."
)

MODELS = ("with_aux", "alone", "aux_alone")  # main + auxiliary, main alone, auxiliary alone (its own baseline)
MODEL_LABELS = {"with_aux": "main + auxiliary", "alone": "main alone", "aux_alone": "auxiliary alone"}
AUX_KINDS = {"binary": "Yes/no label", "regression": "Numeric score"}
METRICS = ("accuracy", "f1", "ece", "rmse", "mae")

ALPHA_HELP = "L = α L_a + (1 − α) L_b in the two-head exercise."
SETTINGS = (
    Setting(
        "relatedness",
        "float",
        1.0,
        0.0,
        1.0,
        step=0.05,
        label="Task relatedness",
        help="1 = the auxiliary labels follow the main task's pattern; 0 = its pattern is turned by 45° and "
        "tells nothing about the main task.",
    ),
    Setting(
        "main_labels",
        "int",
        20,
        5,
        N_TRAIN,
        step=5,
        label="Main-task labels",
        help=f"How many of the {N_TRAIN} training rows have a main-task label (every row has an auxiliary one).",
    ),
    Setting(
        "aux_kind",
        "choice",
        "binary",
        labels=AUX_KINDS,
        label="Auxiliary target",
        help="A yes/no label, or the numeric score whose sign is that label (a regression head).",
    ),
    Setting(
        "deep",
        "bool",
        False,
        label="Deep supervision (layer-1 aux head)",
        help="The auxiliary head reads the first hidden layer instead of the last one.",
    ),
    Setting(
        "l2",
        "float",
        0.0,
        0.0,
        0.01,
        step=0.0005,
        label="L2 weight λ",
        help="Adds ½ λ ‖W‖² to the objective of every model (an extra 'task' that prefers small weights).",
    ),
    Setting(
        "dropout",
        "float",
        0.0,
        0.0,
        0.5,
        step=0.05,
        label="Dropout",
        help="Probability of zeroing each hidden unit during training, in every model.",
    ),
    Setting(
        "main_from",
        "int",
        0,
        0,
        300,
        step=10,
        label="Curriculum: main task joins at step",
        help="0 = both tasks from the start; k > 0 = the auxiliary task trains alone until step k.",
    ),
    Setting(
        "n_tasks",
        "int",
        6,
        2,
        6,
        step=1,
        label="Number of tasks (sweep up to)",
        help=f"The sweep trains one trunk on 1, 2, ... this many related tasks of {SWEEP_ROWS} rows each.",
    ),
    Setting("alpha", "float", 0.5, 0.0, 1.0, step=0.05, label="Two-head weight α", help=ALPHA_HELP),
    Setting(
        "flatten_bug",
        "bool",
        False,
        label="Forget to flatten the (N, 1) heads",
        help="Shows what the loss would be if (N, 1) outputs were subtracted from (N,) targets.",
    ),
    seed_setting("Seeds the data, the nets, the sweep and the two-head exercise."),
    data_setting(
        {GENERATED: "Generated"},
        "Generated points, or your own: a CSV x1,x2,main,aux (an empty main cell = an unlabelled row).",
    ),
)
RESET_ON = ("relatedness", "main_labels", "aux_kind", "deep", "l2", "dropout", "main_from", "seed", "data")
SWEEP_ON = ("relatedness", "n_tasks", "seed")  # a change makes the sweep's points stale: they are cleared
TWO_HEAD_ON = ("alpha", "flatten_bug", "seed")


def _empty_curves() -> dict:
    return {k: [] for k in ("step", "with_test", "alone_test", "with_train", "alone_train", "gain")}


def _sources() -> dict:
    """The page's plot data, empty: {key: ColumnDataSource named ``<key>_source``}."""
    empty = {"curves": _empty_curves(), "eval": _empty_table(), "sweep": _empty_sweep()}
    empty["two_head"] = {"term": [], "right": [], "wrong": []}
    return {key: ColumnDataSource(data, name=f"{key}_source") for key, data in empty.items()}


def _empty_table() -> dict:
    return {"model": [], "task": [], "counted": [], **{m: [] for m in METRICS}}


def _empty_sweep() -> dict:
    return {k: [] for k in ("n_tasks", "gap", "test_error", "train_error")}


def _seeds(seed: int, n: int) -> list[np.random.Generator]:
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _only(data, task: str, *, counted: bool = True):
    """``data`` restricted to one task and to the rows labelled for it (``counted``: not auxiliary any more)."""
    from mtl_core.data import MultiTaskDataset

    spec = next(t for t in data.tasks if t.name == task)
    x, targets, masks = data.batch(data.masks[task])
    spec = dataclasses.replace(spec, auxiliary=False, attach_at=None) if counted else spec
    return MultiTaskDataset(x, {task: targets[task]}, {task: masks[task]}, [spec])


_Settings = settings_class("_AuxiliarySettings", SETTINGS)


class AuxiliaryState(common.TrainingClock, _Settings):
    """Settings, data, the three live runs, the sweep, the two-head exercise and the plot data (no widgets).

    ``tick()`` runs a few training steps of the three runs, ``step_once()`` exactly one, ``reset()`` rebuilds data
    and runs from the settings. ``self.sweep`` (a :class:`TaskCountSweep`) trains the number-of-tasks sweep on
    demand; ``self.two_head`` holds the numbers of the two-head exercise.
    """

    max_steps, steps_per_tick, reset_on = MAX_STEPS, STEPS_PER_TICK, RESET_ON
    summary = param.String("", doc="Plain text: the main task's test accuracy with and without the auxiliary task.")
    delta_text = param.String("", doc="Plain text: Δm against the single-task baselines.")
    data_summary = param.String("", doc="Plain text: the rows and labels the runs train on.")
    data_error = param.String("", doc="Plain text: why the last upload (or Auxiliary target) was refused.")
    fallback_notice = param.String("", doc="Plain text: set when data=custom came without data of one's own.")
    custom = param.ClassSelector(
        class_=CustomData, default=None, allow_None=True, doc="The reader's own rows: this session and its browser tab."
    )

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = _sources()
        self.evaluation = {}
        self.two_head = {}
        self.sweep = TaskCountSweep(self)
        self.param.watch(lambda *_: self.sweep.stop_and_reset(), list(SWEEP_ON))
        self.param.watch(lambda *_: self.update_two_head(), list(TWO_HEAD_ON))
        self.reset()
        self.update_two_head()

    # ------------------------------------------------------------------ building the runs
    def make_data(self):
        """(train, test): train labels the main task on ``main_labels`` rows only; test labels every row. With
        one's own data: the file's training rows and its held-out ones, labelled as the file says."""
        from mtl_core.data import make_main_and_auxiliary

        if self.data == CUSTOM:
            train, test = _main_aux_datasets(self.custom, self.aux_kind)
        else:
            train_rng, test_rng = _seeds(self.seed, 2)
            kw = dict(relatedness=self.relatedness, noise=NOISE, aux_kind=self.aux_kind, twist=TWIST)
            train = make_main_and_auxiliary(N_TRAIN, rng=train_rng, main_labels=self.main_labels, **kw)
            test = make_main_and_auxiliary(N_TEST, rng=test_rng, main_labels=N_TEST, **kw)
        if self.deep:  # the auxiliary head reads hidden layer 1 (index 0) instead of the last
            from mtl_core.data import MultiTaskDataset

            tasks = [train.tasks[0], dataclasses.replace(train.tasks[1], attach_at=0)]
            train = MultiTaskDataset(train.x, train.targets, train.masks, tasks)
        return train, test

    def reset(self) -> None:
        """Draw the data and fresh nets for the three runs from the settings; clear the curves and the table."""
        from mtl_core.nets import MultiTaskNet
        from mtl_core.optim import Adam
        from mtl_core.trainer import Trainer

        self.running = False
        if self.data == CUSTOM and self.custom is None:
            # only at construction (a watcher handles every later change, _on_reset_setting): nothing listens yet
            self.fallback_notice = FALLBACK_NOTICE
            with param.parameterized.discard_events(self):
                self.data = GENERATED
        self.train_data, self.test_data = self.make_data()
        data = {"with_aux": self.train_data, "alone": _only(self.train_data, "main")}
        data["aux_alone"] = _only(self.train_data, "aux")
        net_seed = int(np.random.SeedSequence(self.seed).spawn(3)[2].generate_state(1)[0])
        self.nets, self.trainers = {}, {}
        for m, d in data.items():
            # the same trunk initialisation in every run (the trunk is drawn first): only the tasks differ
            net = MultiTaskNet(
                2, d.tasks, trunk=TRUNK, activation="tanh", dropout=self.dropout, rng=np.random.default_rng(net_seed)
            )
            self.nets[m] = net
            self.trainers[m] = Trainer(
                net, d, optimizer=Adam(lr=LR), batch_size=N_TRAIN, l2=self.l2, seed=net_seed, **self._weighting(m)
            )
        self.error = ""
        self.steps = 0
        self.sources["curves"].data = _empty_curves()
        self._record()
        self._update_summary()

    # ------------------------------------------------------------------ the reader's own data
    def _on_reset_setting(self, *events) -> None:
        if self.data == CUSTOM and self.custom is None:
            # data=custom from a link (or the Data choice) without a file of one's own in this session: say so and
            # go back to the generated data (that change comes through here again and starts the new run)
            self.fallback_notice = self.data_error = FALLBACK_NOTICE  # the notice on top, and beside the upload
            self.data = GENERATED
            return
        if self.data == CUSTOM and self.aux_kind == "binary" and not _is_binary(self.custom.labels["aux"]):
            # the file's aux column is a score: a yes/no auxiliary target would be nonsense (what aux may hold is
            # what the Auxiliary target says); it stays numeric, and that change starts the run
            odd = next(v for v in self.custom.labels["aux"] if np.isfinite(v) and v not in (0.0, 1.0))
            self.data_error = (
                f"Your file's aux column holds numbers other than 0 and 1 (such as {odd:g}): a yes/no auxiliary "
                "target needs 0 or 1, so it stays a numeric score."
            )
            self.aux_kind = "regression"
            return
        super()._on_reset_setting(*events)

    def load_csv(self, raw: bytes | str) -> bool:
        """Train on an uploaded ``x1,x2,main,aux`` file; False (``data_error`` says why) if it is refused, and then
        the data stays as it was.

        ``aux`` must be 0 or 1 while ``aux_kind`` is "binary", any number while it is "regression". Inputs that do
        not fit [-3.5, 3.5]^2 are standardised; a quarter of the main-labelled rows and of the others (drawn with
        the seed) are held out to score on.
        """
        try:
            table = parse_main_aux(raw, aux_kind=self.aux_kind)
        except CustomDataError as exc:
            self.data_error = str(exc)
            return False
        rng = np.random.default_rng(np.random.SeedSequence([self.seed, 1]))  # not the data's, nets' or batches'
        fitted = fit_inputs(table, extent=EXTENT, region="the generated data's square")
        custom = hold_out_stratified(fitted, HOLDOUT, "main", rng=rng)
        n_aux = int(np.sum(~np.isnan(custom.labels["aux"][~custom.held_out])))
        if n_aux < 2:
            # the auxiliary task is the cheap one, labelled on (nearly) every row: its own baseline needs rows too
            self.data_error = (
                f"Column aux has a label on only {n_aux} training row{'s' * (n_aux != 1)}: the auxiliary task is the "
                "cheap one, give (nearly) every row a value."
            )
            return False
        train_on(self, custom)
        return True

    def reset_to_generated(self) -> None:
        """Forget the reader's own data and train on the generated data again."""
        self.custom = None
        self.data_error = ""
        if self.data == GENERATED:
            self._on_reset_setting()
        else:
            self.data = GENERATED

    def _update_summary(self) -> None:
        if self.data == CUSTOM:
            tr, te = self.train_data, self.test_data
            note = f"; {self.custom.note}" if self.custom.note else ""
            self.data_summary = (
                f"Your data: {self.custom.n_rows} rows; training on {tr.n_samples} ({tr.n_labelled()['main']} with a "
                f"main label, {tr.n_labelled()['aux']} with an auxiliary one), scored on {te.n_samples} held-out "
                f"rows ({te.n_labelled()['main']} with a main label){note}."
            )
        else:
            self.data_summary = (
                f"Generated data: {N_TRAIN} training rows, {self.main_labels} of them with a main label, all with an "
                f"auxiliary one; scored on {N_TEST} fresh rows."
            )

    def _weighting(self, model: str) -> dict:
        """The curriculum of the run with the auxiliary task: the auxiliary (task 1) first, the main at step k."""
        if model != "with_aux" or self.main_from == 0:
            return {"weighting": "equal"}
        return {"weighting": "curriculum", "weighting_kwargs": {"order": (1, 0), "interval": self.main_from, "ramp": 0}}

    # ------------------------------------------------------------------ training
    def pause(self) -> None:
        """Pause stops the sweep too (one Pause button for the page)."""
        super().pause()
        self.sweep.pause()

    def play(self) -> None:
        self.sweep.pause()  # one thing trains at a time: ticks stay short on a phone
        super().play()

    def _train(self, n: int) -> None:
        n = max(0, min(n, self.max_steps - self.steps))
        before = self.steps
        for _ in range(n):
            bad = [r.diverged for r in (tr.step() for tr in self.trainers.values()) if r.diverged]
            if bad:
                self.error = f"Training diverged: {bad[0]}. Press Reset (or lower the L2 weight)."
                self.running = False
                break
            self.steps += 1
        if self.steps == before:
            return
        if not self.running or self.steps // RECORD_EVERY > before // RECORD_EVERY or self.steps >= self.max_steps:
            self._record()
        else:
            self._update_text()

    # ------------------------------------------------------------------ recording
    def predictions(self, model: str, data) -> dict:
        """{task: prediction} of one run on ``data`` (evaluation mode: no dropout)."""
        return self.nets[model].forward(data.x)

    def _main_accuracy(self, model: str, data) -> float:
        """The main task's accuracy of one run on the main-labelled rows of ``data``; NaN when there are none
        (one's own data with no held-out main label) or the run has blown up."""
        from mtl_core.metrics import accuracy

        pred = self.predictions(model, data)["main"]
        if not np.all(np.isfinite(pred)):
            return float("nan")
        return accuracy(pred, data.targets["main"], mask=data.masks["main"])

    def _record(self) -> None:
        row = {
            "with_test": self._main_accuracy("with_aux", self.test_data),
            "alone_test": self._main_accuracy("alone", self.test_data),
            "with_train": self._main_accuracy("with_aux", self.train_data),
            "alone_train": self._main_accuracy("alone", self.train_data),
        }
        # the training rows always hold a main label: a NaN there is a run that has just blown up, and no NaN
        # reaches a plot from it (a NaN test score is a file without held-out main labels: a gap in the curve)
        if not np.isfinite(row["with_train"]) or not np.isfinite(row["alone_train"]):
            return
        if not self._scores_test():
            row["with_test"] = row["alone_test"] = float("nan")  # (not the blown-up case: no main label to score)
        elif not (np.isfinite(row["with_test"]) and np.isfinite(row["alone_test"])):
            return
        row["gain"] = 100.0 * (row["with_test"] - row["alone_test"])
        common.append_rows(self.sources["curves"], {"step": [self.steps], **{k: [v] for k, v in row.items()}})
        self._update_evaluation()
        self._update_text()

    def _update_evaluation(self) -> None:
        """Every task of every run scored on the test set by mtl_core.metrics, and Δm against the baselines."""
        from mtl_core.metrics import evaluate

        test = self.test_data
        counted = [dataclasses.replace(t, auxiliary=False) for t in test.tasks]  # to score the auxiliary too
        spec = {t.name: t for t in counted}
        ev = {
            "with_aux": evaluate(counted, self.predictions("with_aux", test), test.targets, test.masks),
            "alone": evaluate([spec["main"]], self.predictions("alone", test), test.targets, test.masks),
            "aux_alone": evaluate([spec["aux"]], self.predictions("aux_alone", test), test.targets, test.masks),
        }
        self.evaluation = ev
        cols = _empty_table()
        for model, per_task in ev.items():
            for task, scores in per_task.items():
                cols["model"].append(MODEL_LABELS[model])
                cols["task"].append(task)
                cols["counted"].append("no (auxiliary)" if task == "aux" else "yes")
                for m in METRICS:
                    cols[m].append(float(scores.get(m, np.nan)))
        self.sources["eval"].data = {k: (np.asarray(v) if k in METRICS else v) for k, v in cols.items()}

    def delta_m(self, *, with_auxiliary: bool = False) -> float:
        """Δm (percent) of the run with the auxiliary task against the single-task baselines (mtl_core.metrics).

        Only the main task counts, as in evaluation; ``with_auxiliary`` counts the auxiliary task as well.
        Raises ValueError where Δm is undefined (a baseline metric of 0).
        """
        from mtl_core.metrics import delta_m

        ev = self.evaluation
        mtl = {"main": ev["with_aux"]["main"]}
        single = {"main": ev["alone"]["main"]}
        if with_auxiliary:
            mtl["aux"], single["aux"] = ev["with_aux"]["aux"], ev["aux_alone"]["aux"]
        return delta_m(mtl, single)

    # ------------------------------------------------------------------ readouts
    def latest(self) -> dict:
        """Last recorded values of the main task's curves ({column: value})."""
        data = self.sources["curves"].data
        return {k: data[k][-1] for k in data if len(data[k])}

    def describe(self) -> dict[str, str]:
        """The plots in words, now (the page's text alternative; keys start the figures' names)."""
        texts = {"status": f"{self.status_line()}."}
        last = self.latest()
        if last and not self._scores_test():
            texts["accuracy"] = (
                f"Main-task accuracy at step {last['step']}: no test score (no held-out row has a main label); "
                f"training {100 * last['with_train']:.1f}% with the auxiliary task, {100 * last['alone_train']:.1f}% "
                "alone."
            )
            texts["gain"] = "Gain from the auxiliary task: none to show without a test score."
        elif last:
            texts["accuracy"] = (
                f"Main-task test accuracy at step {last['step']}: {100 * last['with_test']:.1f}% with the auxiliary "
                f"task, {100 * last['alone_test']:.1f}% alone (training {100 * last['with_train']:.1f}% and "
                f"{100 * last['alone_train']:.1f}%)."
            )
            texts["gain"] = f"Gain from the auxiliary task: {last['gain']:+.1f} points of test accuracy."
        else:
            texts["accuracy"] = "No training yet: the curves are empty."
        sweep = self.sources["sweep"].data
        texts["sweep"] = (
            "Task-count sweep: "
            + "; ".join(f"{n} tasks: gap {g:.1f} points" for n, g in zip(sweep["n_tasks"], sweep["gap"], strict=False))
            + "."
            if len(sweep["n_tasks"])
            else "Task-count sweep: not run yet."
        )
        th = self.sources["two_head"].data
        if len(th["term"]):
            right = ", ".join(f"{t} {float(v):.4f}" for t, v in zip(th["term"], th["right"], strict=True))
            texts["two_head"] = f"Two heads, right (flattened): {right}." + (
                " Wrong ((N, N) broadcast): "
                + ", ".join(f"{t} {float(v):.4f}" for t, v in zip(th["term"], th["wrong"], strict=True))
                + "."
                if self.flatten_bug
                else ""
            )
        return texts

    def _scores_test(self) -> bool:
        """Whether the test rows hold a main label (always with the generated data; one's own may have none)."""
        return bool(np.any(self.test_data.masks["main"]))

    def _update_text(self) -> None:
        self.status = self.status_line()
        last = self.latest()
        if not last:
            return
        if not self._scores_test():
            self.summary = (
                f"Step {last['step']}: no held-out row has a main label, so there is no test score (training "
                f"accuracy {100 * last['with_train']:.1f}% with the auxiliary task, {100 * last['alone_train']:.1f}% "
                "alone). Give more rows a main label."
            )
            self.delta_text = "Δm: undefined (no held-out row has a main label)."
            return
        gain = last["gain"]
        verdict = "helps" if gain >= 0.5 else "hurts" if gain <= -0.5 else "makes no real difference to"
        self.summary = (
            f"Step {last['step']}: main-task test accuracy {100 * last['with_test']:.1f}% with the auxiliary task, "
            f"{100 * last['alone_test']:.1f}% alone: the auxiliary task {verdict} the main task "
            f"({gain:+.1f} points)."
        )
        parts = []
        for counted, label in ((False, "Δm (main task only, as evaluated)"), (True, "Δm counting the auxiliary")):
            try:
                parts.append(f"{label}: {self.delta_m(with_auxiliary=counted):+.1f}%")
            except ValueError as exc:
                parts.append(f"{label}: undefined ({exc})")
        self.delta_text = "; ".join(parts) + "."

    # ------------------------------------------------------------------ the two-head exercise
    def update_two_head(self) -> None:
        """The numbers of the two-head card: [L, L_a, L_b] right (mtl_core.two_head_loss) and, with
        ``flatten_bug``, the wrong (N, N)-broadcast values beside them."""
        from mtl_core.twohead import two_head_loss

        x, y_a, y_b = two_head_data(self.seed)
        right = two_head_loss(self.seed, x, y_a, y_b, self.alpha, hidden=TWO_HEAD_HIDDEN)
        wrong, sq_a = broadcast_bug_loss(self.seed, x, y_a, y_b, self.alpha, hidden=TWO_HEAD_HIDDEN)
        shown = wrong if self.flatten_bug else np.full(3, np.nan)
        self.two_head = {"x": x, "y_a": y_a, "y_b": y_b, "right": right, "wrong": wrong, "squares_a": sq_a}
        self.two_head["refusal"] = library_refusal(self.seed, x, y_a, y_b, self.alpha)
        self.sources["two_head"].data = {"term": ["L", "L_a", "L_b"], "right": right, "wrong": shown}


def _is_binary(values: np.ndarray) -> bool:
    """True when every label in ``values`` (NaN = none) is 0 or 1."""
    v = values[np.isfinite(values)]
    return bool(np.all((v == 0.0) | (v == 1.0)))


def _main_aux_datasets(custom: CustomData, aux_kind: str):
    """(train, test) MultiTaskDatasets with the binary "main" and the auxiliary "aux" task (``aux_kind``) from one's
    own rows; the held-out rows are the test set (load_csv always holds some out)."""
    from mtl_core.data import MultiTaskDataset
    from mtl_core.tasks import TaskSpec

    if not custom.held_out.any():
        raise ValueError("custom must hold out at least one row to score on")
    tasks = [TaskSpec("main", kind="binary"), TaskSpec("aux", kind=aux_kind, auxiliary=True)]

    def dataset(part: CustomData):
        masks = {t: ~np.isnan(part.labels[t]) for t in ("main", "aux")}
        targets = {t: np.nan_to_num(part.labels[t]) for t in ("main", "aux")}
        return MultiTaskDataset(part.x, targets, masks, tasks)

    return dataset(custom.rows(~custom.held_out)), dataset(custom.rows(custom.held_out))


def two_head_data(seed: int):
    """Inputs (N, 2) and the two regression targets (N,) of the two-head exercise."""
    rng = _seeds(seed, 4)[3]
    x = np.round(rng.standard_normal((TWO_HEAD_ROWS, 2)), 2)
    y_a = np.round(x[:, 0] - 0.5 * x[:, 1], 2)
    y_b = np.round(np.abs(x[:, 1]), 2)
    return x, y_a, y_b


def broadcast_bug_loss(seed, x, y_a, y_b, alpha, *, hidden: int):
    """THE BUG, on purpose: the loss a careless implementation computes when each head's (N, 1) output is
    subtracted from an (N,) target, which NumPy broadcasts to an (N, N) matrix of every output minus every target.

    Returns
    -------
    wrong : (3,) ``[alpha L_a' + (1 - alpha) L_b', L_a', L_b']`` with ``L' = mean over all N*N (out_i - y_j)^2``
    squares_a : (N, N) the squared differences of head a; only its diagonal belongs to the right loss
    """
    from mtl_core.twohead import TwoHead

    out_a, out_b = TwoHead(hidden=hidden, seed=seed).forward(x)  # (N, 1) each
    squares_a = (out_a - y_a[None, :]) ** 2  # (N, 1) - (1, N) -> (N, N): written out, the way the bug does it
    squares_b = (out_b - y_b[None, :]) ** 2
    loss_a, loss_b = float(squares_a.mean()), float(squares_b.mean())
    return np.array([alpha * loss_a + (1.0 - alpha) * loss_b, loss_a, loss_b]), squares_a


def library_refusal(seed, x, y_a, y_b, alpha) -> str:
    """What mtl_core says when handed a target that could only broadcast (an (N, N) one): its ValueError."""
    from mtl_core.twohead import two_head_loss

    try:
        two_head_loss(seed, x, np.tile(y_a, (len(y_a), 1)), y_b, alpha, hidden=TWO_HEAD_HIDDEN)
    except ValueError as exc:
        return f"ValueError: {exc}"
    return "mtl_core accepted an (N, N) target: this is a bug in mtl_core"


class TaskCountSweep(common.TrainingClock):
    """The number-of-tasks sweep: one trunk trained on 1, 2, ..., ``n_tasks`` related tasks of ``SWEEP_ROWS`` rows
    each (``SWEEP_REPEATS`` seeds per count), scored by the first task's test-minus-train error.

    Trained on demand, in ticks like the live runs (its own Animator); each finished count streams one point to
    ``owner.sources["sweep"]``.
    """

    max_steps, steps_per_tick = 1, 20

    def __init__(self, owner: AuxiliaryState):
        super().__init__()
        self.owner = owner
        self.reset()

    def reset(self) -> None:
        self.running = False
        self.jobs = [(k, r) for k in range(1, self.owner.n_tasks + 1) for r in range(SWEEP_REPEATS)]
        self.max_steps = len(self.jobs) * SWEEP_STEPS
        self.steps, self.error, self._trainer, self._scores = 0, "", None, {}
        self.owner.sources["sweep"].data = _empty_sweep()
        self._update_text()

    def _start_job(self):
        from mtl_core.data import make_related_classification, make_unequal_tasks, stack_tasks
        from mtl_core.nets import MultiTaskNet
        from mtl_core.optim import Adam
        from mtl_core.trainer import Trainer

        k, repeat = self.jobs[self.steps // SWEEP_STEPS]
        # the same streams for every count: task 1's rows, its test rows and the trunk's start are then the same
        # for 1 and for 6 tasks, so the points differ by the number of tasks and not by luck of the draw
        data_rng, test_rng, net_rng = _seeds(self.owner.seed * 100 + repeat, 3)
        kw = dict(noise=NOISE, twist=TWIST)
        parts = make_unequal_tasks(
            {f"t{i + 1}": SWEEP_ROWS for i in range(k)}, rng=data_rng, relatedness=self.owner.relatedness, **kw
        )
        self._first = parts["t1"]  # task 1 is the task scored; its pattern is the same for every count
        self._test = make_related_classification(N_TEST, rng=test_rng, **kw)  # its task "a" = task 1's pattern
        data = stack_tasks(parts)
        net = MultiTaskNet(2, data.tasks, trunk=TRUNK, activation="tanh", rng=net_rng)
        self._trainer = Trainer(net, data, optimizer=Adam(lr=LR), batch_size=data.n_samples, seed=repeat)

    def _train(self, n: int) -> None:
        for _ in range(max(0, min(n, self.max_steps - self.steps))):
            if self._trainer is None:
                self._start_job()
            self._trainer.step()
            self.steps += 1
            if self.steps % SWEEP_STEPS == 0:
                self._finish_job()
        self._update_text()

    def _finish_job(self) -> None:
        from mtl_core.metrics import accuracy

        k, _repeat = self.jobs[self.steps // SWEEP_STEPS - 1]
        net, self._trainer = self._trainer.net, None
        train_err = 1.0 - accuracy(net.forward(self._first.x)["t1"], self._first.targets["t1"])
        test_err = 1.0 - accuracy(net.forward(self._test.x)["t1"], self._test.targets["a"])
        self._scores.setdefault(k, []).append((train_err, test_err))
        if len(self._scores[k]) == SWEEP_REPEATS:
            train_err, test_err = np.mean(self._scores[k], axis=0) * 100.0
            row = {"n_tasks": k, "gap": test_err - train_err, "test_error": test_err, "train_error": train_err}
            self.owner.sources["sweep"].stream({c: [v] for c, v in row.items()})

    def play(self) -> None:
        self.owner.pause()  # one thing trains at a time (pauses this sweep too, then it starts)
        super().play()

    def status_line(self) -> str:
        done = len(self.owner.sources["sweep"].data["n_tasks"])
        total = self.owner.n_tasks
        what = "running" if self.running else "done" if done == total else "paused" if self.steps else "not run yet"
        return f"Sweep: {done} of {total} task counts (step {self.steps} / {self.max_steps}) - {what}"

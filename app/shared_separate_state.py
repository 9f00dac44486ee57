"""State of the "Shared vs Separate" page (app/shared_separate.py is its view): settings, the two models, their
trainers and the plot data, with no widgets.

Models, data, training and losses come from ``mtl_core``; plot data lives in Bokeh ColumnDataSources named as
listed in app/shared_separate.py.

Your own data (issue 14): ``data = "custom"`` trains on ``self.custom`` (an ``app.custom_data.CustomData`` kept in
this state: the server session's under ``panel serve``, the worker's on the static site; and in the browser tab,
``common.keep_own_data``, so that a reload of the tab trains on it again; never in the URL). It
comes from a CSV (:meth:`SharedSeparateState.load_csv`) or from the "Edit data" mode, which starts from the
generated points and adds / removes one point per click (:meth:`SharedSeparateState.click`); every change retrains.
A quarter of an uploaded file's rows are held out to score the models on (the generated data's 1000 fresh points
have no counterpart in a file); clicked points always train.
"""

from __future__ import annotations

import numpy as np
import param
from bokeh.models import ColumnDataSource

from app import common
from app.custom_data import CustomData, CustomDataError, fit_inputs, hold_out, parse_two_tasks, train_on
from app.settings import CUSTOM, Setting, data_setting, lr_setting, seed_setting, settings_class

MODELS = ("shared", "separate")
TASK_LETTERS = ("A", "B")
MAX_STEPS = 1000
STEPS_PER_TICK = 6  # steps per 100-ms tick to start with; common.Animator adapts it to keep ticks short
IMAGE_EVERY = 2  # redraw the four maps every other tick: they are most of the bytes sent to the browser
N_TEST = 1000  # fresh held-out points: a test accuracy good to about +-1.5 points, so the verdict is real
GRID = 48  # decision-boundary image resolution (GRID x GRID)
EXTENT = 3.5  # the maps show [-EXTENT, EXTENT]^2: inputs are N(0, I), so almost every point is inside
BATCH = 64
SMOOTH = 0.9  # running-mean factor of the displayed cosine
GENERATED = "generated"
HOLDOUT = 0.25  # share of an uploaded file's rows held out for the test curves
REMOVE_RADIUS = 0.35  # a remove-click takes the nearest point within this distance (about 10 px on the maps)
LABEL_COLUMNS = {"a": "label_a", "b": "label_b"}  # task -> its column in a CSV file
FALLBACK_NOTICE = (
    "There is no data of your own in this browser tab (your points never travel in a link; a reload of the tab "
    "you made them in keeps them): showing the generated data. Upload a CSV or turn on Edit data to use your own."
)

SETTINGS = (
    Setting(
        "relatedness",
        "float",
        0.8,
        0.0,
        1.0,
        step=0.05,
        label="Task relatedness",
        help="1 = both tasks have the same labels; 0 = task B's pattern is rotated so its labels are "
        "independent of task A's.",
    ),
    Setting(
        "hidden",
        "int",
        8,
        2,
        64,
        step=1,
        label="Hidden width",
        help="Units per hidden layer (two layers). Each separate net gets its own layers of this width.",
    ),
    lr_setting(0.03, 0.001, 0.5, "Adam step size; changes apply at once, without a reset."),
    Setting(
        "n_samples",
        "int",
        200,
        20,
        1000,
        step=10,
        label="Training points",
        help="Labelled points both models learn from; they are scored on 1000 fresh points.",
    ),
    Setting(
        "noise",
        "float",
        0.1,
        0.0,
        0.5,
        step=0.01,
        label="Label noise",
        help="Probability that a label is flipped, independently per task.",
    ),
    seed_setting("Seeds the data, the split and both nets."),
    data_setting(
        {GENERATED: "Generated"},
        "Generated points, or your own: a CSV (x1,x2,label_a,label_b) or points clicked in Edit data mode.",
    ),
)
RESET_ON = ("relatedness", "hidden", "n_samples", "noise", "seed", "data")  # everything but lr rebuilds the run

CLASS_COLORS = np.array(["#3b6fb6", "#c0392b"])  # label 0, label 1 (the colours of the training points)
NO_LABEL = "#b0b0b0"  # a point without a label for that task


def _curve_columns() -> list[str]:
    return [f"{m}_{s}_{t}" for m in MODELS for s in ("train", "test") for t in ("a", "b")]


def _empty_curves() -> dict:
    return {"step": [], **{c: [] for c in _curve_columns()}}


def _image_data(img: np.ndarray) -> dict:
    """A decision-boundary image (GRID, GRID) placed on the square the maps show."""
    return {"image": [img], "x": [-EXTENT], "y": [-EXTENT], "dw": [2 * EXTENT], "dh": [2 * EXTENT]}


_Settings = settings_class("_SharedSeparateSettings", SETTINGS)


class SharedSeparateState(common.TrainingClock, _Settings):
    """Settings, the two models, their trainers and the plot data of the page (no widgets).

    ``tick()`` runs a few training steps (what the periodic callback calls); ``step_once()`` runs exactly one;
    ``reset()`` rebuilds data and models from the settings. All plot data lives in the ColumnDataSources of
    ``self.sources`` (names and columns in the docstring of app/shared_separate.py).
    """

    max_steps, steps_per_tick, reset_on = MAX_STEPS, STEPS_PER_TICK, RESET_ON
    verdict = param.String("", doc="Plain-words comparison of the two models (plain text, one line per task).")
    # the "Edit data" mode and its choices (page state, not settings: they are not in the URL)
    editing = param.Boolean(False, doc="Edit data: a click on a map adds a point, a shift-click removes one.")
    edit_task = param.Selector(default="both", objects=["both", "a", "b"], doc="Which task(s) a new point labels.")
    edit_label = param.Selector(default=1, objects=[0, 1], doc="The label of a new point.")
    remove_mode = param.Boolean(False, doc="A click removes the nearest point (for touch screens: no shift key).")
    data_summary = param.String("", doc="Plain text: the points and labels the page trains on.")
    data_error = param.String("", doc="Plain text: why the last upload or edit was refused (the data stayed).")
    fallback_notice = param.String("", doc="Plain text: set when data=custom came without data of one's own.")
    custom = param.ClassSelector(
        class_=CustomData,
        default=None,
        allow_None=True,
        doc="The reader's own points: this session and its browser tab.",
    )

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {
            "acc": ColumnDataSource(_empty_curves(), name="acc_source"),
            "loss": ColumnDataSource(_empty_curves(), name="loss_source"),
            "cosine": ColumnDataSource({"step": [], "cosine": [], "smooth": []}, name="cosine_source"),
            "points": ColumnDataSource({"x0": [], "x1": [], "color_a": [], "color_b": []}, name="points_source"),
        }
        for m in MODELS:
            for t in ("a", "b"):
                self.sources[f"heat_{m}_{t}"] = ColumnDataSource(
                    _image_data(np.full((GRID, GRID), 0.5, dtype=np.float32)), name=f"heat_{m}_{t}"
                )
        # a fixed square grid (not fitted to the data) so maps stay comparable when a setting changes
        g = np.linspace(-EXTENT, EXTENT, GRID)
        xx, yy = np.meshgrid(g, g)  # row i of the image is y = g[i] (Bokeh draws row 0 at the bottom)
        self._grid = np.column_stack([xx.ravel(), yy.ravel()])
        self._ticks = 0
        self.param.watch(self._on_editing, ["editing"])
        self.reset()

    # ------------------------------------------------------------------ building the run
    def reset(self) -> None:
        """Draw the data (or take the reader's own) and fresh models from the current settings; clear every curve."""
        from mtl_core.data import make_related_classification
        from mtl_core.nets import MultiTaskNet, SeparateNets
        from mtl_core.optim import Adam
        from mtl_core.trainer import Trainer

        if self.data == CUSTOM and self.custom is None:
            # only at construction (a watcher handles every later change, _on_reset_setting): nothing listens yet
            self.fallback_notice = FALLBACK_NOTICE
            with param.parameterized.discard_events(self):
                self.data = GENERATED
        data_ss, net_ss, train_ss = np.random.SeedSequence(self.seed).spawn(3)
        if self.data == CUSTOM:
            self.train_data, self.test_data = two_task_datasets(self.custom)
            self.task_names = list(self.train_data.task_names)
        else:
            n = self.n_samples
            data = make_related_classification(
                n + N_TEST, rng=np.random.default_rng(data_ss), relatedness=self.relatedness, noise=self.noise
            )
            self.train_data, self.test_data = data.subset(np.arange(n)), data.subset(np.arange(n, n + N_TEST))
            self.task_names = list(data.task_names)
        tasks = self.train_data.tasks
        # both models start from the same seed: the comparison is about sharing, not about a lucky init
        trunk = (self.hidden, self.hidden)
        self.nets = {
            "shared": MultiTaskNet(2, tasks, trunk=trunk, activation="tanh", rng=np.random.default_rng(net_ss)),
            "separate": SeparateNets(2, tasks, trunk=trunk, activation="tanh", rng=np.random.default_rng(net_ss)),
        }
        train_seed = int(train_ss.generate_state(1)[0])
        self.trainers = {
            m: Trainer(
                net,
                self.train_data,
                weighting="equal",
                combiner="sum",
                optimizer=Adam(lr=self.lr),
                batch_size=BATCH,
                seed=train_seed,
            )
            for m, net in self.nets.items()
        }
        self._smooth = None
        self.error = ""
        self._fill_points()
        self.sources["cosine"].data = {"step": [], "cosine": [], "smooth": []}
        self.steps = 0
        first = {"acc": _empty_curves(), "loss": _empty_curves()}
        self._append_scores(first)  # the step-0 point: untrained models
        for key, data in first.items():
            self.sources[key].data = data
        self._update_images()
        self._update_text()
        self._update_summary()

    def _fill_points(self) -> None:
        """The points on the maps: the training points (1000 generated test points would hide the boundary) and,
        with data of one's own, the held-out ones (hollow). color_<t> is the label's colour (grey: no label),
        fill_<t> / line_<t> what a marker is filled / outlined with."""
        parts = [(self.train_data, False)]
        if self.data == CUSTOM and self.test_data is not None:
            parts.append((self.test_data, True))
        x = np.vstack([d.x for d, _ in parts])
        held = np.concatenate([np.full(d.n_samples, h) for d, h in parts])
        cols = {"x0": x[:, 0], "x1": x[:, 1]}
        for t in self.task_names:
            label = np.concatenate([np.asarray(d.targets[t]).astype(int) for d, _ in parts])
            mask = np.concatenate([d.masks[t] for d, _ in parts])
            color = np.where(mask, CLASS_COLORS[label], NO_LABEL)
            cols[f"color_{t}"] = color.tolist()
            cols[f"fill_{t}"] = np.where(held, "white", color).tolist()
            cols[f"line_{t}"] = np.where(held, color, "white").tolist()
        self.sources["points"].data = cols

    # ------------------------------------------------------------------ the reader's own data
    def _on_reset_setting(self, *events) -> None:
        if self.data == CUSTOM and self.custom is None:
            # data=custom from a link (or the Data choice) without points of one's own in this session: say so and
            # go back to the generated data (that change comes through here again and starts the new run)
            self.fallback_notice = self.data_error = FALLBACK_NOTICE  # the notice on top, and beside the upload
            self.data = GENERATED
            return
        if self.data != CUSTOM:
            self.editing = False  # Edit data edits one's own points: back on the generated data it stops
        super()._on_reset_setting(*events)

    def _use(self, custom: CustomData) -> None:
        """Train on ``custom`` from now on: a new run at once (what a setting change does)."""
        train_on(self, custom)

    def load_csv(self, raw: bytes | str) -> bool:
        """Train on an uploaded ``x1,x2,label_a,label_b`` file; False (``data_error`` says why) if it is refused,
        and then the data stays as it was.

        Inputs that do not fit the maps are standardised; a quarter of the rows (drawn with the seed) are held out.
        """
        try:
            custom = two_task_file(raw, seed=self.seed)
        except CustomDataError as exc:
            self.data_error = str(exc)
            return False
        self._use(custom)
        return True

    def _from_generated(self) -> CustomData:
        """The generated training points as data of one's own, plus a third as many of the fresh test points held
        out: Edit data starts from what the maps show."""
        tr, te = self.train_data, self.test_data
        k = min(te.n_samples, int(round(tr.n_samples * HOLDOUT / (1 - HOLDOUT))))
        labels = {
            col: np.concatenate([tr.targets[t], te.targets[t][:k]]).astype(float) for t, col in LABEL_COLUMNS.items()
        }
        held = np.concatenate([np.zeros(tr.n_samples, bool), np.ones(k, bool)])
        return CustomData(x=np.vstack([tr.x, te.x[:k]]), x_columns=("x1", "x2"), labels=labels, held_out=held)

    def _on_editing(self, event) -> None:
        if event.new and self.data != CUSTOM:
            self._use(self.custom if self.custom is not None else self._from_generated())
        if not event.new:
            self.remove_mode = False

    def click(self, x: float, y: float, *, shift: bool = False) -> bool:
        """A click on a map at (x, y) in Edit data mode: add a point of ``edit_task`` with ``edit_label``, or
        remove the nearest point (``shift`` held, or ``remove_mode``); then retrain. Returns whether the data
        changed (a click outside Edit data mode does nothing; a refused edit says why in ``data_error``)."""
        if not self.editing or self.custom is None:
            return False
        try:
            if shift or self.remove_mode:
                new = self.custom.remove_nearest((x, y), radius=REMOVE_RADIUS)
            else:
                tasks = ("a", "b") if self.edit_task == "both" else (self.edit_task,)
                new = self.custom.add_point((x, y), {LABEL_COLUMNS[t]: self.edit_label for t in tasks})
        except CustomDataError as exc:
            self.data_error = str(exc)
            return False
        self._use(new)
        return True

    def reset_to_generated(self) -> None:
        """Forget the reader's own data and train on the generated data again."""
        self.editing = False
        self.custom = None
        self.data_error = ""
        if self.data == GENERATED:
            self._on_reset_setting()
        else:
            self.data = GENERATED

    def _update_summary(self) -> None:
        if self.data == CUSTOM:
            letters = {col: f"task {t.upper()}" for t, col in LABEL_COLUMNS.items()}
            note = f"; {self.custom.note}" if self.custom.note else ""
            self.data_summary = f"Your data: {self.custom.summary(letters)}{note}."
        else:
            self.data_summary = (
                f"Generated data: {self.train_data.n_samples} training points, each with a label for both tasks; "
                f"scored on {N_TEST} fresh points."
            )

    # ------------------------------------------------------------------ training
    def optimizers(self) -> list:
        return [tr.optimizer for tr in self.trainers.values()]

    def _train(self, n: int) -> None:
        rows = {"acc": _empty_curves(), "loss": _empty_curves(), "cosine": {"step": [], "cosine": [], "smooth": []}}
        for _ in range(max(0, min(n, self.max_steps - self.steps))):
            recs = {m: tr.step() for m, tr in self.trainers.items()}
            bad = [r.diverged for r in recs.values() if r.diverged]
            if bad:
                self.error = (
                    f"Training diverged: {bad[0]}. The curves stop at the last good step; "
                    "lower the learning rate and press Reset."
                )
                self.running = False
                break
            self.steps += 1
            self._append_cosine(rows["cosine"], float(recs["shared"].cosine[0, 1]))
        if rows["cosine"]["step"]:
            # scoring 2 models on train + 1000 test points costs more than the steps: once per tick is enough
            self._append_scores(rows)
            for key, new in rows.items():  # one stream per source per tick, not one per step
                if new["step"]:
                    self.sources[key].stream(new)
        self._ticks += 1
        if n == 1 or self._ticks % IMAGE_EVERY == 0 or not self.running:
            self._update_images()
        self._update_text()

    def _evaluate(self, net, data) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-task (accuracy, loss, has labels) of ``net`` on the labelled rows of ``data``, each shape (2,).

        A task without a labelled row there (possible with one's own data; ``data`` None = no held-out rows) scores
        NaN, and ``has labels`` is False for it.
        """
        from mtl_core.losses import bce_with_logits

        acc, loss, has = np.full(2, np.nan), np.full(2, np.nan), np.zeros(2, bool)
        if data is None:
            return acc, loss, has
        preds = net.forward(data.x)
        for k, t in enumerate(self.task_names):
            m = data.masks[t]
            if not m.any():
                continue
            z, y = np.asarray(preds[t], float).reshape(-1)[m], np.asarray(data.targets[t], float)[m]
            has[k] = True
            acc[k] = np.mean((z > 0) == (y > 0.5))
            loss[k] = bce_with_logits(z, y)[0]  # NaN for a model that has blown up: _append_scores skips it
        return acc, loss, has

    def _append_scores(self, rows: dict) -> None:
        """Evaluate both models now and append one point at the current step to the acc/loss ``rows``.

        Nothing is appended if a score is not finite (a model that has just blown up): no NaN reaches a plot from
        a model. (A task with no labelled rows in a split, possible with one's own data, gets NaN: a gap.)
        """
        point = {"acc": {}, "loss": {}}
        for m, net in self.nets.items():
            for split, data in (("train", self.train_data), ("test", self.test_data)):
                acc, loss, has = self._evaluate(net, data)
                if not (np.all(np.isfinite(acc[has])) and np.all(np.isfinite(loss[has]))):
                    return
                for k, t in enumerate(self.task_names):
                    point["acc"][f"{m}_{split}_{t}"] = float(acc[k])
                    point["loss"][f"{m}_{split}_{t}"] = float(loss[k])
        for key, values in point.items():
            rows[key]["step"].append(self.steps)
            for col, v in values.items():
                rows[key][col].append(v)

    def _append_cosine(self, rows: dict, cosine: float) -> None:
        self._smooth = cosine if self._smooth is None else SMOOTH * self._smooth + (1 - SMOOTH) * cosine
        for col, v in (("step", self.steps), ("cosine", cosine), ("smooth", self._smooth)):
            rows[col].append(v)

    def _update_images(self) -> None:
        for m, net in self.nets.items():
            preds = net.forward(self._grid)
            for t in self.task_names:
                z = np.asarray(preds[t], float).reshape(GRID, GRID)
                if not np.all(np.isfinite(z)):
                    continue  # keep the last good map of a model that has blown up
                prob = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)  # float32: half the bytes
                self.sources[f"heat_{m}_{t}"].data = _image_data(prob)

    # ------------------------------------------------------------------ readouts
    def latest(self, metric: str = "acc", split: str = "test") -> dict:
        """{(model, task): last value} of a curve, e.g. latest()[("shared", "a")] = test accuracy."""
        data = self.sources[metric].data
        return {(m, t): float(data[f"{m}_{split}_{t}"][-1]) for m in MODELS for t in self.task_names}

    def describe(self) -> dict[str, str]:
        """The plots in words, now (the page's text alternative; keys start the figures' names)."""
        n_train = int(len(self.sources["points"].data["x0"]))
        texts = {"status": f"{self.status_line()}."}
        maps = f"Decision maps: {n_train} points; background = each model's probability of label 1 for each task."
        if not len(self.sources["acc"].data["step"]):
            texts["acc"] = "No training yet: the accuracy, loss and cosine curves are empty."
            texts["boundary"] = maps
            return texts
        acc, loss = self.latest("acc", "test"), self.latest("loss", "test")
        for metric, values, what in (("acc", acc, "test accuracy"), ("loss", loss, "test loss")):
            parts = []
            for m in MODELS:
                cells = ", ".join(
                    f"task {letter} {_fmt_score(values[(m, t)], metric)}"
                    for letter, t in zip(TASK_LETTERS, self.task_names, strict=True)
                )
                parts.append(f"{'shared trunk' if m == 'shared' else 'separate nets'}: {cells}")
            texts[metric] = f"{what.capitalize()} - " + "; ".join(parts) + "."
        cos = self.sources["cosine"].data
        if len(cos["step"]):
            texts["cosine"] = (
                f"Trunk-gradient cosine: {float(cos['cosine'][-1]):+.2f} at the last step, running mean "
                f"{float(cos['smooth'][-1]):+.2f} (above 0 the tasks agree, below 0 they conflict)."
            )
        texts["boundary"] = maps
        return texts

    def _update_text(self) -> None:
        self.status = self.status_line()
        if self.steps == 0:
            self.verdict = "No training yet: press Train (or Step) and watch both models learn."
            return
        acc = self.latest("acc", "test")
        lines = []
        for letter, t in zip(TASK_LETTERS, self.task_names, strict=True):
            sh, se = 100 * acc[("shared", t)], 100 * acc[("separate", t)]
            gap = sh - se
            if not np.isfinite(gap):
                lines.append(f"Task {letter}: no held-out point has a task-{letter} label, so there is no test score.")
            elif abs(gap) < 0.5:
                lines.append(f"Task {letter}: a draw ({sh:.1f}% vs {se:.1f}% test accuracy).")
            else:
                winner = "the shared trunk wins" if gap > 0 else "separate nets win"
                lines.append(
                    f"Task {letter}: {winner} by {abs(gap):.1f} points of test accuracy "
                    f"({sh:.1f}% shared vs {se:.1f}% separate)."
                )
        cos = self.sources["cosine"].data["cosine"][-50:]
        if cos:
            c = round(float(np.mean(cos)), 2) + 0.0  # + 0.0: no "-0.00"
            mood = (
                "mostly agree: a step for one task also helps the other"
                if c > 0.1
                else "pull the trunk in opposite directions: negative transfer"
                if c < -0.1
                else "want different things from the trunk and compete for its units"
            )
            lines.append(f"Trunk gradients over the last {len(cos)} steps: mean cosine {c:+.2f} - the tasks {mood}.")
        self.verdict = "\n".join(lines)


def _fmt_score(v: float, metric: str) -> str:
    """An accuracy as a percentage, a loss with 3 digits; "none" when there is no score (no labelled point)."""
    if not np.isfinite(v):
        return "none"
    return f"{100 * v:.1f}%" if metric == "acc" else f"{v:.3g}"


def two_task_file(raw: bytes | str, *, seed: int, region: str = "the map") -> CustomData:
    """An uploaded ``x1,x2,label_a,label_b`` file as a page trains on it: parsed (:func:`parse_two_tasks`), its
    inputs standardised if they do not fit the [-EXTENT, EXTENT]^2 square, and HOLDOUT of its rows held out,
    drawn from ``seed`` (a stream of its own: not the data's, nets' or batches'). Shared vs Separate and Sharing
    architectures both read files this way, so the same file and seed give both pages the same rows.

    Raises
    ------
    CustomDataError
        The parser's message, naming the row and column.
    """
    table = parse_two_tasks(raw)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    return hold_out(fit_inputs(table, extent=EXTENT, region=region), HOLDOUT, rng=rng)


def two_task_datasets(custom: CustomData):
    """(train, test) MultiTaskDatasets with binary tasks "a", "b" from one's own points; test is None when no row is
    held out."""
    from mtl_core.data import MultiTaskDataset
    from mtl_core.tasks import TaskSpec

    tasks = [TaskSpec(t, kind="binary") for t in LABEL_COLUMNS]

    def dataset(part: CustomData):
        masks = {t: ~np.isnan(part.labels[col]) for t, col in LABEL_COLUMNS.items()}
        targets = {t: np.nan_to_num(part.labels[col]) for t, col in LABEL_COLUMNS.items()}
        return MultiTaskDataset(part.x, targets, masks, tasks)

    held = custom.held_out
    return dataset(custom.rows(~held)), (dataset(custom.rows(held)) if held.any() else None)

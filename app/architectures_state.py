"""State of the "Sharing architectures" page (app/architectures.py is its view): settings, the three models, their
trainers and the plot data, with no widgets.

The same pair of related tasks (``mtl_core.data.make_related_classification``) is learned by three models of the
same depth: separate nets (nothing shared), hard sharing that branches after ``branch`` shared layers
(``mtl_core.nets.branched_net``) and a cross-stitch network (``mtl_core.nets.CrossStitchNet``) whose learned 2 x 2
mixing matrices are shown as they train. Plot data lives in Bokeh ColumnDataSources named as listed in
app/architectures.py.

Your own data (issue 14): ``data = "custom"`` trains the three models on ``self.custom``, an uploaded
``x1,x2,label_a,label_b`` file (:meth:`ArchitecturesState.load_csv`) read exactly as Shared vs Separate reads it
(``app.shared_separate_state.two_task_file``: the same messages, the same standardisation, the same quarter of the
rows held out to score on). Kept in this state and in the browser tab (``common.keep_own_data``), never in the URL,
which says ``data=custom``; a link with ``data=custom`` and no file in this tab falls back to the generated data with
``fallback_notice``.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import param
from bokeh.models import ColumnDataSource

from app import common
from mtl_core.data import make_related_classification
from mtl_core.metrics import accuracy
from mtl_core.nets import CrossStitchNet, SeparateNets, branched_net
from mtl_core.optim import Adam
from mtl_core.trainer import Trainer
from app.custom_data import CustomData, CustomDataError, train_on
from app.settings import CUSTOM, Setting, data_setting, lr_setting, seed_setting, settings_class
from app.shared_separate_state import LABEL_COLUMNS, two_task_datasets, two_task_file
from app.shared_separate_state import SETTINGS as SHARED_SEPARATE_SETTINGS

MODELS = ("separate", "hard", "stitch")
SHARING = ("hard", "stitch")  # the models compared against separate nets
MODEL_LABELS = {"separate": "separate nets", "hard": "hard sharing", "stitch": "cross-stitch"}
TASK_LETTERS = ("A", "B")
DEPTH = 3  # hidden layers of every model: the branch point slides over them
MAX_STEPS = 1000
READOUT_EVERY = 3  # ticks of live training between two redraws of the readouts of now (stitch, gains, table)
STEPS_PER_TICK = 2  # to start with (a first tick well under the 100-ms period); common.Animator adapts it
N_TEST = 1000  # fresh held-out points: differences of a point or two are real, not noise
BATCH = 64
DRAW = 1.0  # points of test accuracy: a smaller gain or loss is called "about the same"
GENERATED = "generated"
REGION = "the generated data's square"  # how the upload's note names [-EXTENT, EXTENT]^2 (this page has no map)
FALLBACK_NOTICE = (
    "There is no data of your own in this browser tab (your file never travels in a link; a reload of the tab "
    "you uploaded it in keeps it): showing the generated data. Upload a CSV to use your own."
)

# the data knobs mean what they mean on the Shared vs Separate page: the same generator, the same rows
_DATA_ROWS = {s.name: s for s in SHARED_SEPARATE_SETTINGS}
SETTINGS = (
    _DATA_ROWS["relatedness"],
    Setting(
        "branch",
        "int",
        2,
        0,
        DEPTH,
        step=1,
        label="Branch point (shared layers)",
        help=f"Hard sharing shares its first layers and branches into one tower per task after them: "
        f"0 = nothing shared, {DEPTH} = every hidden layer shared (only the output heads are the tasks' own).",
    ),
    replace(
        _DATA_ROWS["hidden"],
        high=32,
        help=f"Units per hidden layer ({DEPTH} layers) in every model and every task tower.",
    ),
    lr_setting(0.03, 0.001, 0.5, "Adam step size of all three models; changes apply at once, without a reset."),
    replace(
        _DATA_ROWS["n_samples"], help="Labelled points every model learns from; they are scored on 1000 fresh points."
    ),
    _DATA_ROWS["noise"],
    seed_setting("Seeds the data and the three models' weights and batches."),
    data_setting(
        {GENERATED: "Generated"},
        "Generated points, or your own: a CSV x1,x2,label_a,label_b (a quarter of its rows held out to score on).",
    ),
)
# everything but lr starts a new run
RESET_ON = ("relatedness", "branch", "hidden", "n_samples", "noise", "seed", "data")
DATA_KNOBS = ("relatedness", "n_samples", "noise")  # they shape the generated data only


def _acc_columns() -> list[str]:
    return [f"{m}_{s}_{t}" for m in MODELS for s in ("train", "test") for t in ("a", "b")]


def _stitch_columns() -> list[str]:
    """``l{layer}_{to}{from}``: how much column ``to`` reads from column ``from`` (the off-diagonal entries)."""
    return [f"l{l}_{to}{frm}" for l in range(DEPTH) for to, frm in (("a", "b"), ("b", "a"))]


def _empty(columns: list[str]) -> dict:
    return {"step": [], **{c: [] for c in columns}}


_Settings = settings_class("_ArchitecturesSettings", SETTINGS)


class ArchitecturesState(common.TrainingClock, _Settings):
    """Settings, the three models, their trainers and the plot data of the page (no widgets).

    ``tick()`` runs a few training steps of every model; ``step_once()`` runs exactly one; ``reset()`` rebuilds
    data and models from the settings. Plot data lives in ``self.sources`` (names and columns in the docstring of
    app/architectures.py); ``table`` and ``verdict`` are the readouts in words.
    """

    max_steps, steps_per_tick, reset_on = MAX_STEPS, STEPS_PER_TICK, RESET_ON
    verdict = param.String("", doc="Plain-words comparison of the models (plain text, one line per point).")
    table = param.List([], doc="One dict per model: label, parameters (shared / total), test accuracy per task.")
    data_summary = param.String("", doc="Plain text: the points and labels the page trains on.")
    data_error = param.String("", doc="Plain text: why the last upload was refused (the data stayed).")
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
            "acc": ColumnDataSource(_empty(_acc_columns()), name="acc_source"),
            "stitch": ColumnDataSource(name="stitch_source"),
            "stitch_history": ColumnDataSource(_empty(_stitch_columns()), name="stitch_history"),
            "transfer": ColumnDataSource(name="transfer_source"),
            "arch": ColumnDataSource(name="arch_source"),
        }
        self.reset()

    # ------------------------------------------------------------------ building the run
    def reset(self) -> None:
        """Draw the data (or take the reader's own) and fresh models from the current settings; clear every curve."""
        if self.data == CUSTOM and self.custom is None:
            # only at construction (a watcher handles every later change, _on_reset_setting): nothing listens yet
            self.fallback_notice = FALLBACK_NOTICE
            with param.parameterized.discard_events(self):
                self.data = GENERATED
        data_ss, net_ss, train_ss = np.random.SeedSequence(self.seed).spawn(3)
        if self.data == CUSTOM:
            # test_data is None when no row is held out: the test curves then have gaps (NaN), not made-up scores
            self.train_data, self.test_data = two_task_datasets(self.custom)
        else:
            rng = np.random.default_rng(data_ss)
            # the training points, then fresh test points from the same distribution
            self.train_data, self.test_data = (
                make_related_classification(k, rng=rng, relatedness=self.relatedness, noise=self.noise)
                for k in (self.n_samples, N_TEST)
            )
        self.task_names = list(self.train_data.task_names)
        self.nets = self._build_nets(self.train_data.tasks, net_ss)
        train_seed = int(train_ss.generate_state(1)[0])  # the same batches for every model
        self.trainers = {
            m: Trainer(net, self.train_data, optimizer=Adam(lr=self.lr), batch_size=BATCH, seed=train_seed)
            for m, net in self.nets.items()
        }
        self.error = ""
        self.steps = self._ticks = 0
        self.sources["arch"].data = self._arch_data()
        first = {"acc": _empty(_acc_columns()), "stitch_history": _empty(_stitch_columns())}
        self._append_point(first)  # the step-0 point: untrained models, stitches at their start
        for key, rows in first.items():
            self.sources[key].data = rows
        self._update_text()
        self._update_summary()

    # ------------------------------------------------------------------ the reader's own data
    def _on_reset_setting(self, *events) -> None:
        if self.data == CUSTOM and self.custom is None:
            # data=custom from a link (or the Data choice) without a file of one's own in this session: say so and
            # go back to the generated data (that change comes through here again and starts the new run)
            self.fallback_notice = self.data_error = FALLBACK_NOTICE  # the notice on top, and beside the upload
            self.data = GENERATED
            return
        super()._on_reset_setting(*events)

    def load_csv(self, raw: bytes | str) -> bool:
        """Train on an uploaded ``x1,x2,label_a,label_b`` file; False (``data_error`` says why) if it is refused,
        and then the data stays as it was.

        Read as Shared vs Separate reads it: inputs that do not fit [-3.5, 3.5]^2 are standardised, a quarter of
        the rows (drawn with the seed) are held out to score the models on.
        """
        try:
            custom = two_task_file(raw, seed=self.seed, region=REGION)
        except CustomDataError as exc:
            self.data_error = str(exc)
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
            letters = {col: f"task {t.upper()}" for t, col in LABEL_COLUMNS.items()}
            note = f"; {self.custom.note}" if self.custom.note else ""
            self.data_summary = f"Your data: {self.custom.summary(letters)}{note}."
        else:
            self.data_summary = (
                f"Generated data: {self.train_data.n_samples} training points, each with a label for both tasks; "
                f"scored on {N_TEST} fresh points."
            )

    def _build_nets(self, tasks, seed_seq) -> dict:
        """The three models, each from the same seed: the comparison is about the wiring, not a lucky start."""
        widths = (self.hidden,) * DEPTH

        def rng():
            return np.random.default_rng(seed_seq)

        return {
            "separate": SeparateNets(2, tasks, trunk=widths, activation="tanh", rng=rng()),
            "hard": branched_net(2, tasks, widths=widths, branch=self.branch, activation="tanh", rng=rng()),
            "stitch": CrossStitchNet(2, tasks, trunk=widths, activation="tanh", rng=rng()),
        }

    def _arch_data(self) -> dict:
        """Boxes of the hard-sharing diagram: input at the bottom, one box per layer (one wide box while shared,
        one per task after the branch point), the two heads on top."""
        cols = {k: [] for k in ("left", "right", "bottom", "top", "color", "label", "lx", "ly")}

        def box(left, right, level, color, label):
            for k, v in zip(
                cols, (left, right, level + 0.12, level + 0.88, color, label, (left + right) / 2, level + 0.5)
            ):
                cols[k].append(v)

        box(0.0, 2.0, 0, "#dddddd", "input x (2 numbers)")
        for level in range(1, DEPTH + 1):
            if level <= self.branch:
                box(0.0, 2.0, level, "#9fd3cf", f"shared layer {level} ({self.hidden} units)")
            else:
                box(0.0, 0.95, level, "#f3c9a0", f"A's layer {level}")
                box(1.05, 2.0, level, "#c9c3e6", f"B's layer {level}")
        box(0.0, 0.95, DEPTH + 1, "#f3c9a0", "head A")
        box(1.05, 2.0, DEPTH + 1, "#c9c3e6", "head B")
        return cols

    # ------------------------------------------------------------------ training
    def optimizers(self) -> list:
        return [tr.optimizer for tr in self.trainers.values()]

    def _train(self, n: int) -> None:
        done = 0
        for _ in range(max(0, min(n, self.max_steps - self.steps))):
            recs = {m: tr.step() for m, tr in self.trainers.items()}
            bad = [f"{MODEL_LABELS[m]}: {r.diverged}" for m, r in recs.items() if r.diverged]
            if bad:
                self.error = (
                    f"Training diverged ({bad[0]}). The curves stop at the last good step; "
                    "lower the learning rate and press Reset."
                )
                self.running = False
                break
            self.steps += 1
            done += 1
        if done:
            # scoring three models on 1000 test points costs more than the steps: once per tick is enough
            rows = {"acc": _empty(_acc_columns()), "stitch_history": _empty(_stitch_columns())}
            self._append_point(rows)
            for key, new in rows.items():  # one stream per source per tick
                if new["step"]:
                    self.sources[key].stream(new)
        # the readouts of "now" (cross-stitch matrices, gain bars, table, verdict) on a run's first tick and then
        # every READOUT_EVERY ticks of live training: redrawn every tick they were most of a slow browser's redraw;
        # a pause, a Step and the end of the run show them at once (_update_text runs when training stops)
        self._ticks += 1
        if done and (not self.running or self._ticks % READOUT_EVERY == 1):
            self._update_text()
        else:
            self.status = self.status_line()

    def _accuracy(self, net, data) -> np.ndarray | None:
        """Per-task accuracy (2,) of ``net`` on the labelled rows of ``data``; None if a prediction is not finite
        (a blown-up model). A task without a labelled row there scores NaN (possible with one's own data, where
        ``data`` is None when no row is held out): a gap in its curve, "no score" in words."""
        if data is None:
            return np.full(len(self.task_names), np.nan)
        preds = net.forward(data.x)
        if not all(np.all(np.isfinite(preds[t])) for t in self.task_names):
            return None
        return np.array([accuracy(preds[t], data.targets[t], mask=data.masks[t]) for t in self.task_names])

    def _append_point(self, rows: dict) -> None:
        """Score every model now and append one point at the current step to ``rows`` (acc, stitch_history).

        Nothing is appended if a score is not finite: no NaN reaches a plot.
        """
        point = {}
        for m, net in self.nets.items():
            for split, data in (("train", self.train_data), ("test", self.test_data)):
                acc = self._accuracy(net, data)
                if acc is None:
                    return
                for k, t in enumerate(self.task_names):
                    point[f"{m}_{split}_{t}"] = float(acc[k])
        A = self.nets["stitch"].stitch_matrices()
        mixing = {
            f"l{l}_{to}{frm}": float(A[l, i, 1 - i]) for l in range(DEPTH) for i, (to, frm) in enumerate(("ab", "ba"))
        }
        for key, values in (("acc", point), ("stitch_history", mixing)):
            rows[key]["step"].append(self.steps)
            for col, v in values.items():
                rows[key][col].append(v)

    def _update_stitch(self) -> None:
        """The current cross-stitch matrices as cells: layer l's 2 x 2 matrix at x = 3 l + (from column),
        y = 1 - (to row), so row A is on top and each layer's matrix reads like the formula."""
        A = self.nets["stitch"].stitch_matrices()
        if not np.all(np.isfinite(A)):
            return  # keep the last good matrices of a blown-up model
        cells = {k: [] for k in ("x", "y", "value", "text", "layer", "to", "frm")}
        for l in range(DEPTH):
            for i, to in enumerate(TASK_LETTERS):
                for j, frm in enumerate(TASK_LETTERS):
                    v = float(A[l, i, j])
                    for k, val in zip(cells, (3 * l + j, 1 - i, v, f"{v:.2f}", l + 1, to, frm)):
                        cells[k].append(val)
        self.sources["stitch"].data = cells

    # ------------------------------------------------------------------ readouts
    def latest(self, split: str = "test") -> dict:
        """{(model, task): last accuracy}, e.g. latest()[("hard", "a")] = hard sharing's test accuracy on task a."""
        data = self.sources["acc"].data
        return {(m, t): float(data[f"{m}_{split}_{t}"][-1]) for m in MODELS for t in self.task_names}

    def gains(self) -> dict:
        """{(model, task): test accuracy of ``model`` minus that of separate nets, in points} for hard / stitch."""
        acc = self.latest("test")
        return {(m, t): 100 * (acc[(m, t)] - acc[("separate", t)]) for m in SHARING for t in self.task_names}

    def param_counts(self) -> dict:
        """{model: (shared parameters, all parameters)}."""
        return {m: (int(net.n_shared), int(net.n_params)) for m, net in self.nets.items()}

    def describe(self) -> dict[str, str]:
        """The plots in words, now (the page's text alternative; keys start the figures' names)."""
        counts = self.param_counts()
        texts = {
            "status": f"{self.status_line()}.",
            "arch": (
                f"Hard sharing shares the first {self.branch} of {DEPTH} hidden layers; "
                + ", ".join(f"{MODEL_LABELS[m]} {counts[m][1]} parameters ({counts[m][0]} shared)" for m in MODELS)
                + "."
            ),
        }
        if not len(self.sources["acc"].data["step"]):
            texts["acc"] = "No training yet: the curves are empty."
            return texts
        acc, gains = self.latest("test"), self.gains()
        texts["acc"] = (
            "Test accuracy - "
            + "; ".join(
                f"{MODEL_LABELS[m]}: "
                + ", ".join(
                    f"task {letter} {_percent(acc[(m, t)])}"
                    for letter, t in zip(TASK_LETTERS, self.task_names, strict=True)
                )
                for m in MODELS
            )
            + "."
        )
        texts["transfer"] = (
            "Gain over separate nets - "
            + "; ".join(
                f"{MODEL_LABELS[m]}: "
                + ", ".join(
                    f"task {letter} {_points(gains[(m, t)])}" + (" points" if np.isfinite(gains[(m, t)]) else "")
                    for letter, t in zip(TASK_LETTERS, self.task_names, strict=True)
                )
                for m in SHARING
            )
            + "."
        )
        texts["stitch_history"] = texts["stitch"] = self._stitch_line()
        return texts

    def _update_text(self) -> None:
        self._update_stitch()
        self.status = self.status_line()
        acc, gains, counts = self.latest("test"), self.gains(), self.param_counts()
        self.sources["transfer"].data = _transfer_data(gains, self.task_names)
        self.table = [
            {
                "model": m,
                "label": MODEL_LABELS[m],
                "shared": counts[m][0],
                "params": counts[m][1],
                **{f"acc_{t}": 100 * acc[(m, t)] for t in self.task_names},
                **{f"gain_{t}": gains.get((m, t)) for t in self.task_names},
            }
            for m in MODELS
        ]
        if self.steps == 0:
            # as many lines as a trained run's, about as long: the page keeps its height when a new run starts and
            # when its first readout comes (each change of height laid the whole page out again: ~100 ms at 4x)
            lines = ["No training yet: press Train (or Step) and watch the three models learn."]
            later = "task A and task B, in points of test accuracy against separate nets, once it trains"
            lines += [f"{self._model_head(m, counts)}: {later}." for m in SHARING]
            lines.append(self._stitch_line())
            self.verdict = "\n".join(lines)
            return
        lines = [self._model_line(m, gains, counts) for m in SHARING]
        lines.append(self._best_line(acc))
        lines.append(self._stitch_line())
        self.verdict = "\n".join(lines)

    def _model_head(self, m: str, counts: dict) -> str:
        """'Hard sharing (31% fewer parameters than separate nets, 2 of 3 layers shared)'."""
        size = counts[m][1] / counts["separate"][1] - 1
        fewer = (
            f"{abs(100 * size):.0f}% {'fewer' if size < 0 else 'more'} parameters"
            if abs(size) >= 0.005
            else "as many parameters"
        )
        where = f", {self.branch} of {DEPTH} layers shared" if m == "hard" else ""
        return f"{MODEL_LABELS[m].capitalize()} ({fewer} than separate nets{where})"

    def _model_line(self, m: str, gains: dict, counts: dict) -> str:
        ga, gb = (gains[(m, t)] for t in self.task_names)
        unscored = [letter for letter, g in zip(TASK_LETTERS, (ga, gb), strict=True) if not np.isfinite(g)]
        what = (
            f"no test score for task {' and '.join(unscored)}: no held-out point has "
            + ("its label" if len(unscored) == 1 else "their labels")
            if unscored
            else _transfer_words(ga, gb)
        )
        points = f"task A {_points(ga)}, task B {_points(gb)} points of test accuracy"
        return f"{self._model_head(m, counts)}: {points} - {what}."

    def _best_line(self, acc: dict) -> str:
        parts = []
        for letter, t in zip(TASK_LETTERS, self.task_names, strict=True):
            scored = [m for m in MODELS if np.isfinite(acc[(m, t)])]
            if not scored:
                parts.append(f"task {letter}: no test score")
                continue
            best = max(scored, key=lambda m: acc[(m, t)])
            parts.append(f"task {letter}: {MODEL_LABELS[best]} ({100 * acc[(best, t)]:.1f}%)")
        return "Best test accuracy - " + "; ".join(parts) + "."

    def _stitch_line(self) -> str:
        shares = ", ".join(
            f"layer {l + 1}: A {100 * a:.0f}%, B {100 * b:.0f}%" for l, (a, b) in enumerate(self.stitch_shares())
        )
        return (
            f"Cross-stitch, part of each task's input read from the other task's column (10% at the start) - {shares}."
        )

    def stitch_shares(self) -> np.ndarray:
        """(DEPTH, 2): row l = (|a_AB| / (|a_AA| + |a_AB|), |a_BA| / (|a_BB| + |a_BA|)) of layer l's stitch matrix,
        how much of task A's (B's) input comes from the other column, by the size of the mixing weights."""
        A = np.abs(self.nets["stitch"].stitch_matrices())
        rows = A / np.maximum(A.sum(axis=2, keepdims=True), 1e-12)
        return np.stack([rows[:, 0, 1], rows[:, 1, 0]], axis=1)


def _points(v: float) -> str:
    """A gain in points with its sign, "+0.0" rather than "-0.0"; "none" when there is no score (NaN: no labelled
    held-out point for that task, with one's own data)."""
    if not np.isfinite(v):
        return "none"
    return f"{round(v, 1) + 0.0:+.1f}"


def _percent(v: float) -> str:
    """An accuracy (a fraction) as "87.5%"; "no score" when there is none (NaN)."""
    return f"{100 * v:.1f}%" if np.isfinite(v) else "no score"


def _transfer_words(ga: float, gb: float) -> str:
    """Plain words for a pair of per-task gains (points) against separate nets."""
    up_a, up_b, down_a, down_b = ga >= DRAW, gb >= DRAW, ga <= -DRAW, gb <= -DRAW
    if up_a and up_b:
        return "both tasks gain: positive transfer"
    if down_a and down_b:
        return "both tasks lose: negative transfer"
    if (up_a and down_b) or (up_b and down_a):
        winner, loser = ("A", "B") if up_a else ("B", "A")
        return f"asymmetric transfer: {winner} gains while {loser} loses"
    if up_a or up_b or down_a or down_b:
        moved, other = ("A", "B") if (up_a or down_a) else ("B", "A")
        way = "gains" if (up_a or up_b) else "loses"
        return f"{moved} {way}, {other} about the same"
    return f"no clear difference (both within {DRAW:.0f} point)"


def _transfer_data(gains: dict, task_names: list[str]) -> dict:
    """Bars of the transfer chart: one per (sharing model, task), green when it gains, red when it loses; a task
    without a test score (NaN) has no bar, and "none" written at 0 (``ty``: where the text goes)."""
    cols = {k: [] for k in ("x", "gain", "color", "text", "model", "task", "ty")}
    for m in SHARING:
        for letter, t in zip(TASK_LETTERS, task_names, strict=True):
            g = gains[(m, t)]
            color = "#2e8b57" if g >= DRAW else "#c0392b" if g <= -DRAW else "#999999"
            ty = g if np.isfinite(g) else 0.0
            for k, v in zip(cols, (f"{MODEL_LABELS[m]}, task {letter}", g, color, _points(g), m, t, ty)):
                cols[k].append(v)
    return cols

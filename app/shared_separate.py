"""Page 1, "Shared vs Separate": one shared trunk for two tasks against two separate networks, trained live.

Two binary tasks "a" and "b" label the same 2-D points (``mtl_core.data.make_related_classification``); the
relatedness slider rotates task b's pattern away from task a's. A hard-sharing ``MultiTaskNet`` and a
``SeparateNets`` pair train side by side on the same data with the same optimizer, and the page shows who
generalises better, and the cosine between the two tasks' trunk gradients (negative transfer made visible).

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the static-site tests):

    relatedness, hidden, lr, n_samples, noise, seed     the settings widgets (Slider / Spinner models; .value)
    train_button, pause_button, step_button, reset_button
    status          Div: "step 120 / 1000 - training" etc. (plain text inside)
    verdict         Div: the plain-words verdict per task
    notices         Div: notices about clamped / ignored URL values (escaped HTML)
    error           Div: the divergence / internal-error message (empty while all is well)
    acc_source      ColumnDataSource: step, {model}_{split}_{task} accuracies, model in (shared, separate),
                    split in (train, test), task in (a, b); e.g. acc_source.data["shared_test_a"]
    loss_source     ColumnDataSource: same columns with losses
    cosine_source   ColumnDataSource: step, cosine (per-step trunk-gradient cosine), smooth (running mean)
    points_source   ColumnDataSource: the training points (x0, x1, color_a, color_b)
    heat_shared_a, heat_shared_b, heat_separate_a, heat_separate_b
                    ColumnDataSource of each decision-boundary image (image, x, y, dw, dh)
    boundary_shared_a ... boundary_separate_b, acc_figure_a, acc_figure_b, loss_figure_a, loss_figure_b,
    cosine_figure   the Bokeh figures
"""
from __future__ import annotations

import pathlib
import sys

if __name__.startswith("bokeh"):  # `panel serve app/shared_separate.py`: make the checkout importable
    _ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, LinearColorMapper, Span
from bokeh.plotting import figure

from app import common
from app.settings import Setting, settings_class

SLUG = "shared_separate"
MODELS = ("shared", "separate")
MODEL_LABELS = {"shared": "shared trunk", "separate": "separate nets"}
TASK_LETTERS = ("A", "B")
MAX_STEPS = 1000
STEPS_PER_TICK = 6   # steps per 100-ms tick to start with; common.Animator adapts it to keep ticks short
IMAGE_EVERY = 2      # redraw the four maps every other tick: they are most of the bytes sent to the browser
N_TEST = 1000        # fresh held-out points: a test accuracy good to about +-1.5 points, so the verdict is real
GRID = 48            # decision-boundary image resolution (GRID x GRID)
EXTENT = 3.5         # the maps show [-EXTENT, EXTENT]^2: inputs are N(0, I), so almost every point is inside
BATCH = 64
SMOOTH = 0.9         # running-mean factor of the displayed cosine

SETTINGS = (
    Setting("relatedness", "float", 0.8, 0.0, 1.0, step=0.05, label="Task relatedness",
            help="1 = both tasks have the same labels; 0 = task B's pattern is rotated so its labels are "
                 "independent of task A's."),
    Setting("hidden", "int", 8, 2, 64, step=1, label="Hidden width",
            help="Units per hidden layer (two layers). Each separate net gets its own layers of this width."),
    Setting("lr", "float", 0.03, 0.001, 0.5, step=0.001, label="Learning rate",
            help="Adam step size; changes apply at once, without a reset."),
    Setting("n_samples", "int", 200, 20, 1000, step=10, label="Training points",
            help="Labelled points both models learn from; they are scored on 1000 fresh points."),
    Setting("noise", "float", 0.1, 0.0, 0.5, step=0.01, label="Label noise",
            help="Probability that a label is flipped, independently per task."),
    Setting("seed", "int", 0, 0, 9999, step=1, label="Seed", help="Seeds the data, the split and both nets."),
)
RESET_ON = ("relatedness", "hidden", "n_samples", "noise", "seed")  # everything but lr rebuilds the run

COLORS = {"shared": "#1b7f79", "separate": "#d9730d"}
CLASS_COLORS = np.array(["#3b6fb6", "#c0392b"])  # label 0, label 1
HEAT_PALETTE = ["#a9c4ea", "#bcd0ee", "#cfdcf2", "#e1e8f6", "#f2f2f2", "#f6e1df", "#f2cbc6", "#eeb5ae",
                "#e99f96"]


def _curve_columns() -> list[str]:
    return [f"{m}_{s}_{t}" for m in MODELS for s in ("train", "test") for t in ("a", "b")]


def _empty_curves() -> dict:
    return {"step": [], **{c: [] for c in _curve_columns()}}


_Settings = settings_class("_SharedSeparateSettings", SETTINGS)


class SharedSeparateState(common.TrainingClock, _Settings):
    """Settings, the two models, their trainers and the plot data of the page (no widgets).

    ``tick()`` runs a few training steps (what the periodic callback calls); ``step_once()`` runs exactly one;
    ``reset()`` rebuilds data and models from the settings. All plot data lives in the ColumnDataSources of
    ``self.sources`` (see the module docstring for names and columns).
    """

    max_steps, steps_per_tick = MAX_STEPS, STEPS_PER_TICK
    status = param.String("", doc="One line of plain text: step count and what is happening.")
    verdict = param.String("", doc="Plain-words comparison of the two models (plain text, one line per task).")
    error = param.String("", doc="Why training stopped (divergence), plain text; empty when fine.")

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {
            "acc": ColumnDataSource(_empty_curves(), name="acc_source"),
            "loss": ColumnDataSource(_empty_curves(), name="loss_source"),
            "cosine": ColumnDataSource({"step": [], "cosine": [], "smooth": []}, name="cosine_source"),
            "points": ColumnDataSource({"x0": [], "x1": [], "color_a": [], "color_b": []},
                                       name="points_source"),
        }
        for m in MODELS:
            for t in ("a", "b"):
                self.sources[f"heat_{m}_{t}"] = ColumnDataSource(
                    {"image": [np.full((GRID, GRID), 0.5, dtype=np.float32)], "x": [-EXTENT], "y": [-EXTENT],
                     "dw": [2 * EXTENT], "dh": [2 * EXTENT]}, name=f"heat_{m}_{t}")
        # a fixed square grid (not fitted to the data) so maps stay comparable when a setting changes
        g = np.linspace(-EXTENT, EXTENT, GRID)
        xx, yy = np.meshgrid(g, g)  # row i of the image is y = g[i] (Bokeh draws row 0 at the bottom)
        self._grid = np.column_stack([xx.ravel(), yy.ravel()])
        self._ticks = 0
        self.param.watch(self._on_reset_setting, list(RESET_ON))
        self.param.watch(self._on_lr, "lr")
        self.reset()

    # ------------------------------------------------------------------ building the run
    def reset(self) -> None:
        """Draw the data and fresh models from the current settings and clear every curve."""
        from mtl_core.data import make_related_classification
        from mtl_core.nets import MultiTaskNet, SeparateNets
        from mtl_core.optim import Adam
        from mtl_core.trainer import Trainer

        data_ss, net_ss, train_ss = np.random.SeedSequence(self.seed).spawn(3)
        n = self.n_samples
        data = make_related_classification(n + N_TEST, rng=np.random.default_rng(data_ss),
                                           relatedness=self.relatedness, noise=self.noise)
        self.train_data, self.test_data = data.subset(np.arange(n)), data.subset(np.arange(n, n + N_TEST))
        self.task_names = list(data.task_names)
        # both models start from the same seed: the comparison is about sharing, not about a lucky init
        trunk = (self.hidden, self.hidden)
        self.nets = {
            "shared": MultiTaskNet(2, data.tasks, trunk=trunk, activation="tanh",
                                   rng=np.random.default_rng(net_ss)),
            "separate": SeparateNets(2, data.tasks, trunk=trunk, activation="tanh",
                                     rng=np.random.default_rng(net_ss)),
        }
        train_seed = int(train_ss.generate_state(1)[0])
        self.trainers = {m: Trainer(net, self.train_data, weighting="equal", combiner="sum",
                                    optimizer=Adam(lr=self.lr), batch_size=BATCH, seed=train_seed)
                         for m, net in self.nets.items()}
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

    def _fill_points(self) -> None:
        tr = self.train_data  # only the training points: 1000 test points would hide the boundary
        cols = {"x0": tr.x[:, 0], "x1": tr.x[:, 1]}
        for t in self.task_names:
            cols[f"color_{t}"] = CLASS_COLORS[np.asarray(tr.targets[t]).astype(int)].tolist()
        self.sources["points"].data = cols

    # ------------------------------------------------------------------ training
    def _on_reset_setting(self, *_events) -> None:
        self.reset()
        self.running = True  # a new setting means a new experiment: retrain it at once

    def _on_lr(self, event) -> None:
        for tr in self.trainers.values():
            tr.optimizer.lr = event.new

    def can_train(self) -> bool:
        return not self.error   # a diverged run stays stopped until Reset

    def _train(self, n: int) -> None:
        rows = {"acc": _empty_curves(), "loss": _empty_curves(), "cosine": {"step": [], "cosine": [], "smooth": []}}
        for _ in range(max(0, min(n, self.max_steps - self.steps))):
            recs = {m: tr.step() for m, tr in self.trainers.items()}
            bad = [r.diverged for r in recs.values() if r.diverged]
            if bad:
                self.error = (f"Training diverged: {bad[0]}. The curves stop at the last good step; "
                              "lower the learning rate and press Reset.")
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

    def _evaluate(self, net, data) -> tuple[np.ndarray, np.ndarray]:
        """Per-task (accuracy, loss) of ``net`` on ``data``, each shape (2,)."""
        preds = net.forward(data.x)
        acc, loss = np.zeros(2), np.zeros(2)
        for k, t in enumerate(self.task_names):
            z, y = np.asarray(preds[t], float).reshape(-1), np.asarray(data.targets[t], float)
            acc[k] = np.mean((z > 0) == (y > 0.5))
            # BCE with logits, written stably: max(z,0) - z*y + log(1 + exp(-|z|))
            loss[k] = np.mean(np.maximum(z, 0) - z * y + np.log1p(np.exp(-np.abs(z))))
        return acc, loss

    def _append_scores(self, rows: dict) -> None:
        """Evaluate both models now and append one point at the current step to the acc/loss ``rows``.

        Nothing is appended if a score is not finite (a model that has just blown up): no NaN reaches a plot.
        """
        point = {"acc": {}, "loss": {}}
        for m, net in self.nets.items():
            for split, data in (("train", self.train_data), ("test", self.test_data)):
                acc, loss = self._evaluate(net, data)
                for k, t in enumerate(self.task_names):
                    point["acc"][f"{m}_{split}_{t}"] = float(acc[k])
                    point["loss"][f"{m}_{split}_{t}"] = float(loss[k])
        if not all(np.isfinite(list(p.values())).all() for p in point.values()):
            return
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
                self.sources[f"heat_{m}_{t}"].data = {"image": [prob], "x": [-EXTENT], "y": [-EXTENT],
                                                      "dw": [2 * EXTENT], "dh": [2 * EXTENT]}

    # ------------------------------------------------------------------ readouts
    def latest(self, metric: str = "acc", split: str = "test") -> dict:
        """{(model, task): last value} of a curve, e.g. latest()[("shared", "a")] = test accuracy."""
        data = self.sources[metric].data
        return {(m, t): float(data[f"{m}_{split}_{t}"][-1]) for m in MODELS for t in self.task_names}

    def _update_text(self) -> None:
        state = ("diverged" if self.error else "training" if self.running else
                 "finished" if self.steps >= self.max_steps else "paused" if self.steps else "ready")
        self.status = f"Step {self.steps} / {self.max_steps} - {state}"
        if self.steps == 0:
            self.verdict = "No training yet: press Train (or Step) and watch both models learn."
            return
        acc = self.latest("acc", "test")
        lines = []
        for letter, t in zip(TASK_LETTERS, self.task_names):
            sh, se = 100 * acc[("shared", t)], 100 * acc[("separate", t)]
            gap = sh - se
            if abs(gap) < 0.5:
                lines.append(f"Task {letter}: a draw ({sh:.1f}% vs {se:.1f}% test accuracy).")
            else:
                winner = "the shared trunk wins" if gap > 0 else "separate nets win"
                lines.append(f"Task {letter}: {winner} by {abs(gap):.1f} points of test accuracy "
                             f"({sh:.1f}% shared vs {se:.1f}% separate).")
        cos = self.sources["cosine"].data["cosine"][-50:]
        if cos:
            c = round(float(np.mean(cos)), 2) + 0.0  # + 0.0: no "-0.00"
            mood = ("mostly agree: a step for one task also helps the other" if c > 0.1 else
                    "pull the trunk in opposite directions: negative transfer" if c < -0.1 else
                    "want different things from the trunk and compete for its units")
            lines.append(f"Trunk gradients over the last {len(cos)} steps: mean cosine {c:+.2f} - the tasks {mood}.")
        self.verdict = "\n".join(lines)

    @param.depends("running", watch=True)
    def _on_running(self) -> None:
        self._update_text()


EXPLANATION = """
### What you are looking at
Two yes/no tasks label the **same** 2-D points. Task B's pattern is task A's turned by (1 − relatedness) × 45°:
at relatedness 1 the labels match, at 0 they are unrelated. Two models learn both tasks from the same training
points (the dots on the maps) and are scored on 1000 fresh points drawn the same way (the solid curves):

* **shared trunk** — one stack of hidden layers h = f(x) feeds two small heads, ŷ_A = head_A(h), ŷ_B = head_B(h);
* **separate nets** — each task gets its own full network (twice the hidden units in total).

Both minimise L = L_A + L_B with the same Adam optimiser. In the shared trunk the update of the trunk weights θ is

  Δθ = −η (g_A + g_B),  where g_k = ∂L_k/∂θ,

so each task moves the features the other one reads. The cosine between the two tasks' trunk gradients,

  cos(g_A, g_B) = g_A · g_B / (‖g_A‖ ‖g_B‖),

says whether they agree (> 0: a step for A also helps B) or fight (< 0: a step for A undoes part of B's progress).
Near 0 the tasks want unrelated features and compete for the trunk's few units. Slide the relatedness down and
watch the cosine sink towards 0, with more and more steps below it, and the shared trunk's advantage shrink or
turn into a loss: negative transfer. With few training points and noisy labels, related tasks help each other
the most, because each task's labels are extra (noisy) evidence about the features the other needs.
"""


class SharedSeparateView(pn.viewable.Viewer):
    """Widgets, plots and the live-training loop around a :class:`SharedSeparateState`."""

    state = param.ClassSelector(class_=SharedSeparateState)

    def __init__(self, state: SharedSeparateState | None = None, notices=(), query=None, **params):
        super().__init__(state=state or SharedSeparateState(), **params)
        self.query = query
        s = self.state
        self.widgets = {
            "relatedness": pn.widgets.FloatSlider.from_param(s.param.relatedness, throttled=True,
                                                       sizing_mode="stretch_width"),
            "hidden": pn.widgets.IntSlider.from_param(s.param.hidden, throttled=True,
                                                       sizing_mode="stretch_width"),
            "lr": pn.widgets.FloatInput.from_param(s.param.lr, sizing_mode="stretch_width"),
            "n_samples": pn.widgets.IntSlider.from_param(s.param.n_samples, throttled=True,
                                                       sizing_mode="stretch_width"),
            "noise": pn.widgets.FloatSlider.from_param(s.param.noise, throttled=True,
                                                       sizing_mode="stretch_width"),
            "seed": pn.widgets.IntInput.from_param(s.param.seed, sizing_mode="stretch_width"),
        }
        for name, w in self.widgets.items():
            common.bokeh_name(w, name)
        self.buttons = common.transport_buttons(s, on_reset=self._reset)

        self.notices = common.bokeh_name(common.notices_pane(), "notices")
        self.notices.object = common.render_notices(notices)
        self.error = common.named_html("error", stylesheets=[common.CSS])
        self.status = common.named_html("status")
        self.verdict = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width"), "verdict")
        s.param.watch(self._refresh_text, ["status", "verdict", "error"])
        self._refresh_text()
        self.animator = common.Animator(s, steps=STEPS_PER_TICK)

    def _reset(self) -> None:
        self.state.running = False
        self.state.reset()

    def _refresh_text(self, *_events) -> None:
        s = self.state
        self.status.object = f"<b>{common.escape(s.status)}</b>"
        self.verdict.object = "".join(f"<div>{common.escape(line)}</div>" for line in s.verdict.splitlines())
        self.error.object = common.render_notices([s.error], error=True) if s.error else ""

    # ------------------------------------------------------------------ plots
    def _boundary_figure(self, model: str, task: str, letter: str):
        fig = figure(title=f"Task {letter} — {MODEL_LABELS[model]}", name=f"boundary_{model}_{task}",
                     width=230, height=230, min_width=130, sizing_mode="scale_width",
                     x_range=(-EXTENT, EXTENT), y_range=(-EXTENT, EXTENT),
                     tools="", toolbar_location=None, match_aspect=True)
        mapper = LinearColorMapper(palette=HEAT_PALETTE, low=0.0, high=1.0)
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=mapper,
                  source=self.state.sources[f"heat_{model}_{task}"])
        fig.scatter("x0", "x1", size=5, fill_color=f"color_{task}", line_color="white",
                    line_width=0.5, source=self.state.sources["points"])
        fig.axis.visible = False
        fig.grid.visible = False
        fig.title.text_font_size = "11px"
        return fig

    def _curve_figure(self, metric: str, task: str, letter: str):
        label = "accuracy" if metric == "acc" else "loss (cross-entropy)"
        fig = figure(title=f"Task {letter}: {label}", name=f"{metric}_figure_{task}", height=220, min_width=260,
                     sizing_mode="stretch_width", tools="pan,wheel_zoom,reset", toolbar_location=None,
                     x_axis_label="step")
        src = self.state.sources[metric]
        for m in MODELS:
            for split, dash in (("test", "solid"), ("train", "dashed")):
                fig.line("step", f"{m}_{split}_{task}", source=src, color=COLORS[m], line_dash=dash,
                         line_width=2 if split == "test" else 1.3)
        fig.title.text_font_size = "11px"
        return fig

    def _cosine_figure(self):
        fig = figure(title="cos(g_A, g_B): do the tasks agree on the trunk?", name="cosine_figure", height=200,
                     min_width=260, sizing_mode="stretch_width", y_range=(-1.05, 1.05), tools="",
                     toolbar_location=None, x_axis_label="step")
        src = self.state.sources["cosine"]
        fig.line("step", "cosine", source=src, color="#999999", line_width=1, legend_label="each step")
        fig.line("step", "smooth", source=src, color="#6a3d9a", line_width=2.5, legend_label="running mean")
        fig.add_layout(Span(location=0, dimension="width", line_color="black", line_dash="dotted"))
        common.legend_above(fig)
        fig.title.text_font_size = "11px"
        return fig

    def __panel__(self):
        letters = list(zip(TASK_LETTERS, self.state.task_names))
        # 2 x 2 maps (rows = tasks, columns = models) that scale with the width: square on a phone too
        boundaries = common.flex_row(
            *[common.flex_item(pn.pane.Bokeh(self._boundary_figure(m, t, letter), sizing_mode="scale_width"),
                               basis="40%", min_width=140)
              for letter, t in letters for m in MODELS], gap="4px", max_width=560)
        points_legend = pn.pane.HTML(
            '<span style="color:#3b6fb6">&#9679;</span> label 0 &nbsp; '
            '<span style="color:#c0392b">&#9679;</span> label 1 (training points); background: the model\'s '
            "probability of label 1 on the map", sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        curve_legend = pn.pane.HTML(
            f'<span style="color:{COLORS["shared"]}"><b>&#9473;&#9473;</b> shared trunk</span> &nbsp; '
            f'<span style="color:{COLORS["separate"]}"><b>&#9473;&#9473;</b> separate nets</span> &nbsp; '
            "solid = test (1000 fresh points), dashed = training points",
            sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        curves = common.flex_row(
            *[common.flex_item(pn.pane.Bokeh(self._curve_figure(metric, t, letter), sizing_mode="stretch_width"),
                               basis="45%", min_width=260)
              for metric in ("acc", "loss") for letter, t in letters],
            common.flex_item(pn.pane.Bokeh(self._cosine_figure(), sizing_mode="stretch_width"), basis="45%",
                             min_width=260))
        controls = common.flex_item(
            pn.Column(pn.FlexBox(*self.buttons.values(), gap="4px"), self.status, *self.widgets.values(),
                      sizing_mode="stretch_width"),
            basis="250px", min_width=220, max_width=340)
        main = common.flex_item(pn.Column(self.verdict, boundaries, points_legend, sizing_mode="stretch_width"),
                                basis="420px", min_width=280, grow=3)
        body = pn.Column(self.notices, self.error, common.flex_row(controls, main, gap="16px"),
                         curve_legend, curves, common.explanation(EXPLANATION), sizing_mode="stretch_width")
        return common.page_layout(SLUG, pn.pane.HTML("<h2>Shared trunk vs separate networks</h2>",
                                                     sizing_mode="stretch_width"), body, query=self.query)


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, live training."""
    state = SharedSeparateState()
    notices = common.bind_url(state, SETTINGS, query)
    view = SharedSeparateView(state, notices=notices, query=query)
    state.running = autoplay
    view.animator.start()
    return view


if __name__.startswith("bokeh"):
    create_page().servable(title="Shared vs Separate - MTL Playground")

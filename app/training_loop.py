"""Page 4, "The Training Loop": the whole multi-task step — loss weighting + gradient combination — one step at a
time, with a live log of losses, weights, the gradient cosine and whether PCGrad had to project.

One ``mtl_core.Trainer`` drives a shared-trunk ``MultiTaskNet`` on either two related classification tasks or a
regression + classification pair whose losses differ by four orders of magnitude.

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the static-site tests):

    problem, weighting, combiner, relatedness, hidden, lr, seed   the settings widgets (.value)
    train_button, pause_button, step_button, reset_button
    status          Div: "Step 12 / 1500 - paused" (plain text inside)
    step_log        Div: HTML table of the last steps (newest first)
    metrics         Div: test-set scores of both tasks
    notices         Div: notices about clamped / ignored URL values (escaped HTML)
    error           Div: the divergence / internal-error message (empty while all is well)
    log_source      ColumnDataSource, one row per step: step, loss_0, loss_1 (raw task losses), weight_0, weight_1,
                    cosine (between the two weighted trunk gradients), projected (PCGrad projections this step,
                    0 for other combiners), total (weighted objective); column k = task k of the problem
    loss_figure, weight_figure, cosine_figure   the Bokeh figures
"""
from __future__ import annotations

import pathlib
import sys

if __name__.startswith("bokeh"):  # `panel serve app/training_loop.py`: make the checkout importable
    _ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, Span
from bokeh.plotting import figure

from app import common
from app.settings import Setting, choice_options, settings_class

SLUG = "training_loop"
MAX_STEPS = 1500
STEPS_PER_TICK = 5   # steps per 100-ms tick to start with; common.Animator adapts it
LOG_ROWS = 12        # rows of the step log
EVAL_EVERY = 10      # test-set scores refresh every this many steps
N_TRAIN, N_TEST = 400, 1000
BATCH = 64
TASK_COLORS = ("#2a6fb0", "#c2410c")
PROBLEMS = {
    "related": "Two related classifications (same inputs)",
    "scale_mismatch": "Regression (scale x100) + classification",
}
WEIGHTING_LABELS = {"equal": "equal (w = 1)", "uncertainty": "uncertainty (Kendall et al.)",
                    "gradnorm": "GradNorm", "dwa": "DWA (loss ratios)", "loss_norm": "loss normalisation"}
COMBINER_LABELS = {"sum": "sum (plain)", "pcgrad": "PCGrad", "mgda": "MGDA", "cagrad": "CAGrad"}

SETTINGS = (
    Setting("problem", "choice", "related", choices=tuple(PROBLEMS), labels=PROBLEMS, label="Problem",
            help="Two related yes/no tasks, or a x100-scaled regression next to a yes/no task."),
    Setting("weighting", "choice", "uncertainty", choices=tuple(WEIGHTING_LABELS), labels=WEIGHTING_LABELS,
            label="Loss weighting", help="How the per-task losses are weighted at each step."),
    Setting("combiner", "choice", "pcgrad", choices=tuple(COMBINER_LABELS), labels=COMBINER_LABELS,
            label="Gradient combination", help="How the weighted trunk gradients become one update."),
    Setting("relatedness", "float", 0.3, 0.0, 1.0, step=0.05, label="Task relatedness",
            help="Related problem only: 1 = same labels, 0 = independent labels (more conflict)."),
    Setting("hidden", "int", 16, 4, 64, step=1, label="Hidden width", help="Units per trunk layer (two layers)."),
    Setting("lr", "float", 0.01, 0.0005, 0.3, step=0.0005, label="Learning rate",
            help="Adam step size; changes apply at once, without a reset."),
    Setting("seed", "int", 0, 0, 9999, step=1, label="Seed", help="Seeds the data, the net and the batches."),
)
RESET_ON = ("problem", "weighting", "combiner", "relatedness", "hidden", "seed")
LOG_COLUMNS = ("step", "loss_0", "loss_1", "weight_0", "weight_1", "cosine", "projected", "total")

_Settings = settings_class("_TrainingLoopSettings", SETTINGS)


def _empty_log() -> dict:
    return {c: [] for c in LOG_COLUMNS}


class TrainingLoopState(common.TrainingClock, _Settings):
    """Settings, the net, its Trainer and the plot data of the page (no widgets).

    ``tick()`` runs a few steps (the periodic callback), ``step_once()`` exactly one, ``reset()`` rebuilds the
    run. ``records`` holds the trainer's StepRecords; ``sources["log"]`` the plotted columns.
    """

    max_steps, steps_per_tick = MAX_STEPS, STEPS_PER_TICK
    status = param.String("", doc="One line of plain text.")
    error = param.String("", doc="Why training stopped (divergence), plain text; empty when fine.")
    scores = param.Dict({}, doc="Latest test-set metrics {task: {metric: value}}.")

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {"log": ColumnDataSource(_empty_log(), name="log_source")}
        self.param.watch(self._on_reset_setting, list(RESET_ON))
        self.param.watch(self._on_lr, "lr")
        self.reset()

    def reset(self) -> None:
        """Fresh data, net, weighting and combiner from the current settings; clears the log."""
        from mtl_core.data import make_related_classification, make_scale_mismatch
        from mtl_core.nets import MultiTaskNet
        from mtl_core.optim import Adam
        from mtl_core.trainer import Trainer

        data_ss, net_ss, train_ss = np.random.SeedSequence(self.seed).spawn(3)
        rng = np.random.default_rng(data_ss)
        n = N_TRAIN + N_TEST
        if self.problem == "related":
            data = make_related_classification(n, rng=rng, relatedness=self.relatedness, noise=0.1)
        else:
            data = make_scale_mismatch(n, rng=rng, scale=100.0, noise=0.1)
        self.train_data, self.test_data = data.subset(np.arange(N_TRAIN)), data.subset(np.arange(N_TRAIN, n))
        self.tasks = list(data.tasks)
        self.task_names = [t.name for t in self.tasks]
        self.net = MultiTaskNet(data.in_dim, data.tasks, trunk=(self.hidden, self.hidden), activation="tanh",
                                rng=np.random.default_rng(net_ss))
        self.trainer = Trainer(self.net, self.train_data, weighting=self.weighting, combiner=self.combiner,
                               weighting_kwargs=common.WEIGHTING_KWARGS.get(self.weighting),
                               optimizer=Adam(lr=self.lr), batch_size=BATCH,
                               seed=int(train_ss.generate_state(1)[0]))
        self.records = []
        self.error = ""
        self.steps = 0
        self.sources["log"].data = _empty_log()
        self._score()
        self._update_status()

    # ------------------------------------------------------------------ training
    def _on_reset_setting(self, *_events) -> None:
        self.reset()
        self.running = True

    def _on_lr(self, event) -> None:
        self.trainer.optimizer.lr = event.new

    def can_train(self) -> bool:
        return not self.error   # a diverged run stays stopped until Reset

    def _train(self, n: int) -> None:
        rows = _empty_log()
        for _ in range(max(0, min(n, self.max_steps - self.steps))):
            rec = self.trainer.step()
            if rec.diverged:
                self.error = (f"Training diverged: {rec.diverged}. The curves stop at the last good step; "
                              "lower the learning rate and press Reset.")
                self.running = False
                break
            self.steps += 1
            self.records.append(rec)
            for key, value in self._row(rec).items():
                rows[key].append(value)
            if self.steps % EVAL_EVERY == 0:
                self._score()
        if rows["step"]:
            self.sources["log"].stream(rows)
        self._update_status()

    def _row(self, rec) -> dict:
        return {"step": rec.step + 1, "loss_0": float(rec.losses[0]), "loss_1": float(rec.losses[1]),
                "weight_0": float(rec.weights[0]), "weight_1": float(rec.weights[1]),
                "cosine": float(rec.cosine[0, 1]), "projected": int(rec.combine_info.get("n_projections", 0)),
                "total": float(rec.total)}

    def _score(self) -> None:
        """Test-set accuracy (yes/no tasks) or RMSE (regression) of every task.

        Only these two numbers are shown, so the page asks mtl_core.metrics for them alone rather than the
        full Trainer.evaluate (F1 and calibration too), which keeps each tick short in the browser.
        """
        from mtl_core.metrics import accuracy, rmse

        preds = self.net.forward(self.test_data.x)
        scores = {}
        for spec in self.tasks:
            z, y = preds[spec.name], self.test_data.targets[spec.name]
            if spec.kind == "regression":
                scores[spec.name] = {"rmse": float(rmse(z, y))}
            else:
                scores[spec.name] = {"accuracy": float(accuracy(z, y))}
        self.scores = scores

    def _update_status(self) -> None:
        state = ("diverged" if self.error else "training" if self.running else
                 "finished" if self.steps >= self.max_steps else "paused" if self.steps else "ready")
        self.status = f"Step {self.steps} / {self.max_steps} - {state}"

    @param.depends("running", watch=True)
    def _on_running(self) -> None:
        self._update_status()

    # ------------------------------------------------------------------ readouts (plain text / data)
    def log_rows(self, n: int = LOG_ROWS) -> list[dict]:
        """The last ``n`` log rows, newest first (what the step-log table shows)."""
        data = self.sources["log"].data
        count = len(data["step"])
        return [{c: data[c][i] for c in LOG_COLUMNS} for i in range(count - 1, max(count - n, 0) - 1, -1)]

    def score_lines(self) -> list[str]:
        lines = []
        for spec in self.tasks:
            m = self.scores.get(spec.name, {})
            if spec.kind == "regression":
                lines.append(f"{spec.name}: test RMSE {m.get('rmse', float('nan')):.2f} (targets scaled x100)")
            else:
                lines.append(f"{spec.name}: test accuracy {100 * m.get('accuracy', float('nan')):.1f}%")
        return lines


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def render_log(state: TrainingLoopState) -> str:
    """The step log as an HTML table (all values are numbers or task names, escaped anyway)."""
    names = [common.escape(t) for t in state.task_names]
    head = ("<tr><th>step</th>" + "".join(f"<th>L<sub>{n}</sub></th>" for n in names)
            + "".join(f"<th>w<sub>{n}</sub></th>" for n in names) + "<th>cos</th><th>projected?</th></tr>")
    body = []
    pcgrad = state.combiner == "pcgrad"
    for r in state.log_rows():
        proj = ("yes" if r["projected"] else "no") if pcgrad else "-"
        style = ' style="background:#fde2e1"' if r["cosine"] < 0 else ""
        body.append(f"<tr{style}><td>{r['step']}</td><td>{_fmt(r['loss_0'])}</td><td>{_fmt(r['loss_1'])}</td>"
                    f"<td>{_fmt(r['weight_0'])}</td><td>{_fmt(r['weight_1'])}</td><td>{r['cosine']:+.2f}</td>"
                    f"<td>{proj}</td></tr>")
    if not body:
        body.append('<tr><td colspan="7">No steps yet: press Step to run one, or Train.</td></tr>')
    return f'<table class="mtl-log">{head}{"".join(body)}</table>'


LOG_CSS = """
.mtl-log {border-collapse:collapse; font:12px ui-monospace, monospace; width:100%}
.mtl-log th, .mtl-log td {border-bottom:1px solid #e5e5e5; padding:2px 6px; text-align:right}
.mtl-log th {background:#f4f4f4}
"""

EXPLANATION = """
### One step of the loop
1. **Batch and forward.** 64 rows go through the shared trunk h = f_θ(x) and both heads; each task gets its loss
   L_k (cross-entropy for a yes/no task, squared error for the regression).
2. **Weights.** The weighting method picks w_k. *Uncertainty* weighting learns one log-variance s_k per task and
   minimises Σ_k ½·e^(−s_k)·L_k + ½·s_k, so w_k = ½·e^(−s_k): a task with a large, noisy loss is turned down,
   and the ½·s_k term stops every weight from sinking to zero. *GradNorm* tunes w_k so that the tasks' gradient
   norms on the last shared layer stay balanced relative to how fast each task is learning; *DWA* gives more
   weight to a task whose loss has recently fallen slowly, w_k ∝ exp(r_k / T) with r_k = L_k(t−1) / L_k(t−2).
3. **Per-task gradients.** Backpropagating each weighted loss separately gives g_k = w_k·∂L_k/∂θ for the trunk.
   The cosine cos(g_A, g_B) = g_A·g_B / (‖g_A‖‖g_B‖) is logged; red rows are steps where it is negative.
4. **Combine.** *Sum* uses d = g_A + g_B. *PCGrad* first removes the conflicting part: if g_A·g_B < 0 then
   g_A′ = g_A − (g_A·g_B / ‖g_B‖²)·g_B (and the same for g_B against the original g_A), then d = g_A′ + g_B′.
   *MGDA* takes the smallest-norm convex combination of the g_k; *CAGrad* looks for a direction that also
   lifts the worst task's improvement.
5. **Update.** Adam moves the trunk along d; each head is updated with its own task's gradient only.

Try the scale-mismatch problem with *equal* weights: the regression loss is ~10,000× the other, so it owns the
trunk. Switch to uncertainty weighting and watch the weights separate by orders of magnitude (log axis).
"""


class TrainingLoopView(pn.viewable.Viewer):
    """Widgets, plots, step log and the live-training loop around a :class:`TrainingLoopState`."""

    state = param.ClassSelector(class_=TrainingLoopState)

    def __init__(self, state: TrainingLoopState | None = None, notices=(), query=None, **params):
        super().__init__(state=state or TrainingLoopState(), **params)
        self.query = query
        s = self.state
        table = {st.name: st for st in SETTINGS}
        sel = {name: choice_options(table[name]) for name in ("problem", "weighting", "combiner")}
        self.widgets = {
            "problem": pn.widgets.Select.from_param(s.param.problem, options=sel["problem"],
                                                    sizing_mode="stretch_width"),
            "weighting": pn.widgets.Select.from_param(s.param.weighting, options=sel["weighting"],
                                                      sizing_mode="stretch_width"),
            "combiner": pn.widgets.Select.from_param(s.param.combiner, options=sel["combiner"],
                                                     sizing_mode="stretch_width"),
            "relatedness": pn.widgets.FloatSlider.from_param(s.param.relatedness, throttled=True,
                                                       sizing_mode="stretch_width"),
            "hidden": pn.widgets.IntSlider.from_param(s.param.hidden, throttled=True,
                                                       sizing_mode="stretch_width"),
            "lr": pn.widgets.FloatInput.from_param(s.param.lr, sizing_mode="stretch_width"),
            "seed": pn.widgets.IntInput.from_param(s.param.seed, sizing_mode="stretch_width"),
        }
        for name, w in self.widgets.items():
            common.bokeh_name(w, name)
        self.buttons = common.transport_buttons(s, on_reset=self._reset)

        self.notices = common.bokeh_name(common.notices_pane(), "notices")
        self.notices.object = common.render_notices(notices)
        self.error = common.named_html("error", stylesheets=[common.CSS])
        self.status = common.named_html("status")
        self.metrics = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width"), "metrics")
        self.step_log = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[LOG_CSS]),
                                          "step_log")
        s.param.watch(self._refresh_text, ["status", "error", "scores", "steps"])
        self._refresh_text()
        self.animator = common.Animator(s, steps=STEPS_PER_TICK)

    def _reset(self) -> None:
        self.state.running = False
        self.state.reset()

    def _refresh_text(self, *_events) -> None:
        s = self.state
        self.status.object = f"<b>{common.escape(s.status)}</b>"
        self.error.object = common.render_notices([s.error], error=True) if s.error else ""
        self.metrics.object = "".join(f"<div>{common.escape(line)}</div>" for line in s.score_lines())
        self.step_log.object = render_log(s)
        self.widgets["relatedness"].disabled = s.problem != "related"

    # ------------------------------------------------------------------ plots
    def _figure(self, name: str, title: str, **kw):
        fig = figure(name=name, title=title, height=220, min_width=260, sizing_mode="stretch_width",
                     tools="pan,wheel_zoom,reset", toolbar_location=None, x_axis_label="step", **kw)
        fig.title.text_font_size = "11px"
        return fig

    def _legend(self, fig):
        common.legend_above(fig)
        fig.legend.click_policy = "hide"

    def _plots(self):
        src = self.state.sources["log"]
        names = self.state.task_names
        loss = self._figure("loss_figure", "Task losses L_k (log scale)", y_axis_type="log")
        weight = self._figure("weight_figure", "Loss weights w_k (log scale)", y_axis_type="log")
        for k, color in enumerate(TASK_COLORS):
            loss.line("step", f"loss_{k}", source=src, color=color, line_width=2, legend_label=f"task {k + 1}")
            weight.line("step", f"weight_{k}", source=src, color=color, line_width=2,
                        legend_label=f"task {k + 1}")
        self._legend(loss)
        self._legend(weight)
        self._loss_fig, self._weight_fig = loss, weight
        self._name_legends(names)
        cos = self._figure("cosine_figure", "cos(g_A, g_B) of the weighted trunk gradients", y_range=(-1.05, 1.05))
        cos.line("step", "cosine", source=src, color="#777777", line_width=1)
        cos.scatter("step", "cosine", source=src, size=3, color="#6a3d9a")
        cos.add_layout(Span(location=0, dimension="width", line_color="black", line_dash="dotted"))
        return loss, weight, cos

    def _name_legends(self, names) -> None:
        # legend labels follow the problem's task names ("a"/"b" or "value"/"label")
        for fig in (self._loss_fig, self._weight_fig):
            for item, name in zip(fig.legend[0].items, names):
                item.label = {"value": f"task {name}"}

    def __panel__(self):
        loss, weight, cos = self._plots()
        self.state.param.watch(lambda _e: self._name_legends(self.state.task_names), "problem")
        plots = common.flex_row(*[common.flex_item(pn.pane.Bokeh(f, sizing_mode="stretch_width"), basis="45%",
                                                   min_width=260) for f in (loss, weight, cos)])
        controls = common.flex_item(
            pn.Column(pn.FlexBox(*self.buttons.values(), gap="4px"), self.status, *self.widgets.values(),
                      sizing_mode="stretch_width"),
            basis="250px", min_width=220, max_width=340)
        log = common.flex_item(
            pn.Column(pn.pane.HTML("<b>Step log</b> (newest first; red = the tasks' trunk gradients conflict)",
                                   sizing_mode="stretch_width"),
                      self.step_log, self.metrics, sizing_mode="stretch_width"),
            basis="420px", min_width=280, grow=3)
        body = pn.Column(self.notices, self.error, common.flex_row(controls, log, gap="16px"), plots,
                         common.explanation(EXPLANATION), sizing_mode="stretch_width")
        return common.page_layout(SLUG, pn.pane.HTML("<h2>The training loop, step by step</h2>",
                                                     sizing_mode="stretch_width"), body, query=self.query)


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, the step log."""
    state = TrainingLoopState()
    notices = common.bind_url(state, SETTINGS, query)
    view = TrainingLoopView(state, notices=notices, query=query)
    state.running = autoplay
    view.animator.start()
    return view


if __name__.startswith("bokeh"):
    create_page().servable(title="The Training Loop - MTL Playground")

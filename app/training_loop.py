"""Page 4, "The Training Loop": the whole multi-task step — loss weighting + gradient combination — one step at a
time, with a live log of losses, weights, the gradient cosine and whether PCGrad had to project.

One ``mtl_core.Trainer`` drives a shared-trunk ``MultiTaskNet`` on either two related classification tasks or a
regression + classification pair whose losses differ by four orders of magnitude.

The state (settings, net, trainer, plot data) is ``app.training_loop_state.TrainingLoopState``; this
module is the view.

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

if __name__.startswith("bokeh"):  # `panel serve app/training_loop.py` puts app/, not the checkout, on sys.path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import panel as pn
from bokeh.models import Span

from app import common
from app.training_loop_state import SETTINGS, TrainingLoopState

SLUG = "training_loop"
TASK_COLORS = ("#2a6fb0", "#c2410c")


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.1e}"


def render_log(state: TrainingLoopState) -> str:
    """The step log as an HTML table (all values are numbers or task names, escaped anyway)."""
    names = [common.escape(t) for t in state.task_names]
    head = (
        "<tr><th>step</th>"
        + "".join(f"<th>L<sub>{n}</sub></th>" for n in names)
        + "".join(f"<th>w<sub>{n}</sub></th>" for n in names)
        + "<th>cos</th><th>projected?</th></tr>"
    )
    body = []
    pcgrad = state.combiner == "pcgrad"
    for r in state.log_rows():
        proj = ("yes" if r["projected"] else "no") if pcgrad else "-"
        style = ' style="background:#fde2e1"' if r["cosine"] < 0 else ""
        body.append(
            f"<tr{style}><td>{r['step']}</td><td>{_fmt(r['loss_0'])}</td><td>{_fmt(r['loss_1'])}</td>"
            f"<td>{_fmt(r['weight_0'])}</td><td>{_fmt(r['weight_1'])}</td><td>{r['cosine']:+.2f}</td>"
            f"<td>{proj}</td></tr>"
        )
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
   lifts the worst task's improvement. *Nash-MTL*, *IMTL-G*, *FairGrad* and *Aligned-MTL* weigh the g_k by their
   directions rather than their sizes (Nash-MTL: (G Gᵀ) α = 1/α; IMTL-G: equal projections on every unit
   gradient; FairGrad: (G Gᵀ) w = w^(−1/α) with α = 2; Aligned-MTL: the weights that whiten G Gᵀ), so a loss
   that is large only decides the direction by its size no more. On this small net the test metrics differ by a
   few points at most — compare them — and the Gradient Conflict Arena draws each method in two dimensions.
5. **Update.** Adam moves the trunk along d; each head is updated with its own task's gradient only.

Try the scale-mismatch problem with *equal* weights: the regression loss is ~10,000× the other, so it owns the
trunk. Switch to uncertainty weighting and watch the weights separate by orders of magnitude (log axis).
"""


class TrainingLoopView(common.TrainingView):
    """Widgets, plots, step log and the live-training loop around a :class:`TrainingLoopState`."""

    slug, heading, settings, throttled = SLUG, "The training loop, step by step", SETTINGS, True

    def _add_panes(self) -> None:
        self.metrics = common.named_html("metrics")
        self.step_log = common.named_html("step_log", stylesheets=[LOG_CSS])
        # "status", not "steps": the status line changes once per tick (and on every reset, Step, pause), while
        # "steps" changes at every step of a tick and would redraw the log table that many times
        self.state.param.watch(self._refresh_text, ["status", "error", "scores", "problem"])
        self._refresh_text()

    def _refresh_text(self, *_events) -> None:
        s = self.state
        self.metrics.object = "".join(f"<div>{common.escape(line)}</div>" for line in s.score_lines())
        self.step_log.object = render_log(s)
        self.widgets["relatedness"].disabled = s.problem != "related"

    # ------------------------------------------------------------------ plots
    def _figure(self, name: str, title: str, **kw):
        return common.step_figure(name, title, **kw)

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
            weight.line("step", f"weight_{k}", source=src, color=color, line_width=2, legend_label=f"task {k + 1}")
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
            for item, name in zip(fig.legend[0].items, names, strict=False):
                item.label = {"value": f"task {name}"}

    def __panel__(self):
        loss, weight, cos = self._plots()
        self.state.param.watch(lambda _e: self._name_legends(self.state.task_names), "problem")
        plots = common.plot_grid(loss, weight, cos)
        log_title = pn.pane.HTML(
            "<b>Step log</b> (newest first; red = the tasks' trunk gradients conflict)", sizing_mode="stretch_width"
        )
        return self.training_body([log_title, self.step_log, self.metrics], plots, explanation_text=EXPLANATION)


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, the step log."""
    return common.create_page(TrainingLoopState, TrainingLoopView, SETTINGS, query, autoplay=autoplay)


if __name__.startswith("bokeh"):
    create_page().servable(title="The Training Loop - MTL Playground")

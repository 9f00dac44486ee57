"""Page 3, "Loss-Weighting Lab": the same network trained side by side with different loss weightings.

Two data settings:

* **Scale mismatch** (``mtl_core.data.make_scale_mismatch``): a regression task "value" whose target is
  ``10^k`` times a signal, and a classification task "label" read off the same signal, on the same rows. The
  regression's MSE is ~10^(2k) times the classification's cross-entropy, so with equal weights it owns the
  shared trunk's gradient.
* **Unequal sizes** (``mtl_core.data.make_unequal_tasks``): two related classification tasks with separate
  datasets, "big" (1000 rows) and "small" (``n_small`` rows). Each batch row comes from one task's dataset,
  drawn by a temperature sampler (``mtl_core.sampling.TaskSampler``) with ``P(task k) ∝ n_k^alpha``.

* **Your own data**: an uploaded CSV ``x…,y_reg,y_cls`` (any number of input columns, a regression target and a
  0/1 class, empty target cells = missing labels), kept in the browser tab only (``sessionStorage``: a reload of
  the tab trains on it again; the URL says ``data=custom``).

Each chosen weighting method (equal, uncertainty, GradNorm, DWA) trains its own copy of the same network (same
initial weights, same batches) with ``mtl_core.trainer.Trainer``; curves are drawn live from a periodic
callback. A missing-label fraction hides that share of each task's training labels (masked losses).

The state (settings, data, runs, plot data) is ``app.weighting_lab_state.WeightingLabState``; this
module is the view.

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the browser / static-site tests):

    methods, data, scale_log10, missing, alpha, n_small, optimizer, lr, seed   the settings widgets
    train_button, pause_button, step_button, reset_button
    status          Div: "step 120 / 1000 - training" etc.
    error           Div: divergence message (empty when fine)
    summary         Div: latest test loss (and accuracy / RMSE) per method and task
    sampling_text   Div: the sampling rule and the probabilities it gives
    notices         Div: notices about clamped / ignored URL values (escaped)
    data_upload     FileInput: a CSV x…,y_reg,y_cls (Data = Your own data)
    data_summary    Div: the rows and labels the runs train on
    data_error      Div: why the last upload was refused (empty when it was not)
    reset_data_button   Button: forget one's own file, back to the generated data
    curves_equal, curves_uncertainty, curves_gradnorm, curves_dwa
                    ColumnDataSource per method: step, loss_0, loss_1 (test losses of task 0 / 1),
                    weight_0, weight_1 (loss weights), share_0 (share of task 0 in the weighted loss)
    sampling_source ColumnDataSource: task, size, prob (probabilities at the current alpha)
    sampling_curve  ColumnDataSource: alpha, p_0, p_1 (probabilities for alpha in [0, 1])
    sampling_marker ColumnDataSource: alpha, p (the current alpha's two probabilities)
    loss_figure_0, loss_figure_1, weight_figure, share_figure, sampling_figure   the Bokeh figures
"""

from __future__ import annotations

import pathlib
import sys

if __name__.startswith("bokeh"):  # `panel serve app/weighting_lab.py` puts app/, not the checkout, on sys.path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import panel as pn
from bokeh.models import Range1d

from app import common
from app.custom_data import MAX_ROWS, REG_CLS_LABELS
from app.settings import CUSTOM, bokeh_name
from app.weighting_lab_state import METHOD_LABELS, METHODS, N_BIG, SETTINGS, WeightingLabState

SLUG = "weighting_lab"
METHOD_COLORS = {"equal": "#444444", "uncertainty": "#1f77b4", "gradnorm": "#d62728", "dwa": "#2ca02c"}

EXPLANATION = """
### What you are looking at
Two tasks share one trunk. Training minimises a weighted sum L = w₁ L₁ + w₂ L₂, so the weights decide how hard
each task pulls on the shared layers. Every chosen method below trains its own copy of the **same** network
(same initial weights, same batches); only the weights differ.

* **Equal**: w₁ = w₂ = 1. Simple, but with a regression target 100× larger its MSE is ~10,000× the
  classification's cross-entropy, and the trunk's gradient is almost all regression.
* **Uncertainty** (Kendall et al.): learn a log-variance s_k per task and minimise Σ ½ e^(−s_k) L_k + ½ s_k.
  The optimum is e^(s_k) = L_k, so the weight ½ e^(−s_k) ≈ 1 / (2 L_k): a task with a large loss gets a small
  weight, which cancels the scale. Here each s_k starts at log L_k of the first batch: started at 0, the
  weights would sweep over four orders of magnitude in the first steps, and Adam, still remembering those early
  giant gradients, would all but freeze the regression.
* **GradNorm** (Chen et al.): adjust the weights so that the weighted gradient norms at the last shared layer,
  w_k ‖∇L_k‖, move towards their mean times r_k^α, where r_k is how slowly task k's loss falls relative to the
  others. Lagging tasks get pushed up; the weights always sum to 2.
* **DWA** (Liu et al.): w_k = 2 · softmax(r_k / T) with r_k = L_k(t−1) / L_k(t−2): a task whose loss stopped
  falling gets more weight. It looks at loss *ratios*, so it does not see the scales at all.

Watch the **share** plot: the part of the weighted loss that comes from the first task, w₁L₁ / (w₁L₁ + w₂L₂).
Near 100% means the second task hardly matters to the trunk.

**Missing labels.** Hide part of each task's training labels: every loss is a *masked* mean over the rows that
do have a label, L_k = Σ mᵢ ℓ(ŷᵢ, yᵢ) / Σ mᵢ, so missing rows simply do not count (test losses use all labels).

**Unequal sizes and task sampling.** When tasks come with separate datasets of n_k rows, each batch row is
drawn from task k with probability P(k) = n_k^α / Σ_j n_j^α. α = 1 is proportional to size (every example
equally likely; a 50-row task is almost never seen next to a 1000-row one), α = 0 is uniform (the small task
is seen as often as the big one and risks over-fitting); in between, the "temperature" T = 1/α trades the two.

**Your own data.** Upload a CSV whose header names input columns x1, x2, … (any number) and the two targets
`y_reg` (a number) and `y_cls` (0 or 1); an empty target cell is a missing label. The inputs are standardised, the
targets are not: their scales are what the weightings have to cope with. 30% of the rows are test rows.
"""
DATA_ERROR_STYLE = {
    "background": "#fde2e1",
    "border": "1px solid #d9534f",
    "border-radius": "4px",
    "padding": "0.3em 0.6em",
}


class WeightingLabView(common.TrainingView):
    """Widgets, plots and the live-training loop around a :class:`WeightingLabState`."""

    # throttled: every setting but lr starts a new run, so a slider sends its value once, when let go (a drag
    # through ten values would otherwise start ten runs and send the browser ten redraws of five figures)
    slug, heading, settings, pause_width, throttled = SLUG, "Loss-Weighting Lab", SETTINGS, 90, True

    def __init__(self, state, notices=(), query=None, **params):
        super().__init__(state, notices, query, **params)
        # kept in this browser tab: a reload trains on it again; data=custom in a link without it: the fallback
        common.keep_own_data(self, REG_CLS_LABELS)

    def _add_panes(self) -> None:
        self.summary = common.named_html("summary", styles={"font-size": "0.85em"})
        self.sampling_text = common.named_html("sampling_text", styles={"font-size": "0.85em"})
        self.state.param.watch(self._refresh_text, ["summary", "sampling_text"])
        self.state.param.watch(self._refresh_enabled, ["data"])
        self.state.param.watch(self._refresh_titles, ["data", "scale_log10", "n_small"])
        self.figures = {}
        self._refresh_text()
        self._refresh_enabled()
        self._data_panes()

    # ------------------------------------------------------------------ your own data
    def _data_panes(self) -> None:
        s = self.state
        self.upload = common.csv_upload(
            "CSV file: x…,y_reg,y_cls", s.load_csv, lambda message: s.param.update(data_error=message)
        )
        self.reset_data = bokeh_name(pn.widgets.Button(label="Reset to generated data"), "reset_data_button")
        self.reset_data.on_click(lambda _e: common._held(s.reset_to_generated))
        self.data_summary = common.named_html("data_summary", styles={"font-size": "0.85em"})
        self.data_error = common.named_html("data_error")
        s.param.watch(self._refresh_data, ["data_summary", "data_error", "data"])
        self._refresh_data()

    def _refresh_data(self, *_events) -> None:
        s = self.state
        self.data_summary.object = f"<div>{common.escape(s.data_summary)}</div>"
        self.data_error.object = f"<div>{common.escape(s.data_error)}</div>" if s.data_error else ""
        self.data_error.styles = DATA_ERROR_STYLE if s.data_error else {}
        self.reset_data.disabled = s.data != CUSTOM and s.custom is None

    def data_box(self) -> pn.Column:
        """The upload of one's own CSV, its summary or problem, and the way back to the generated data."""
        return pn.Column(
            pn.pane.HTML(
                "<b>Your own data</b>: a CSV with input columns <code>x1, x2, …</code> and the targets "
                f"<code>y_reg</code> (a number), <code>y_cls</code> (0 or 1); an empty cell = a missing label; at "
                f"most {MAX_ROWS:,} rows.",
                sizing_mode="stretch_width",
                styles={"font-size": "0.85em"},
            ),
            pn.FlexBox(self.upload, self.reset_data, gap="4px"),
            self.data_error,
            self.data_summary,
            sizing_mode="stretch_width",
            max_width=560,
        )

    def _refresh_text(self, *_events) -> None:
        s = self.state
        self.summary.object = "".join(f"<div>{common.escape(line)}</div>" for line in s.summary.splitlines())
        self.sampling_text.object = f"<div>{common.escape(s.sampling_text)}</div>"

    def _refresh_enabled(self, *_events) -> None:
        scale, unequal = self.state.data == "scale", self.state.data == "unequal"
        self.widgets["scale_log10"].disabled = not scale
        self.widgets["alpha"].disabled = not unequal
        self.widgets["n_small"].disabled = not unequal

    def _task_title(self, k: int) -> str:
        s = self.state
        name = s.task_names[k]
        if s.data == "scale":
            kind = f"regression ×{10**s.scale_log10:.4g}, MSE" if k == 0 else "classification, cross-entropy"
        elif s.data == CUSTOM:
            kind = "your regression, MSE" if k == 0 else "your classification, cross-entropy"
        else:
            kind = f"{s.sizes[name]} rows, cross-entropy"
        return f"Task '{name}' ({kind}): test loss"

    def _refresh_titles(self, *_events) -> None:
        for k in (0, 1):
            fig = self.figures.get(f"loss_{k}")
            if fig is not None:
                fig.title.text = self._task_title(k)
        fig = self.figures.get("share")
        if fig is not None:
            fig.title.text = f"Share of task '{self.state.task_names[0]}' in the weighted loss"

    # ------------------------------------------------------------------ plots
    def _curve_figure(self, name: str, title: str, *, log: bool = True, **kw):
        return common.step_figure(name, title, height=230, y_axis_type="log" if log else "linear", **kw)

    def _legend(self, fig, location="top_right") -> None:
        fig.legend.location = location
        fig.legend.label_text_font_size = "9px"
        fig.legend.background_fill_alpha = 0.6
        fig.legend.click_policy = "hide"
        fig.legend.spacing = 0
        fig.legend.padding = 3

    def _method_lines(self, fig, column: str, **kw) -> None:
        """One line of ``column`` per method, in the method's colour."""
        for m in METHODS:
            src = self.state.sources[f"curves_{m}"]
            fig.line(
                "step", column, source=src, color=METHOD_COLORS[m], line_width=2, legend_label=METHOD_LABELS[m], **kw
            )

    def _plots(self):
        s = self.state
        figs = {}
        for k in (0, 1):
            figs[f"loss_{k}"] = fig = self._curve_figure(f"loss_figure_{k}", self._task_title(k))
            self._method_lines(fig, f"loss_{k}")
            self._legend(fig)
        figs["weights"] = fig = self._curve_figure("weight_figure", "Loss weights (solid: first task, dashed: second)")
        self._method_lines(fig, "weight_0")
        self._method_lines(fig, "weight_1", line_dash="dashed")
        self._legend(fig, "bottom_left")
        figs["share"] = fig = self._curve_figure("share_figure", "", log=False, y_range=Range1d(-0.02, 1.02))
        self._method_lines(fig, "share_0")
        self._legend(fig, "bottom_left")
        fig = common.step_figure(
            "sampling_figure", "Sampling: P(task) ∝ n^α", height=230, tools="", x_range=(0, 1), y_range=(0, 1)
        )
        fig.xaxis.axis_label, fig.yaxis.axis_label = "α (0 = uniform, 1 = proportional)", "probability"
        fig.line(
            "alpha",
            "p_0",
            source=s.sources["sampling_curve"],
            color="#555555",
            line_width=2,
            legend_label=f"big ({N_BIG} rows)",
        )
        fig.line(
            "alpha", "p_1", source=s.sources["sampling_curve"], color="#e65100", line_width=2, legend_label="small"
        )
        fig.scatter("alpha", "p", source=s.sources["sampling_marker"], size=10, color="#ffd400", line_color="black")
        self._legend(fig, "center_right")
        figs["sampling"] = fig
        self.figures = figs
        self._refresh_titles()
        return figs

    def __panel__(self):
        figs = self._plots()
        # 2 x 2 on a wide screen, one column on a phone
        curves = common.plot_grid(*[figs[k] for k in ("loss_0", "loss_1", "weights", "share")])
        sampling = pn.Column(
            pn.pane.Bokeh(figs["sampling"], sizing_mode="stretch_width", max_width=560),
            self.sampling_text,
            sizing_mode="stretch_width",
        )
        return self.training_body([self.summary, self.data_box(), sampling], curves, explanation_text=EXPLANATION)


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, live training."""
    return common.create_page(WeightingLabState, WeightingLabView, SETTINGS, query, autoplay=autoplay)


if __name__.startswith("bokeh"):
    create_page().servable(title="Loss-Weighting Lab - MTL Playground")

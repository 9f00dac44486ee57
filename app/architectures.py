"""Page "Sharing architectures": separate nets, hard sharing with a movable branch point and cross-stitch units,
trained live side by side on the same pair of tasks.

Two binary tasks "a" and "b" label the same 2-D points (``mtl_core.data.make_related_classification``); the
relatedness slider turns task b's pattern away from task a's. Three models of the same depth learn both tasks
with the same data, batches and optimizer: ``SeparateNets``, ``branched_net`` (hard sharing of the first
``branch`` layers, one tower per task after them) and ``CrossStitchNet`` (one column per task, mixed after every
layer by a learned 2 x 2 matrix). The page shows each model's parameter count beside its test accuracy per task,
how much each task gains or loses against separate nets (asymmetric transfer), and the stitch matrices as they
train. "Your own data": a CSV ``x1,x2,label_a,label_b`` (the Shared vs Separate format; empty cell = missing
label) instead of the generated points, a quarter of its rows held out to score on.

The state is ``app.architectures_state.ArchitecturesState``; this module is the view.

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the tests):

    relatedness, branch, hidden, lr, n_samples, noise, seed, data     the settings widgets (.value / .active)
    data_upload       FileInput: a CSV x1,x2,label_a,label_b (empty cell = missing label)
    data_summary      Div: how many points and labels per task the models train on
    data_error        Div: why the last upload was refused (empty when it was not)
    reset_data_button Button: forget one's own file, back to the generated data
    train_button, pause_button, step_button, reset_button
    status, verdict, summary, notices, error     Divs (plain text / escaped HTML inside)
    acc_source        ColumnDataSource: step, {model}_{split}_{task} accuracies, model in (separate, hard,
                      stitch), split in (train, test), task in (a, b); e.g. acc_source.data["hard_test_b"]
    stitch_source     ColumnDataSource: the current stitch matrices, one row per entry (x, y, value, text, layer,
                      to, frm): layer l's entry "to reads from frm"
    stitch_history    ColumnDataSource: step, l{layer}_ab / l{layer}_ba (the off-diagonal entries over training)
    transfer_source   ColumnDataSource: x, gain (points, shared minus separate; NaN = no test score), color, text,
                      model, task, ty (where the text goes)
    arch_source       ColumnDataSource: the boxes of the hard-sharing diagram (left, right, bottom, top, label)
    arch_figure, acc_figure_a, acc_figure_b, transfer_figure, stitch_figure, stitch_history_figure
                      the Bokeh figures
"""

from __future__ import annotations

import math
import pathlib
import sys

if __name__.startswith("bokeh"):  # `panel serve app/architectures.py` puts app/, not the checkout, on sys.path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import panel as pn
from bokeh.models import FactorRange, LinearColorMapper, Span
from bokeh.plotting import figure

from app import common
from app.architectures_state import (
    DATA_KNOBS,
    DEPTH,
    MODEL_LABELS,
    MODELS,
    N_TEST,
    SETTINGS,
    TASK_LETTERS,
    ArchitecturesState,
    _points,
)
from app.custom_data import MAX_ROWS, TWO_TASK_LABELS
from app.settings import CUSTOM, bokeh_name

SLUG = "architectures"
COLORS = {"separate": "#b35900", "hard": "#1b7f79", "stitch": "#6a3d9a"}  # 4.5:1 on white at least: legend text
LAYER_COLORS = ("#8c96c6", "#3182bd", "#08306b")
STITCH_PALETTE = ["#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7", "#fddbc7", "#f4a582", "#d6604d", "#b2182b"]

EXPLANATION = f"""
### What you are looking at
Two yes/no tasks label the **same** 2-D points; task B's pattern is task A's turned by (1 − relatedness) × 45°.
Three networks with {DEPTH} hidden layers each learn both tasks from the same training points, with the same
batches and the same Adam optimiser minimising L = L_A + L_B, and are scored on 1000 fresh points:

* **separate nets** — each task has its own stack: ŷ_A = head_A(f_A(x)), ŷ_B = head_B(f_B(x)). Nothing is shared.
* **hard sharing, branching after layer b** — the first b layers are one stack both tasks read, h = f₁…f_b(x);
  after it each task has its own tower of the remaining {DEPTH} − b layers and its head, ŷ_t = head_t(g_t(h)).
  The shared weights θ move by Δθ = −η (g_A + g_B) with g_t = ∂L_t/∂θ: every update for one task also moves the
  features the other one reads. b = 0 is two separate nets; b = {DEPTH} shares everything but the heads.
* **cross-stitch** — each task keeps a whole column of its own, but after every layer l the two columns' outputs
  a_A, a_B are mixed before the next layer reads them:

  s_A = α_AA a_A + α_AB a_B,  s_B = α_BA a_A + α_BB a_B.

  The four α of each layer are learned with the weights (they start at α_AA = α_BB = 0.9, α_AB = α_BA = 0.1, so the
  columns start almost separate). α_AB near 0 means A ignores B's features at that layer; a large |α_AB| means A
  builds on them. The network learns *how much* to share, layer by layer, instead of you choosing a branch point.

**Parameters.** A dense layer from m inputs to n units has m·n + n parameters. Sharing a layer counts it once
instead of once per task, so moving the branch point up makes the hard-sharing model smaller; cross-stitch costs
the two columns plus 4 numbers per layer — slightly *more* than separate nets.

**Transfer, per task.** For each task t the bar is Δ_t = acc_t(shared model) − acc_t(separate nets), in points of
test accuracy. Transfer need not be symmetric: the task whose pattern is easier to learn from few labels can lend
its features to the other (Δ > 0 for that one) while being pulled away from its own best features (Δ < 0) —
"A helps B while B hurts A". Within ±1 point the difference is about the noise of a 1000-point test set.

**Where to branch.** Early layers compute simple features that most related tasks can use; late layers compute
task-specific ones. Sharing few layers (branching early) protects unrelated tasks from each other; sharing many
(branching late) pools the most evidence when the tasks really agree. Slide the relatedness down and try the
branch point at 0, 1, 2 and {DEPTH}: watch which task pays first, and whether cross-stitch's α move towards 0.

### Your own data
Upload a CSV with the header `x1,x2,label_a,label_b` (the format of Shared vs Separate: one point per row, labels
0 or 1, an empty cell for a missing label, at most {MAX_ROWS:,} rows) and all three models train on it instead of
the generated points. A missing label simply does not count in that task's loss (the losses are masked means), so
a task labelled on few rows can borrow from the other through whatever the model shares. A quarter of the rows are
held out to score the models on (the solid curves and the gains); inputs outside [−3.5, 3.5]² are standardised.
Relatedness, training points and label noise shape the generated data only, so they wait while your file is in
use. Your file stays in this browser tab (a reload of the tab brings it back): a link says `data=custom` but does not
carry it.
"""
GENERATED_LEGEND = f"solid = test ({N_TEST} fresh points), dashed = training points"
CUSTOM_LEGEND = "solid = your held-out rows (a quarter of the file), dashed = training rows"
DATA_ERROR_STYLE = {
    "background": "#fde2e1",
    "border": "1px solid #d9534f",
    "border-radius": "4px",
    "padding": "0.3em 0.6em",
}


def card_figure(name: str, title: str, height: int, **kw):
    """A fixed-height figure that fills its card's width: no tools unless asked, no toolbar, a small title."""
    kw.setdefault("tools", "")
    fig = figure(
        name=name, title=title, height=height, min_width=200, sizing_mode="stretch_width", toolbar_location=None, **kw
    )
    fig.title.text_font_size = "11px"
    return fig


class ArchitecturesView(common.TrainingView):
    """Widgets, plots and the live-training loop around an :class:`ArchitecturesState`."""

    slug, heading, settings, throttled = SLUG, "Sharing architectures: separate, hard, cross-stitch", SETTINGS, True

    def __init__(self, state, notices=(), query=None, **params):
        super().__init__(state, notices, query, **params)
        # kept in this browser tab: a reload trains on it again; data=custom in a link without it: the fallback
        common.keep_own_data(self, TWO_TASK_LABELS, ("x1", "x2"))

    def _add_panes(self) -> None:
        self.verdict = common.named_html("verdict")
        self.summary = common.named_html("summary")
        self.state.param.watch(self._refresh_verdict, ["verdict"])
        self.state.param.watch(self._refresh_summary, ["table"])
        self._refresh_verdict()
        self._refresh_summary()
        self._data_panes()

    # ------------------------------------------------------------------ your own data
    def _data_panes(self) -> None:
        s = self.state
        self.upload = common.csv_upload(
            "CSV file: x1,x2,label_a,label_b", s.load_csv, lambda message: s.param.update(data_error=message)
        )
        self.reset_data = bokeh_name(pn.widgets.Button(label="Reset to generated data"), "reset_data_button")
        self.reset_data.on_click(lambda _e: common._held(s.reset_to_generated))
        self.data_summary = common.named_html("data_summary", styles={"font-size": "0.85em"})
        self.data_error = common.named_html("data_error")
        self.curve_legend = pn.pane.HTML("", sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        s.param.watch(self._refresh_data, ["data_summary", "data_error", "data"])
        self._refresh_data()

    def _refresh_data(self, *_events) -> None:
        s = self.state
        custom = s.data == CUSTOM
        self.data_summary.object = f"<div>{common.escape(s.data_summary)}</div>"
        self.data_error.object = f"<div>{common.escape(s.data_error)}</div>" if s.data_error else ""
        self.data_error.styles = DATA_ERROR_STYLE if s.data_error else {}
        for name in DATA_KNOBS:
            self.widgets[name].disabled = custom
        self.reset_data.disabled = not custom and s.custom is None
        self.curve_legend.object = "".join(
            f'<span style="color:{COLORS[m]}"><b>&#9473;&#9473;</b> {MODEL_LABELS[m]}</span> &nbsp; ' for m in MODELS
        ) + (CUSTOM_LEGEND if custom else GENERATED_LEGEND)

    def controls(self, *widgets) -> pn.Column:
        # the Data choice sits with the upload, below the models' table
        return super().controls(*(widgets or [w for k, w in self.widgets.items() if k != "data"]))

    def data_box(self) -> pn.Column:
        """The "Your own data" controls: the Data choice, the way back, the upload, its problem or summary."""
        return pn.Column(
            pn.pane.HTML("<b>Your own data</b>", sizing_mode="stretch_width", margin=(10, 5, 0, 5)),
            pn.FlexBox(self.widgets["data"], self.reset_data, gap="4px"),
            pn.pane.HTML(
                "Upload a CSV: header <code>x1,x2,label_a,label_b</code>, labels 0 or 1, an empty cell for a missing "
                f"label; at most {MAX_ROWS:,} rows.",
                sizing_mode="stretch_width",
                styles={"font-size": "0.85em"},
            ),
            self.upload,
            self.data_error,
            self.data_summary,
            sizing_mode="stretch_width",
            max_width=560,
        )

    def _refresh_verdict(self, *_events) -> None:
        self.verdict.object = "".join(f"<div>{common.escape(line)}</div>" for line in self.state.verdict.splitlines())

    def _refresh_summary(self, *_events) -> None:
        self.summary.object = summary_html(self.state.table, TASK_LETTERS)

    # ------------------------------------------------------------------ plots
    def _arch_figure(self):
        fig = card_figure(
            "arch_figure", "Hard sharing as wired now", 230, x_range=(-0.05, 2.05), y_range=(-0.05, DEPTH + 2.05)
        )
        src = self.state.sources["arch"]
        fig.quad(left="left", right="right", bottom="bottom", top="top", color="color", source=src, line_color="#555")
        fig.text(
            x="lx", y="ly", text="label", source=src, text_align="center", text_baseline="middle", text_font_size="10px"
        )
        fig.axis.visible = False
        fig.grid.visible = False
        return fig

    def _acc_figure(self, task: str, letter: str):
        fig = common.step_figure(f"acc_figure_{task}", f"Task {letter}: accuracy")
        src = self.state.sources["acc"]
        styles = {"test": ("solid", 2.0), "train": ("dashed", 1.2)}
        for m, split in ((m, split) for m in MODELS for split in styles):
            dash, width = styles[split]
            fig.line("step", f"{m}_{split}_{task}", source=src, color=COLORS[m], line_dash=dash, line_width=width)
        return fig

    def _transfer_figure(self):
        factors = self.state.sources["transfer"].data["x"]  # filled at reset, the same for every run
        fig = card_figure(
            "transfer_figure", "Gain over separate nets (points of test accuracy)", 230, x_range=FactorRange(*factors)
        )
        src = self.state.sources["transfer"]
        fig.vbar(x="x", top="gain", width=0.7, color="color", source=src)
        fig.text(x="x", y="ty", text="text", source=src, text_align="center", text_font_size="10px", y_offset=-2)
        fig.add_layout(Span(location=0, dimension="width", line_color="black"))
        fig.y_range.range_padding = 0.3  # room for the value written on the tallest bar
        fig.xaxis.major_label_orientation = 0.5
        fig.xaxis.major_label_text_font_size = "9px"
        return fig

    def _stitch_figure(self):
        fig = card_figure(
            "stitch_figure",
            "Cross-stitch matrices now (row = reads, column = from)",
            170,
            x_range=(-0.6, 3 * DEPTH - 1.4),
            y_range=(-0.6, 1.6),
            tools="hover",
            tooltips=[("layer", "@layer"), ("", "@to reads @frm: @text")],
        )
        mapper = LinearColorMapper(palette=STITCH_PALETTE, low=-1.5, high=1.5)
        src = self.state.sources["stitch"]
        fig.rect(x="x", y="y", width=0.95, height=0.95, source=src, fill_color={"field": "value", "transform": mapper})
        fig.text(
            x="x", y="y", text="text", source=src, text_align="center", text_baseline="middle", text_font_size="11px"
        )
        fig.xaxis.ticker = [3 * l + 0.5 for l in range(DEPTH)]
        fig.xaxis.major_label_overrides = {3 * l + 0.5: f"layer {l + 1}: from A | from B" for l in range(DEPTH)}
        fig.yaxis.ticker = [0, 1]
        fig.yaxis.major_label_overrides = {1: "A reads", 0: "B reads"}
        fig.grid.visible = False
        return fig

    def _stitch_history_figure(self):
        fig = common.step_figure(
            "stitch_history_figure", "Cross-stitch: α_AB (solid) and α_BA (dashed) per layer", height=200
        )
        src = self.state.sources["stitch_history"]
        for col in (c for c in src.data if c != "step"):  # l{layer}_ab, l{layer}_ba
            layer, dash = int(col[1:].split("_")[0]), "solid" if col.endswith("_ab") else "dashed"
            color = LAYER_COLORS[layer % len(LAYER_COLORS)]
            fig.line(
                "step", col, source=src, color=color, line_dash=dash, line_width=2, legend_label=f"layer {layer + 1}"
            )
        fig.add_layout(Span(location=0, dimension="width", line_color="black", line_dash="dotted"))
        common.legend_above(fig)
        return fig

    def __panel__(self):
        figures = common.flex_row(
            common.flex_item(
                pn.pane.Bokeh(self._arch_figure(), sizing_mode="stretch_width"), basis="35%", min_width=200
            ),
            common.flex_item(pn.pane.Bokeh(self._transfer_figure(), sizing_mode="stretch_width"), basis="55%"),
        )
        letters = zip(TASK_LETTERS, self.state.task_names, strict=True)
        return self.training_body(
            [self.verdict, self.summary, figures, self.data_box()],
            self.curve_legend,
            common.plot_grid(*[self._acc_figure(t, letter) for letter, t in letters]),
            common.plot_grid(self._stitch_figure(), self._stitch_history_figure()),
            explanation_text=EXPLANATION,
        )


def summary_html(table: list[dict], letters=TASK_LETTERS) -> str:
    """The models' table: parameters (shared / total) beside the test accuracy and the gain per task."""
    if not table:
        return ""
    tasks = [k[len("acc_") :] for k in table[0] if k.startswith("acc_")]
    head = "".join(f"<th>task {letter}</th>" for letter in letters[: len(tasks)])
    rows = []
    for row in table:
        cells = []
        for t in tasks:
            gain, acc = row.get(f"gain_{t}"), row[f"acc_{t}"]
            extra = "" if gain is None or not math.isfinite(gain) else f" <small>({_points(gain)})</small>"
            # no score: no held-out point has a label for this task (one's own data)
            cells.append(f"<td>{acc:.1f}%{extra}</td>" if math.isfinite(acc) else "<td>no score</td>")
        size = f"{row['shared']:,} / {row['params']:,}"
        rows.append(f"<tr><td>{common.escape(row['label'])}</td><td>{size}</td>{''.join(cells)}</tr>")
    return (
        '<table style="border-collapse:collapse;font-size:0.9em" cellpadding="3">'
        f"<tr><th>model</th><th>parameters shared / all</th>{head}</tr>{''.join(rows)}</table>"
        "<div style='font-size:0.8em;color:#555'>test accuracy per task (in brackets: points gained over separate "
        "nets)</div>"
    )


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, live training."""
    return common.create_page(ArchitecturesState, ArchitecturesView, SETTINGS, query, autoplay=autoplay)


if __name__.startswith("bokeh"):
    create_page().servable(title="Sharing architectures - MTL Playground")

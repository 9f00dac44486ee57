"""Page 1, "Shared vs Separate": one shared trunk for two tasks against two separate networks, trained live.

Two binary tasks "a" and "b" label the same 2-D points (``mtl_core.data.make_related_classification``); the
relatedness slider rotates task b's pattern away from task a's. A hard-sharing ``MultiTaskNet`` and a
``SeparateNets`` pair train side by side on the same data with the same optimizer, and the page shows who
generalises better, and the cosine between the two tasks' trunk gradients (negative transfer made visible).

The state (settings, models, training, plot data) is ``app.shared_separate_state.SharedSeparateState``; this
module is the view.

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the static-site tests):

    relatedness, hidden, lr, n_samples, noise, seed, data    the settings widgets (Slider / Spinner / radio models)
    edit_data       Toggle: Edit data mode (a click on a map adds a point, a shift-click removes the nearest)
    edit_task, edit_label, remove_mode    what a click adds (radio groups), Remove mode (Toggle, for touch screens)
    reset_data_button   Button: forget one's own data, back to the generated data
    data_upload     FileInput: a CSV x1,x2,label_a,label_b (empty cell = missing label)
    data_summary    Div: how many points and labels per task the page trains on
    data_error      Div: why the last upload / edit was refused (empty when it was not)
    train_button, pause_button, step_button, reset_button
    status          Div: "step 120 / 1000 - training" etc. (plain text inside)
    verdict         Div: the plain-words verdict per task
    notices         Div: notices about clamped / ignored URL values (escaped HTML)
    error           Div: the divergence / internal-error message (empty while all is well)
    acc_source      ColumnDataSource: step, {model}_{split}_{task} accuracies, model in (shared, separate),
                    split in (train, test), task in (a, b); e.g. acc_source.data["shared_test_a"]
    loss_source     ColumnDataSource: same columns with losses
    cosine_source   ColumnDataSource: step, cosine (per-step trunk-gradient cosine), smooth (running mean)
    points_source   ColumnDataSource: the points on the maps (x0, x1, and per task t: color_t = the label's colour,
                    grey for no label; fill_t, line_t = the marker's fill and outline: hollow = held out)
    heat_shared_a, heat_shared_b, heat_separate_a, heat_separate_b
                    ColumnDataSource of each decision-boundary image (image, x, y, dw, dh)
    boundary_shared_a ... boundary_separate_b, acc_figure_a, acc_figure_b, loss_figure_a, loss_figure_b,
    cosine_figure   the Bokeh figures
"""

from __future__ import annotations

import pathlib
import sys

if __name__.startswith("bokeh"):  # `panel serve app/shared_separate.py` puts app/, not the checkout, on sys.path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import panel as pn
from bokeh.events import DoubleTap, Tap
from bokeh.models import LinearColorMapper, Span

from app import common
from app.custom_data import TWO_TASK_LABELS
from app.settings import CUSTOM, bokeh_name
from app.shared_separate_state import EXTENT, MODELS, N_TEST, SETTINGS, TASK_LETTERS, SharedSeparateState

SLUG = "shared_separate"
MODEL_LABELS = {"shared": "shared trunk", "separate": "separate nets"}
COLORS = {"shared": "#1b7f79", "separate": "#b35900"}  # 4.5:1 on white at least: legend text
HEAT_PALETTE = ["#a9c4ea", "#bcd0ee", "#cfdcf2", "#e1e8f6", "#f2f2f2", "#f6e1df", "#f2cbc6", "#eeb5ae", "#e99f96"]

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

### Your own data
**Edit data** starts from the points on the maps: click a map to add a point with the chosen task(s) and label,
shift-click (or switch on Remove mode) to remove the nearest point; both models retrain at once. Give a point a
label for one task only to see what the other task's labels do for it through the shared trunk. Or upload a CSV
with the header `x1,x2,label_a,label_b`, one point per row, labels 0 or 1, an empty cell for a missing label
(at most 5,000 rows); a quarter of its rows are held out (hollow dots) to score the models on. Your points stay in
this browser tab only (a reload of the tab brings them back): a link says `data=custom` but does not carry them.
"""
GENERATED_LEGEND = f"solid = test ({N_TEST} fresh points), dashed = training points"
CUSTOM_LEGEND = "solid = held-out points (hollow on the maps), dashed = training points"
DATA_ERROR_STYLE = {
    "background": "#fde2e1",
    "border": "1px solid #d9534f",
    "border-radius": "4px",
    "padding": "0.3em 0.6em",
}


class SharedSeparateView(common.TrainingView):
    """Widgets, plots and the live-training loop around a :class:`SharedSeparateState`."""

    slug, heading, settings, throttled = SLUG, "Shared trunk vs separate networks", SETTINGS, True

    def __init__(self, state, notices=(), query=None, **params):
        super().__init__(state, notices, query, **params)
        # kept in this browser tab: a reload trains on it again; data=custom in a link without it: the fallback
        common.keep_own_data(self, TWO_TASK_LABELS, ("x1", "x2"))

    def _add_panes(self) -> None:
        s = self.state
        self.verdict = common.named_html("verdict")
        s.param.watch(self._refresh_text, ["verdict"])
        self._refresh_text()
        self._data_panes()

    def _refresh_text(self, *_events) -> None:
        self.verdict.object = "".join(f"<div>{common.escape(line)}</div>" for line in self.state.verdict.splitlines())

    # ------------------------------------------------------------------ your own data
    def _data_panes(self) -> None:
        s = self.state
        self.edit_toggle = bokeh_name(pn.widgets.Toggle.from_param(s.param.editing, label="✎ Edit data"), "edit_data")
        self.edit_task = bokeh_name(
            pn.widgets.RadioButtonGroup.from_param(
                s.param.edit_task, options={"Both tasks": "both", "Task A": "a", "Task B": "b"}, name=""
            ),
            "edit_task",
        )
        self.edit_label = bokeh_name(
            pn.widgets.RadioButtonGroup.from_param(s.param.edit_label, options={"label 0": 0, "label 1": 1}, name=""),
            "edit_label",
        )
        self.remove_toggle = bokeh_name(
            pn.widgets.Toggle.from_param(s.param.remove_mode, label="Remove mode"), "remove_mode"
        )
        self.reset_data = bokeh_name(pn.widgets.Button(label="Reset to generated data"), "reset_data_button")
        self.reset_data.on_click(lambda _e: common._held(s.reset_to_generated))
        self.upload = common.csv_upload(
            "CSV file: x1,x2,label_a,label_b", s.load_csv, lambda message: s.param.update(data_error=message)
        )
        self.edit_hint = pn.pane.HTML(
            "Click a map to add a point; shift-click (or Remove mode) removes the nearest point.",
            styles={"font-size": "0.85em"},
            sizing_mode="stretch_width",
        )
        self.data_summary = common.named_html("data_summary", styles={"font-size": "0.85em"})
        self.data_error = common.named_html("data_error")
        self.curve_legend = pn.pane.HTML("", sizing_mode="stretch_width", styles={"font-size": "0.85em"})
        s.param.watch(self._refresh_data, ["data_summary", "data_error", "editing", "data"])
        self._refresh_data()

    def _refresh_data(self, *_events) -> None:
        s = self.state
        custom = s.data == CUSTOM
        self.data_summary.object = f"<div>{common.escape(s.data_summary)}</div>"
        self.data_error.object = f"<div>{common.escape(s.data_error)}</div>" if s.data_error else ""
        self.data_error.styles = DATA_ERROR_STYLE if s.data_error else {}
        for w in (self.edit_task, self.edit_label, self.remove_toggle, self.edit_hint):
            w.visible = s.editing
        for name in ("relatedness", "n_samples", "noise"):  # they shape the generated data only
            self.widgets[name].disabled = custom
        self.reset_data.disabled = not custom and s.custom is None
        self.curve_legend.object = (
            f'<span style="color:{COLORS["shared"]}"><b>&#9473;&#9473;</b> shared trunk</span> &nbsp; '
            f'<span style="color:{COLORS["separate"]}"><b>&#9473;&#9473;</b> separate nets</span> &nbsp; '
            + (CUSTOM_LEGEND if custom else GENERATED_LEGEND)
        )

    def _on_tap(self, event) -> None:
        modifiers = getattr(event, "modifiers", None) or {}
        x, y, shift = event.x, event.y, bool(modifiers.get("shift"))

        def click() -> None:
            # the new run's data, curves and maps reach the browser as one update; the Data choice, the URL and the
            # settings one's own data disables change after the hold in the worker (common.page_hold)
            with common.page_hold():
                self.state.click(x, y, shift=shift)

        common.after_pending_changes(click)  # in the mode (Remove mode, task, label) the reader chose before it

    def controls(self, *widgets) -> pn.Column:
        # the Data choice sits with the other data controls, below the maps
        return super().controls(*(widgets or [w for k, w in self.widgets.items() if k != "data"]))

    def data_box(self) -> pn.Column:
        """The "Your own data" controls: the Data choice, Edit data and its choices, the upload, the summary."""
        return pn.Column(
            pn.pane.HTML("<b>Your own data</b>", sizing_mode="stretch_width", margin=(10, 5, 0, 5)),
            pn.FlexBox(self.widgets["data"], self.edit_toggle, self.reset_data, gap="4px"),
            pn.FlexBox(self.edit_task, self.edit_label, self.remove_toggle, gap="4px"),
            self.edit_hint,
            pn.pane.HTML(
                "Upload a CSV: header <code>x1,x2,label_a,label_b</code>, labels 0 or 1, an empty cell for a missing "
                "label.",
                sizing_mode="stretch_width",
                styles={"font-size": "0.85em"},
            ),
            self.upload,
            self.data_error,
            self.data_summary,
            sizing_mode="stretch_width",
            max_width=560,
        )

    # ------------------------------------------------------------------ plots
    def _boundary_figure(self, model: str, task: str, letter: str):
        title = f"Task {letter} — {MODEL_LABELS[model]}"
        fig = common.square_figure(
            f"boundary_{model}_{task}", title, EXTENT, 230, min_width=130, sizing_mode="scale_width"
        )
        mapper = LinearColorMapper(palette=HEAT_PALETTE, low=0.0, high=1.0)
        fig.image(
            image="image",
            x="x",
            y="y",
            dw="dw",
            dh="dh",
            color_mapper=mapper,
            source=self.state.sources[f"heat_{model}_{task}"],
        )
        fig.scatter(
            "x0",
            "x1",
            size=5,
            fill_color=f"fill_{task}",
            line_color=f"line_{task}",
            line_width=0.8,
            source=self.state.sources["points"],
        )
        fig.axis.visible = False
        fig.grid.visible = False
        fig.title.text_font_size = "11px"
        # Edit data: add / remove a point (the state ignores clicks otherwise). BokehJS reports a second click within
        # 300 ms of the last one on the same figure as a DoubleTap, not a Tap: a quick reader's second point too
        for event in (Tap, DoubleTap):
            fig.on_event(event, self._on_tap)
        return fig

    def _curve_figure(self, metric: str, task: str, letter: str):
        label = "accuracy" if metric == "acc" else "loss (cross-entropy)"
        fig = common.step_figure(f"{metric}_figure_{task}", f"Task {letter}: {label}")
        src = self.state.sources[metric]
        for m in MODELS:
            for split, dash in (("test", "solid"), ("train", "dashed")):
                fig.line(
                    "step",
                    f"{m}_{split}_{task}",
                    source=src,
                    color=COLORS[m],
                    line_dash=dash,
                    line_width=2 if split == "test" else 1.3,
                )
        return fig

    def _cosine_figure(self):
        fig = common.step_figure(
            "cosine_figure",
            "cos(g_A, g_B): do the tasks agree on the trunk?",
            height=200,
            tools="",
            y_range=(-1.05, 1.05),
        )
        src = self.state.sources["cosine"]
        fig.line("step", "cosine", source=src, color="#999999", line_width=1, legend_label="each step")
        fig.line("step", "smooth", source=src, color="#6a3d9a", line_width=2.5, legend_label="running mean")
        fig.add_layout(Span(location=0, dimension="width", line_color="black", line_dash="dotted"))
        common.legend_above(fig)
        return fig

    def __panel__(self):
        letters = list(zip(TASK_LETTERS, self.state.task_names, strict=True))
        # 2 x 2 maps (rows = tasks, columns = models) that scale with the width: square on a phone too
        boundaries = common.flex_row(
            *[
                common.flex_item(
                    pn.pane.Bokeh(self._boundary_figure(m, t, letter), sizing_mode="scale_width"),
                    basis="40%",
                    min_width=140,
                )
                for letter, t in letters
                for m in MODELS
            ],
            gap="4px",
            max_width=560,
        )
        points_legend = pn.pane.HTML(
            '<span style="color:#3b6fb6">&#9679;</span> label 0 &nbsp; '
            '<span style="color:#c0392b">&#9679;</span> label 1 (training points; hollow: held out, grey: no '
            "label for that task); background: the model's probability of label 1 on the map",
            sizing_mode="stretch_width",
            styles={"font-size": "0.85em"},
        )
        figs = [self._curve_figure(metric, t, letter) for metric in ("acc", "loss") for letter, t in letters]
        curves = common.plot_grid(*figs, self._cosine_figure())
        main = [self.verdict, boundaries, points_legend, self.data_box()]
        return self.training_body(main, self.curve_legend, curves, explanation_text=EXPLANATION)


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, live training."""
    return common.create_page(SharedSeparateState, SharedSeparateView, SETTINGS, query, autoplay=autoplay)


if __name__.startswith("bokeh"):
    create_page().servable(title="Shared vs Separate - MTL Playground")

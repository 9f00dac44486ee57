"""Page "Auxiliary tasks and evaluation": a main task with few labels, helped (or not) by a cheap auxiliary task.

A binary main task is labelled on a few of the training rows; an auxiliary task (``mtl_core.data.
make_main_and_auxiliary``: the main pattern turned by (1 - relatedness) x 45 degrees, as a yes/no label or a
numeric score) is labelled on every row. Three runs train live from the same trunk initialisation: main +
auxiliary (a ``MultiTaskNet`` whose auxiliary head is trained, then left out of evaluation), the main task alone
and the auxiliary task alone (the single-task baselines of Δm). Options: deep supervision (the auxiliary head on
hidden layer 1), L2 and dropout in every run, a curriculum (the main task joins at step k). An evaluation table
scores every task of every run with ``mtl_core.metrics``; a sweep trains one trunk on 1..6 related tasks and plots
the first task's test-minus-train error; a card works through the two-head exercise and its broadcasting bug.
"Your own data": a CSV ``x1,x2,main,aux`` (an empty main cell = a row without a main label) instead of the
generated rows, a quarter of its main-labelled rows and of the others held out to score on.

The state is ``app.auxiliary_state.AuxiliaryState``; this module is the view.

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the browser / static-site tests):

    relatedness, main_labels, aux_kind, deep, l2, dropout, main_from, n_tasks, alpha, flatten_bug, seed, data
                    the settings widgets
    data_upload     FileInput: a CSV x1,x2,main,aux (empty main cell = unlabelled row)
    data_summary    Div: the rows and labels the runs train on and are scored on
    data_error      Div: why the last upload (or Auxiliary target) was refused (empty when it was not)
    reset_data_button   Button: forget one's own file, back to the generated data
    train_button, pause_button, step_button, reset_button, sweep_button
    status, sweep_status   Div: "Step 120 / 400 - training", "Sweep: 2 of 6 task counts - running"
    summary         Div: the main task's test accuracy with and without the auxiliary task, the gain
    eval_table      Div: the evaluation table (HTML) and Δm
    two_head_text   Div: the two-head numbers, the (N, N) matrix of the bug, mtl_core's refusal
    notices, error  Div: URL notices; divergence / internal error
    curves_source   ColumnDataSource: step, with_test, alone_test, with_train, alone_train (main-task accuracies),
                    gain (with_test - alone_test, in points)
    eval_source     ColumnDataSource (the state's, drawn as the eval_table Div, not sent to the browser): model,
                    task, counted, accuracy, f1, ece, rmse, mae (NaN where n/a)
    sweep_source    ColumnDataSource: n_tasks, gap, test_error, train_error (percent)
    two_head_source ColumnDataSource: term (L, L_a, L_b), right, wrong (NaN unless flatten_bug)
    accuracy_figure, gain_figure, sweep_figure, two_head_figure   the Bokeh figures
"""

from __future__ import annotations

import pathlib
import sys

if __name__.startswith("bokeh"):  # `panel serve app/auxiliary.py` puts app/, not the checkout, on sys.path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np
import panel as pn
from bokeh.models import Range1d, Span
from bokeh.transform import dodge

from app import common
from app.auxiliary_state import DATA_KNOBS, METRICS, N_TEST, SETTINGS, SWEEP_ROWS, AuxiliaryState
from app.custom_data import MAX_ROWS, MAIN_AUX_LABELS
from app.settings import CUSTOM, bokeh_name

SLUG = "auxiliary"
COLORS = {"with": "#1b7f79", "alone": "#d9730d", "gap": "#6a3d9a", "test": "#888888"}
LIVE_SETTINGS = ("relatedness", "main_labels", "aux_kind", "deep", "l2", "dropout", "main_from", "seed")
METRIC_LABELS = {"accuracy": "accuracy", "f1": "F1", "ece": "ECE", "rmse": "RMSE", "mae": "MAE"}

EXPLANATION = f"""
### What you are looking at
The **main task** is a yes/no pattern on 2-D points with only a few labelled training rows. The **auxiliary
task** is cheap: every training row has a label for it. Its pattern is the main one turned by
(1 − relatedness) × 45°, given as a yes/no label or as the numeric score s(x) whose sign is that label. The
network with both tasks minimises

  L = w_main L_main + w_aux L_aux (+ ½ λ ‖W‖² with L2),

and its auxiliary head is trained but **left out of evaluation**: only the main task is scored and compared.
The baselines are single-task networks with the same trunk and the same start: the main task alone, and the
auxiliary task alone. When the two patterns agree, the auxiliary labels shape the shared hidden layers into the
features the main task needs, and its test accuracy rises above the baseline with no extra main labels; slide the
relatedness down and the help fades, then turns into harm (negative transfer).

* **Deep supervision** attaches the auxiliary head to hidden layer 1 rather than the last one: a low-level task
  supervises the early layer and leaves the upper layer to the main task.
* **L2 and dropout** are extra objectives of a kind: ½ λ ‖W‖² is a "task" that wants small weights, and dropout
  asks every unit to be useful on its own. They apply to every run, so the gain shown is the auxiliary task's.
* **Curriculum**: with k > 0 the main task's weight is 0 until step k (w_main = 0, w_aux = 1), then 1: the trunk
  first learns from the plentiful auxiliary labels.

**Evaluate every task on its own.** A summed training loss mixes scales and tasks and says nothing about
calibration. The table scores each task of each run on 1000 fresh rows: accuracy, F1, ECE (expected calibration
error, Σ_b (|B_b|/N) |acc(B_b) − conf(B_b)| over confidence bins) for labels, RMSE and MAE for scores. Δm, the
mean relative improvement over the single-task baselines,

  Δm = (100 / K) Σ_k mean_m (−1)^(l_m) (M_multi,k,m − M_single,k,m) / M_single,k,m   (l_m = 1 where lower is
  better),

is computed over the evaluated tasks only (the main task); the second value counts the auxiliary too.

**More tasks regularise the trunk.** Baxter (1997) showed that the risk of over-fitting the shared part falls
roughly like 1/N in the number N of related tasks that share it. The sweep trains one trunk on 1, 2, … related
tasks of {SWEEP_ROWS} rows each and plots the first task's test error minus its training error: the gap shrinks as
more tasks share the trunk.

### The two-head exercise
x → Dense(H) → ReLU → h, then two heads Dense(1): ŷ_a and ŷ_b, each of shape (N, 1). The loss is
L = α L_a + (1 − α) L_b with L_a = (1/N) Σ_i (ŷ_a,i − y_a,i)². The trap: the targets have shape (N,), and
NumPy broadcasts (N, 1) − (N,) to an (N, N) matrix of *every* output minus *every* target. Its mean,
(1/N²) Σ_i Σ_j (ŷ_a,i − y_a,j)², is a number, so nothing crashes, but it is the wrong loss: only the diagonal
i = j belongs to it. The card computes that wrong formula on purpose, to show it; mtl_core flattens (N, 1) to
(N,) and refuses anything that would broadcast.

### Your own data
Upload a CSV with the header `x1,x2,main,aux`, one 2-D point per row (at most {MAX_ROWS:,} rows): `main` is 0 or 1
on the rows you have a main label for and **empty** on the others — the few labels this page is about — and `aux`
is the cheap auxiliary target on (nearly) every row: 0 or 1 with Auxiliary target "Yes/no label", any number with
"Numeric score". A quarter of the main-labelled rows and a quarter of the others are held out to score on (the
test curves and the table), so give at least a handful of rows a main label. Inputs outside [−3.5, 3.5]² are
standardised. Relatedness and main-task labels shape the generated data only and wait while your file is in use
(the sweep keeps the relatedness it had); the sweep and the two-head exercise always use their own generated
data. Your file stays in this browser tab (a reload of the tab brings it back): a link says `data=custom` but does
not carry it.
"""
DATA_ERROR_STYLE = {
    "background": "#fde2e1",
    "border": "1px solid #d9534f",
    "border-radius": "4px",
    "padding": "0.3em 0.6em",
}


def _fmt(v: float, digits: int = 3) -> str:
    return "—" if not np.isfinite(v) else f"{v:.{digits}f}"


def evaluation_html(data: dict) -> str:
    """The evaluation table (HTML) from ``eval_source``'s columns."""
    head = "".join(f"<th>{h}</th>" for h in ("model", "task", "counted", *(METRIC_LABELS[m] for m in METRICS)))
    rows = []
    for i, model in enumerate(data["model"]):
        cells = [model, data["task"][i], data["counted"][i]]
        cells = [common.escape(c) for c in cells] + [_fmt(float(data[m][i])) for m in METRICS]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    style = "border-collapse:collapse;font-size:0.85em" + ";white-space:nowrap"
    return (
        f'<div style="overflow-x:auto"><table style="{style}" border="1" cellpadding="3">'
        f"<tr>{head}</tr>{''.join(rows)}</table></div>"
    )


def matrix_html(squares: np.ndarray) -> str:
    """The (N, N) squared differences of head a, the diagonal (the right loss's terms) in bold."""
    rows = []
    for i, row in enumerate(squares):
        cells = "".join(
            f'<td style="{"font-weight:bold;background:#e3f1ef" if i == j else "color:#a33"}">{v:.2f}</td>'
            for j, v in enumerate(row)
        )
        rows.append(f"<tr><th>ŷ_a,{i + 1}</th>{cells}</tr>")
    head = "".join(f"<th>y_a,{j + 1}</th>" for j in range(squares.shape[1]))
    return (
        '<div style="overflow-x:auto"><table style="border-collapse:collapse;font-size:0.8em" border="1" '
        f'cellpadding="2"><tr><th></th>{head}</tr>{"".join(rows)}</table></div>'
    )


class AuxiliaryView(common.TrainingView):
    """Widgets, plots and the live-training loops around an :class:`AuxiliaryState`."""

    slug, heading, settings, throttled = SLUG, "Auxiliary tasks and evaluation", SETTINGS, True

    def __init__(self, state, notices=(), query=None, **params):
        super().__init__(state, notices, query, **params)
        # kept in this browser tab: a reload trains on it again; data=custom in a link without it: the fallback
        common.keep_own_data(self, MAIN_AUX_LABELS, ("x1", "x2"))
        s = self.state
        self.summary = common.named_html("summary")
        self.eval_table = common.named_html("eval_table")
        self.two_head_text = common.named_html("two_head_text", styles={"font-size": "0.9em"})
        self.sweep_status = common.named_html("sweep_status")
        self.sweep_button = bokeh_name(pn.widgets.Button(label="\u25b6 Run the sweep", width=150), "sweep_button")
        self.sweep_button.on_click(lambda _event: common._held(s.sweep.play))
        # the sweep trains in its own short ticks (one thing at a time: Train pauses it, it pauses the runs)
        self.sweep_animator = common.Animator(s.sweep, steps=s.sweep.steps_per_tick, max_steps=150)
        s.param.watch(self._refresh_text, ["summary", "delta_text"])
        s.sweep.param.watch(self._refresh_sweep, ["status"])
        s.param.watch(self._refresh_two_head, ["alpha", "flatten_bug", "seed"])
        self._refresh_text()
        self._refresh_sweep()
        self._refresh_two_head()
        self.sweep_animator.start()
        self.describe_on(s.sweep, ["status", "running"], paced=("status",))  # the sweep's figure
        self._data_panes()

    # ------------------------------------------------------------------ your own data
    def _data_panes(self) -> None:
        s = self.state
        self.upload = common.csv_upload(
            "CSV file: x1,x2,main,aux", s.load_csv, lambda message: s.param.update(data_error=message)
        )
        self.reset_data = bokeh_name(pn.widgets.Button(label="Reset to generated data"), "reset_data_button")
        self.reset_data.on_click(lambda _e: common._held(s.reset_to_generated))
        self.data_summary = common.named_html("data_summary", styles={"font-size": "0.85em"})
        self.data_error = common.named_html("data_error")
        self.eval_title = pn.pane.HTML("", sizing_mode="stretch_width")
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
        rows = "your held-out rows" if custom else f"{N_TEST} test rows"
        self.eval_title.object = f'<h2 style="font-size:1.17em">Evaluation: every task on its own ({rows})</h2>'

    def data_box(self) -> pn.Column:
        """The "Your own data" controls: the Data choice, the way back, the upload, its problem or summary."""
        return pn.Column(
            pn.pane.HTML("<b>Your own data</b>", sizing_mode="stretch_width", margin=(10, 5, 0, 5)),
            pn.FlexBox(self.widgets["data"], self.reset_data, gap="4px"),
            pn.pane.HTML(
                "Upload a CSV: header <code>x1,x2,main,aux</code>; <code>main</code> 0 or 1, an empty cell for a "
                "row without a main label; <code>aux</code> on every row, 0 or 1 (or any number with Auxiliary "
                f"target: Numeric score); at most {MAX_ROWS:,} rows.",
                sizing_mode="stretch_width",
                styles={"font-size": "0.85em"},
            ),
            self.upload,
            self.data_error,
            self.data_summary,
            sizing_mode="stretch_width",
            max_width=560,
        )

    def _refresh_text(self, *_events) -> None:
        s = self.state
        self.summary.object = f"<div>{common.escape(s.summary)}</div>"
        self.eval_table.object = evaluation_html(s.sources["eval"].data) + f"<div>{common.escape(s.delta_text)}</div>"

    def _refresh_sweep(self, *_events) -> None:
        self.sweep_status.object = f"<b>{common.escape(self.state.sweep.status)}</b>"

    def _refresh_two_head(self, *_events) -> None:
        th = self.state.two_head
        right, wrong = th["right"], th["wrong"]
        lines = [
            f"<div>mtl_core.two_head_loss → [L, L_a, L_b] = [{right[0]:.4f}, {right[1]:.4f}, {right[2]:.4f}] "
            f"(α = {self.state.alpha:.2f}, N = {len(th['y_a'])}, H = 8)</div>"
        ]
        if self.state.flatten_bug:
            lines.append(
                f'<div style="color:#a33"><b>The bug</b> (computed on purpose): (N, 1) − (N,) → (N, N), '
                f"[L, L_a, L_b] = [{wrong[0]:.4f}, {wrong[1]:.4f}, {wrong[2]:.4f}], off by "
                f"{wrong[0] - right[0]:+.4f} in L. Squared differences (ŷ_a,i − y_a,j)² of head a; the right L_a "
                f"is the mean of the bold diagonal only:</div>" + matrix_html(th["squares_a"])
            )
        refusal = common.escape(th["refusal"])
        lines.append(f"<div>Handed an (N, N) target, mtl_core refuses: <code>{refusal}</code></div>")
        self.two_head_text.object = "".join(lines)

    # ------------------------------------------------------------------ plots
    @staticmethod
    def _figure(name: str, title: str, x_label: str, **kw):
        """A figure like the step figures of every page, over another x axis."""
        fig = common.step_figure(name, title, height=230, **kw)
        fig.xaxis.axis_label = x_label
        return fig

    def _accuracy_figure(self):
        fig = common.step_figure("accuracy_figure", "Main task accuracy (solid: test, dashed: train)", height=230)
        src = self.state.sources["curves"]
        for key, label in (("with", "with the auxiliary task"), ("alone", "main task alone")):
            fig.line("step", f"{key}_test", source=src, color=COLORS[key], line_width=2, legend_label=label)
            fig.line("step", f"{key}_train", source=src, color=COLORS[key], line_dash="dashed")  # (one legend row)
        common.legend_above(fig)
        return fig

    def _gain_figure(self):
        fig = common.step_figure("gain_figure", "Gain from the auxiliary task (test accuracy, points)", height=230)
        fig.line("step", "gain", source=self.state.sources["curves"], color=COLORS["with"], line_width=2)
        fig.add_layout(Span(location=0, dimension="width", line_color="black", line_dash="dotted"))
        return fig

    def _sweep_figure(self):
        title = "Task 1: test error − training error, by number of tasks"
        fig = self._figure("sweep_figure", title, "tasks sharing the trunk", x_range=Range1d(0.5, 6.5))
        fig.yaxis.axis_label = "points"
        src = self.state.sources["sweep"]
        fig.line("n_tasks", "gap", source=src, color=COLORS["gap"], line_width=2, legend_label="gap")
        fig.scatter("n_tasks", "gap", source=src, color=COLORS["gap"], size=8)
        fig.line(
            "n_tasks", "test_error", source=src, color=COLORS["test"], line_dash="dashed", legend_label="test error"
        )
        common.legend_above(fig)
        return fig

    def _two_head_figure(self):
        fig = self._figure("two_head_figure", "Two heads: [L, L_a, L_b]", "", x_range=["L", "L_a", "L_b"])
        src = self.state.sources["two_head"]
        for shift, col, color, label in (
            (-0.17, "right", "#1b7f79", "right (flattened)"),
            (0.17, "wrong", "#c0392b", "wrong ((N, N) broadcast)"),
        ):
            x = dodge("term", shift, range=fig.x_range)
            fig.vbar(x=x, top=col, width=0.3, source=src, color=color, legend_label=label)
        fig.y_range.start = 0
        common.legend_above(fig)
        return fig

    # ------------------------------------------------------------------ layout
    def controls(self, *widgets) -> pn.Column:
        """The page's controls column holds the live runs' settings; the cards hold their own."""
        return super().controls(*(widgets or [self.widgets[k] for k in LIVE_SETTINGS]))

    @staticmethod
    def _card(title, *objs) -> pn.Column:
        """A bordered card under ``title`` (plain text, or a pane that shows the title itself)."""
        if isinstance(title, str):
            title = pn.pane.HTML(
                f'<h2 style="font-size:1.17em">{common.escape(title)}</h2>', sizing_mode="stretch_width"
            )
        return pn.Column(
            title,
            *objs,
            sizing_mode="stretch_width",
            styles={"border": "1px solid #ddd", "border-radius": "6px", "padding": "4px 8px"},
            margin=(8, 0),
        )

    def __panel__(self):
        w = self.widgets
        sweep = self._card(
            "More tasks, smaller gap",
            common.flex_row(
                common.flex_item(w["n_tasks"], self.sweep_button, self.sweep_status, basis="240px"),
                common.flex_item(pn.pane.Bokeh(self._sweep_figure(), sizing_mode="stretch_width"), basis="420px"),
            ),
            self.sweep_animator.receipt,
        )
        two_head = self._card(
            "The two-head exercise",
            common.flex_row(
                common.flex_item(w["alpha"], w["flatten_bug"], self.two_head_text, basis="320px"),
                common.flex_item(pn.pane.Bokeh(self._two_head_figure(), sizing_mode="stretch_width"), basis="320px"),
            ),
        )
        return self.training_body(
            [self.summary, common.plot_grid(self._accuracy_figure(), self._gain_figure()), self.data_box()],
            self._card(self.eval_title, self.eval_table),
            sweep,
            two_head,
            explanation_text=EXPLANATION,
        )


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, live training."""
    return common.create_page(AuxiliaryState, AuxiliaryView, SETTINGS, query, autoplay=autoplay)


if __name__.startswith("bokeh"):
    create_page().servable(title="Auxiliary tasks and evaluation - MTL Playground")

"""Page 2, "Gradient Conflict Arena": two task losses over a 2-D parameter vector, and what each method does.

The user clicks a point theta = (x, y) of the plane. At that point the two task gradients g_A, g_B (arrows) may
point apart; the combined update d of the chosen method (sum, PCGrad, MGDA, CAGrad, Nash-MTL, IMTL-G, FairGrad,
Aligned-MTL from ``mtl_core.combine``) is a third arrow. "Run" descends from the clicked point with several methods
at once and draws their paths, so one sees which of them reach the Pareto set (drawn) and where on it they land.

Surfaces (``mtl_core.arena``): the CAGrad paper's toy problem, and two quadratic bowls whose gradients meet at an
adjustable angle. Both live on the square [-10, 10]^2, so a clicked point stays valid when the surface changes.

Arrows point DOWNHILL: the arrow of g is drawn from theta to theta - s g (s is one display scale shared by the
three arrows so their lengths compare), because that is where a gradient step moves the parameters.

PCGrad toggle vs method choice: the toggle is a shortcut for "method = pcgrad". Switching it on selects PCGrad;
switching it off goes back to the plain sum; choosing any method sets the toggle to (method == "pcgrad"). When
a URL sets both and they disagree, the method wins.

The state (settings, computations, plot data) is ``app.arena_state.ArenaState``; this module is the view.

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the browser / static-site tests):

    arena_plot        the main figure: sum of both losses (log colour), iso-lines of A and B, Pareto set,
                      arrows, trajectories; a click (Tap) anywhere places the parameters
    map_a, map_b, map_sum   small contour maps of task A, task B and their sum (also clickable)
    arrow_source      ColumnDataSource, 3 rows in order g_A, g_B, combined. Columns: which ("g_A", "g_B",
                      "combined"), gx, gy (the gradients / the combiner's direction, NOT negated), x0, y0 (the
                      clicked point), x1, y1 (arrow tip = theta - s * (gx, gy)), color
    point_source      ColumnDataSource with the clicked point (x, y)
    pareto_source     ColumnDataSource (x, y) of the Pareto set
    traj_<method>     ColumnDataSource (x, y) of each method's path (empty if none), one per METHODS entry
    traj_ends         ColumnDataSource (x, y, color, method): last point of each path
    heat_sum, heat_a, heat_b   ColumnDataSource of the heat images (image, x, y, dw, dh)
    iso_sum, iso_a, iso_b      ColumnDataSource of the iso-lines (x, y): their segments as one line, NaN between
                      two segments (BokehJS draws it as one path)
    method            Select of the combination method; .value is the method's name (a METHODS entry)
    pcgrad            Toggle "PCGrad surgery"; .active
    surface           RadioButtonGroup (CAGrad toy / quadratics)
    angle, b_scale, c, alpha, lr, steps  sliders (.value); alpha (FairGrad's) is visible only when FairGrad is
                      the method or one of the paths
    optimizer         RadioButtonGroup (Adam / GD)
    traj              CheckBoxGroup of the methods to run
    run_button, clear_button
    readout           Div: losses, norms, cosine, conflict yes/no, whether the step improves each task
    traj_readout      Div: one line per finished path (final losses, distance to the Pareto set)
    status            Div: what the runner is doing
    notices           Div: notices about clamped / ignored URL values (escaped)
"""

from __future__ import annotations

import pathlib
import sys

if __name__.startswith("bokeh"):  # `panel serve app/arena.py` puts app/, not the checkout, on sys.path
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np
import panel as pn
from bokeh.events import DoubleTap, Tap
from bokeh.models import Arrow, LinearColorMapper, VeeHead

from app import common
from app.arena_state import ARROW_COLORS, EXTENT, METHOD_COLORS, METHOD_LABELS, METHODS, SETTINGS, ArenaState

SLUG = "arena"
# the settings with a widget (x and y are set by clicking a map), and what their widgets get beyond the table
# the controls column, in groups: (heading, settings)
CONTROL_GROUPS = (
    ("Surface", ("surface", "angle", "b_scale")),
    ("Point θ (type it, or click a map)", ("x", "y")),
    ("Combine the two gradients", ("method", "pcgrad", "c", "alpha")),
    ("Descent paths", ("traj", "optimizer", "lr", "steps")),
)
WIDGETS = tuple(name for _, names in CONTROL_GROUPS for name in names)
WIDGET_PARAMS = {"pcgrad": {"label": "✂ PCGrad surgery"}}


def _light_palette(n: int = 64) -> list[str]:
    """Low loss = pale cream, high loss = muted blue-grey: light enough for dark arrows on top."""
    lo, hi = np.array([255, 250, 232]), np.array([120, 142, 170])
    t = np.linspace(0.0, 1.0, n)[:, None] ** 0.8
    rgb = np.round(lo + t * (hi - lo)).astype(int)
    return ["#%02x%02x%02x" % tuple(c) for c in rgb]


PALETTE = _light_palette()


EXPLANATION = """
### What you are looking at
Two tasks share the same two parameters θ = (x, y). Each has its own loss, L_A(θ) and L_B(θ): the blue lines
are contour lines of L_A, the orange ones of L_B, and the shading is their sum (darker = higher, shaded by
rank so that every shade covers the same area). Click anywhere to put θ there. The arrows point **downhill**,
where a gradient step would move θ:

* blue: −g_A, with g_A = ∇L_A(θ);  orange: −g_B;  black: −d, the update the chosen method builds from both.

**Conflict.** The tasks conflict at θ when cos(g_A, g_B) = g_A · g_B / (‖g_A‖ ‖g_B‖) < 0: a step that helps one
task hurts the other to first order. The methods answer differently:

* **Sum**: d = g_A + g_B. The longer gradient dominates; the other task's loss may go up.
* **PCGrad** (gradient surgery): if g_A · g_B < 0, remove from each gradient its component along the other,
  g_A′ = g_A − (g_A · g_B / ‖g_B‖²) g_B (and the same for B), then d = g_A′ + g_B′. Without conflict it is the sum.
* **MGDA**: the shortest vector in the segment between g_A and g_B, d = γ g_A + (1 − γ) g_B with
  γ = clip((g_B − g_A) · g_B / ‖g_A − g_B‖², 0, 1). It never increases either loss (to first order), and it is
  zero exactly on the Pareto set.
* **CAGrad**: start from the average g₀ = (g_A + g_B)/2 and, within a ball of radius c‖g₀‖ around it, pick
  the direction that most improves the *worse-off* task. c = 0 is the average; larger c leans towards MGDA.

Four newer methods look only at the *directions* u_A = g_A/‖g_A‖, u_B = g_B/‖g_B‖ for where to go, so a task
whose loss is 100 times larger does not get its way (try *Task B scale* on the quadratics):

* **Nash-MTL** treats the update as a bargain between the tasks: weights α > 0 with (G Gᵀ) α = 1/α, d = Σ α_k g_k.
  With two tasks that is d = (u_A + u_B) / √(1 + cos θ), and ‖d‖ = √2 at every point.
* **IMTL-G** picks the weights so that d makes the *same* projection on every unit gradient, u_A · d = u_B · d:
  for two tasks d = ‖g_A‖‖g_B‖ / (‖g_A‖ + ‖g_B‖) · (u_A + u_B).
* **FairGrad** solves (G Gᵀ) w = w^(−1/α): α is how much fairness you ask for. α = 0 is the plain sum, α = 1 is
  Nash-MTL, and a large α favours the worse-off task more and more (max-min fairness). Its slider appears when
  FairGrad is chosen or run.
* **Aligned-MTL** makes the gradient system well conditioned: from the eigenvalues λ of G Gᵀ it rescales every
  eigen-direction to the smallest one, weights = √λ_min · V Λ^(−1/2) Vᵀ · 1 (as LibMTL computes them). The readout
  shows the condition number σ_max / σ_min of [g_A, g_B]: near 1 the tasks are balanced, large means one direction
  dominates.

With two tasks, Nash-MTL, IMTL-G and FairGrad at α = 1 all point along u_A + u_B, the bisector of the two
directions: they differ only in how *long* the step is (compare ‖d‖ in the readout). FairGrad with another α tilts
away from the bisector, and Aligned-MTL points along the sum of the *whitened* gradients, which is the bisector only
when ‖g_A‖ = ‖g_B‖ or they are orthogonal. With plain GD the step length decides how fast a path goes and where it
ends; Adam rescales its steps and hides much of that difference.

The **✂ PCGrad surgery** button is a shortcut: switching it on selects PCGrad, switching it off goes back to
the plain sum, and picking any other method switches it off.

**Pareto set** (green): the points where no step can lower one loss without raising the other. Press **Run** to
descend from θ with several methods at once and see which reach the green line, and where on it they land.
The *CAGrad toy* is the two-valley problem from the CAGrad paper; *Two quadratics* are bowls whose gradients
meet at the chosen angle at the origin (180° = directly opposed), with task B optionally scaled up.
"""


class ArenaView(common.PageView):
    """Widgets, the clickable maps and the live path drawing around an :class:`ArenaState`."""

    slug, heading = SLUG, "Gradient Conflict Arena"

    def __init__(self, state: ArenaState, notices=(), query=None, **params):
        super().__init__(state, notices, query, **params)
        s = self.state
        table = {st.name: st for st in SETTINGS}
        self.widgets = {
            name: table[name].widget(s, sizing_mode="stretch_width", **WIDGET_PARAMS.get(name, {})) for name in WIDGETS
        }
        self.buttons = {
            "run": pn.widgets.Button(label="▶ Run", color="primary", width=90),
            "clear": pn.widgets.Button(label="Clear paths", width=100),
        }
        for name, b in self.buttons.items():
            common.bokeh_name(b, f"{name}_button")
        self.buttons["run"].on_click(lambda _e: s.start_runs())
        self.buttons["clear"].on_click(lambda _e: s.clear_runs())

        self.readout = common.named_html("readout")
        self.traj_readout = common.named_html("traj_readout")
        self.status = common.named_html("status")
        s.param.watch(self._refresh_text, ["readout", "traj_summary", "status"])
        s.param.watch(self._refresh_enabled, ["surface", "method", "traj"])
        self._refresh_text()
        self._refresh_enabled()
        self.animator = common.Animator(s, period=50)
        # a new point, method or surface: at once; paths growing: paced
        self.describe_on(s, ["readout", "traj_summary", "status", "running"], paced=("traj_summary", "status"))

    def _refresh_text(self, *_events) -> None:
        s = self.state
        lines = s.readout.splitlines()
        html = []
        for n, line in enumerate(lines):
            style = ""
            if n == 2:
                style = ' style="color:#b3261e;font-weight:600"' if s.info["conflict"] else ' style="color:#1b7f3a"'
            html.append(f"<div{style}>{common.escape(line)}</div>")
        key = " &nbsp; ".join(
            f'<span style="color:{ARROW_COLORS[k]};font-weight:700">&#x279D; {label}</span>'
            for k, label in (("g_A", "−g_A"), ("g_B", "−g_B"), ("combined", "−d"))
        )
        self.readout.object = (
            f'<div style="font-size:0.9em">Arrows: {key} &nbsp; (● = θ)</div>'
            '<div style="font-family:ui-monospace,monospace;font-size:0.85em;line-height:1.5">'
            + "".join(html)
            + "</div>"
        )
        self.traj_readout.object = "".join(f"<div>{common.escape(t)}</div>" for t in s.traj_summary.splitlines())
        self.status.object = f"<i>{common.escape(s.status)}</i>"

    def _refresh_enabled(self, *_events) -> None:
        quad = self.state.surface == "quadratics"
        self.widgets["angle"].disabled = not quad
        self.widgets["b_scale"].disabled = not quad
        # FairGrad's alpha only matters when FairGrad draws the arrow or a path
        self.widgets["alpha"].visible = self.state.method == "fairgrad" or "fairgrad" in self.state.traj

    # ------------------------------------------------------------------ plots
    def _map(self, name: str, key: str, title: str, size: int, *, main: bool = False):
        s = self.state
        sizing = "scale_width" if main else "fixed"
        fig = common.square_figure(name, title, EXTENT, size, sizing_mode=sizing, min_border=4)
        mapper = LinearColorMapper(palette=PALETTE, low=0.0, high=1.0)
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=mapper, source=s.sources[f"heat_{key}"])
        iso_keys = ("a", "b") if main else (key,)
        for k in iso_keys:  # one path per map: segment by segment, the iso-lines were most of a repaint
            fig.line(
                "x",
                "y",
                color=s.iso_colors[k],
                line_width=1.0 if main else 0.8,
                line_alpha=0.8,
                source=s.sources[f"iso_{k}"],
            )
        pareto = {"legend_label": "Pareto set"} if main else {}
        fig.line(
            "x",
            "y",
            source=s.sources["pareto"],
            color="#1b9e4b",
            line_width=4 if main else 2.5,
            line_alpha=0.85,
            **pareto,
        )
        if main:
            self._trajectories_and_legend(fig)
        # a click moves only the point and the arrows: drawn on the plots' overlay layer, they are all a click
        # repaints; the heat image, iso-lines and axes below stay painted (at 4x the four maps' whole repaint was most
        # of a click's answer)
        fig.scatter(
            "x",
            "y",
            source=s.sources["point"],
            size=11 if main else 7,
            color="#ffd400",
            line_color="black",
            line_width=1.5,
            level="overlay",
        )
        fig.title.text_font_size = "12px" if main else "11px"
        fig.grid.visible = False
        if not main:
            fig.axis.visible = False
        # BokehJS reports a second click within 300 ms of the last one on the same map as a DoubleTap: a start too
        for event in (Tap, DoubleTap):
            fig.on_event(event, self._on_tap)
        return fig

    def _trajectories_and_legend(self, fig) -> None:
        """The main map's descent paths, their end points, the gradient arrows and the legend below the square."""
        s = self.state
        for m in METHODS:
            fig.line(
                "x",
                "y",
                source=s.sources[f"traj_{m}"],
                color=METHOD_COLORS[m],
                line_width=2.2,
                legend_label=METHOD_LABELS[m],
            )
        fig.scatter("x", "y", source=s.sources["ends"], color="color", size=9, marker="diamond", line_color="white")
        fig.add_layout(
            Arrow(
                end=VeeHead(size=12, fill_color="color", line_color="color"),
                x_start="x0",
                y_start="y0",
                x_end="x1",
                y_end="y1",
                line_color="color",
                line_width=3,
                source=s.sources["arrows"],
                level="overlay",  # with the point: see _map
            )
        )
        legend = fig.legend[0]
        fig.add_layout(legend, "below")  # outside the square: it must not hide the Pareto set
        legend.orientation = "horizontal"
        legend.label_text_font_size = "10px"
        legend.padding = 2
        legend.spacing = 6
        legend.click_policy = "hide"

    def _on_tap(self, event) -> None:
        if event.x is None or event.y is None:
            return
        # held: the new point, its arrows, the cleared paths, the readout, the URL and the text alternative reach
        # the browser as one message and one repaint; one message per change had the main plot repaint ten times
        # before the arrows came (1.8 s on a 4x-slowed CPU). The x and y inputs and the URL change after the hold:
        # held, Panel took their changes back as if the browser had sent them (common.hold_except)
        with common.hold_except(self.widgets["x"], self.widgets["y"], pn.state.location):
            self.state.tap(event.x, event.y)

    def __panel__(self):
        main = self._map("arena_plot", "sum", "Click to place θ (arrows point downhill)", 520, main=True)
        maps = pn.FlexBox(
            *[
                pn.pane.Bokeh(self._map(f"map_{k}", k, t, 170))
                for k, t in (("a", "Task A: L_A"), ("b", "Task B: L_B"), ("sum", "L_A + L_B"))
            ],
            flex_wrap="wrap",
            justify_content="space-around",
            sizing_mode="stretch_width",
        )
        groups = []
        for n, (heading, names) in enumerate(CONTROL_GROUPS):
            groups.append(pn.pane.HTML(f"<b>{heading}</b>", margin=(8 if n else 0, 5, 0, 5)))
            groups.extend(self.widgets[name] for name in names)
        buttons = pn.Row(*self.buttons.values(), sizing_mode="stretch_width")
        controls = common.flex_item(*groups, buttons, self.status, basis="260px", min_width=240, max_width=330)
        plot = common.flex_item(
            pn.pane.Bokeh(main, sizing_mode="stretch_width", max_width=560),
            self.readout,
            basis="360px",
            min_width=280,
            grow=3,
            max_width=580,
        )
        side = common.flex_item(maps, self.traj_readout, basis="220px", min_width=200)
        top = pn.FlexBox(controls, plot, side, flex_wrap="wrap", gap="10px", sizing_mode="stretch_width")
        body = pn.Column(self.notices, top, common.explanation(EXPLANATION), sizing_mode="stretch_width")
        return self.frame(body)


def create_page(query: str | dict | None = None):
    """Build the page: state restored from the URL query (or ``query``), widgets, clickable maps."""
    return common.create_page(ArenaState, ArenaView, SETTINGS, query)


if __name__.startswith("bokeh"):
    create_page().servable(title="Gradient Conflict Arena - MTL Playground")

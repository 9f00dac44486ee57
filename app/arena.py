"""Page 2, "Gradient Conflict Arena": two task losses over a 2-D parameter vector, and what each method does.

The user clicks a point theta = (x, y) of the plane. At that point the two task gradients g_A, g_B (arrows) may
point apart; the combined update d of the chosen method (sum, PCGrad, MGDA, CAGrad from ``mtl_core.combine``) is a
third arrow. "Run" descends from the clicked point with several methods at once and draws their paths, so one
sees which of them reach the Pareto set (drawn) and where on it they land.

Surfaces (``mtl_core.arena``): the CAGrad paper's toy problem, and two quadratic bowls whose gradients meet at an
adjustable angle. Both live on the square [-10, 10]^2, so a clicked point stays valid when the surface changes.

Arrows point DOWNHILL: the arrow of g is drawn from theta to theta - s g (s is one display scale shared by the
three arrows so their lengths compare), because that is where a gradient step moves the parameters.

PCGrad toggle vs method choice: the toggle is a shortcut for "method = pcgrad". Switching it on selects PCGrad;
switching it off goes back to the plain sum; choosing any method sets the toggle to (method == "pcgrad"). When
a URL sets both and they disagree, the method wins.

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the browser / static-site tests):

    arena_plot        the main figure: sum of both losses (log colour), iso-lines of A and B, Pareto set,
                      arrows, trajectories; a click (Tap) anywhere places the parameters
    map_a, map_b, map_sum   small contour maps of task A, task B and their sum (also clickable)
    arrow_source      ColumnDataSource, 3 rows in order g_A, g_B, combined. Columns: which ("g_A", "g_B",
                      "combined"), gx, gy (the gradients / the combiner's direction, NOT negated), x0, y0 (the
                      clicked point), x1, y1 (arrow tip = theta - s * (gx, gy)), color
    point_source      ColumnDataSource with the clicked point (x, y)
    pareto_source     ColumnDataSource (x, y) of the Pareto set
    traj_sum, traj_pcgrad, traj_mgda, traj_cagrad   ColumnDataSource (x, y) of each method's path (empty if none)
    traj_ends         ColumnDataSource (x, y, color, method): last point of each path
    heat_sum, heat_a, heat_b   ColumnDataSource of the heat images (image, x, y, dw, dh)
    iso_sum, iso_a, iso_b      ColumnDataSource of the iso-line segments (x0, y0, x1, y1, color)
    method            RadioButtonGroup (sum / PCGrad / MGDA / CAGrad); .active is the index in METHODS
    pcgrad            Toggle "PCGrad surgery"; .active
    surface           RadioButtonGroup (CAGrad toy / quadratics)
    angle, b_scale, c, lr, steps        sliders (.value)
    optimizer         RadioButtonGroup (Adam / GD)
    traj              CheckButtonGroup of the methods to run
    run_button, clear_button
    readout           Div: losses, norms, cosine, conflict yes/no, whether the step improves each task
    traj_readout      Div: one line per finished path (final losses, distance to the Pareto set)
    status            Div: what the runner is doing
    notices           Div: notices about clamped / ignored URL values (escaped)
"""
from __future__ import annotations

import pathlib
import sys
import time

if __name__.startswith("bokeh"):  # `panel serve app/arena.py`: make the checkout importable
    _ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

import numpy as np
import panel as pn
import param
from bokeh.events import Tap
from bokeh.models import Arrow, ColumnDataSource, LinearColorMapper, VeeHead
from bokeh.plotting import figure

from app import common
from app.settings import Setting, settings_class

SLUG = "arena"
METHODS = ("sum", "pcgrad", "mgda", "cagrad")
METHOD_LABELS = {"sum": "Sum", "pcgrad": "PCGrad", "mgda": "MGDA", "cagrad": "CAGrad"}
METHOD_COLORS = {"sum": "#222222", "pcgrad": "#d62728", "mgda": "#1f77b4", "cagrad": "#9467bd"}
SURFACES = ("cagrad_toy", "quadratics")
SURFACE_LABELS = {"cagrad_toy": "CAGrad toy", "quadratics": "Two quadratics"}
ARROW_COLORS = {"g_A": "#1565c0", "g_B": "#e65100", "combined": "#111111"}
EXTENT = 10.0          # both surfaces live on [-EXTENT, EXTENT]^2
QUAD_RADIUS = EXTENT / 1.6   # RotatedQuadratics' bounds are +-1.6 radius: this makes them +-EXTENT too
GRID = 121             # heat image / marching-squares resolution (GRID x GRID)
N_LEVELS = 11          # iso-lines per map
TICK_BUDGET = 0.04     # seconds of trajectory steps per periodic-callback tick
CHUNK = 10             # steps per run between two looks at the clock
PARETO_POINTS = 400

SETTINGS = (
    Setting("surface", "choice", "cagrad_toy", choices=SURFACES, label="Surface", labels=SURFACE_LABELS,
            help="The CAGrad paper's toy problem, or two quadratic bowls meeting at an adjustable angle."),
    Setting("angle", "float", 135.0, 0.0, 180.0, step=5.0, label="Conflict angle (°)",
            help="Quadratics only: the angle between the two gradients at the origin (0 = agree, 180 = opposed)."),
    Setting("b_scale", "float", 1.0, 0.1, 10.0, step=0.1, label="Task B scale",
            help="Quadratics only: multiplies task B's loss, so its gradients are that many times longer."),
    Setting("x", "float", -3.0, -EXTENT, EXTENT, step=0.01, label="x",
            help="First coordinate of the parameters (click the plot to move it)."),
    Setting("y", "float", 6.0, -EXTENT, EXTENT, step=0.01, label="y",
            help="Second coordinate of the parameters (click the plot to move it)."),
    Setting("method", "choice", "sum", choices=METHODS, label="Combine with", labels=METHOD_LABELS,
            help="How the two gradients become one update: plain sum, PCGrad, MGDA or CAGrad."),
    Setting("pcgrad", "bool", False, label="PCGrad surgery",
            help="Shortcut for method = PCGrad (off = plain sum)."),
    Setting("c", "float", 0.5, 0.0, 1.0, step=0.05, label="CAGrad c",
            help="CAGrad's radius: how far (relative to |g0|) the update may leave the average gradient g0."),
    Setting("traj", "multi", METHODS, choices=METHODS, label="Run these methods", labels=METHOD_LABELS,
            help="Methods whose descent paths Run draws."),
    Setting("optimizer", "choice", "adam", choices=("adam", "gd"), label="Optimizer",
            labels={"adam": "Adam", "gd": "GD"},
            help="Adam (as in the CAGrad paper's toy runs) or plain gradient descent theta -= lr d."),
    Setting("lr", "float", 0.1, 0.001, 1.0, step=0.001, label="Learning rate", help="Step size of the runs."),
    Setting("steps", "int", 500, 10, 3000, step=10, label="Steps", help="Length of each run."),
)
GEOMETRY = ("surface", "angle", "b_scale")
RUN_SETTINGS = ("traj", "optimizer", "lr", "steps", "c")


# ---------------------------------------------------------------------------------------------------------------
# contour lines: a small marching squares (no contourpy in the page: it costs Pyodide load time)
# ---------------------------------------------------------------------------------------------------------------

def iso_segments(z: np.ndarray, xs: np.ndarray, ys: np.ndarray, levels) -> tuple[np.ndarray, ...]:
    """Line segments of the level sets of a gridded function (marching squares with linear interpolation).

    Parameters
    ----------
    z : (ny, nx) array, z[i, j] = f(xs[j], ys[i])
    xs : (nx,) increasing, ys : (ny,) increasing
    levels : sequence of float

    Returns
    -------
    x0, y0, x1, y1 : (S,) arrays, one segment per row
    level : (S,) int array, index into ``levels`` of each segment
    """
    z = np.asarray(z, dtype=np.float64)
    parts = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, lev in enumerate(levels):
            low = z < lev
            sa, sb, sc, sd = low[:-1, :-1], low[:-1, 1:], low[1:, 1:], low[1:, :-1]   # corners bl, br, tr, tl
            i, j = np.nonzero((sa != sb) | (sb != sc) | (sd != sc) | (sa != sd))      # only cells the line crosses
            if i.size == 0:
                continue
            a, b, c, d = z[i, j], z[i, j + 1], z[i + 1, j + 1], z[i + 1, j]
            la, lb, lc, ld = a < lev, b < lev, c < lev, d < lev
            x0, x1, y0, y1 = xs[j], xs[j + 1], ys[i], ys[i + 1]
            # edges in the order bottom (a-b), right (b-c), top (d-c), left (a-d): crossing flag and point
            cross = np.stack([la != lb, lb != lc, ld != lc, la != ld])                 # (4, S)
            ta, tb, tc, td = (lev - a) / (b - a), (lev - b) / (c - b), (lev - d) / (c - d), (lev - a) / (d - a)
            px = np.stack([x0 + ta * (x1 - x0), x1, x0 + tc * (x1 - x0), x0])
            py = np.stack([y0, y0 + tb * (y1 - y0), y1, y0 + td * (y1 - y0)])
            count = cross.sum(axis=0)
            # two crossings: one segment between them
            two = np.flatnonzero(count == 2)
            if two.size:
                flags = cross[:, two]
                first = np.argmax(flags, axis=0)
                last = 3 - np.argmax(flags[::-1], axis=0)
                parts.append((px[first, two], py[first, two], px[last, two], py[last, two], np.full(two.size, k)))
            # four crossings (a saddle): the centre value decides which corners are cut off
            four = np.flatnonzero(count == 4)
            if four.size:
                centre_low = (a[four] + b[four] + c[four] + d[four]) / 4.0 < lev
                joined = centre_low == la[four]          # a and c connect through the centre: cut off b and d
                # joined: segments bottom-right (cuts off b) and top-left (cuts off d);
                # else: bottom-left (cuts off a) and right-top (cuts off c). Edge ids as in ``cross``.
                for e1, e2 in ((np.zeros(four.size, dtype=int), np.where(joined, 1, 3)),
                               (np.where(joined, 2, 1), np.where(joined, 3, 2))):
                    parts.append((px[e1, four], py[e1, four], px[e2, four], py[e2, four], np.full(four.size, k)))
    if not parts:
        empty = np.zeros(0)
        return empty, empty, empty, empty, np.zeros(0, dtype=int)
    return tuple(np.concatenate([p[n] for p in parts]) for n in range(5))


def display_values(loss: np.ndarray) -> np.ndarray:
    """Rank of each grid value in [0, 1] (histogram equalisation), for the heat-map colours.

    The two surfaces span very different ranges (the CAGrad toy has log valleys next to a wide quadratic bowl),
    so a linear or log colour scale leaves most of the square one colour; by rank every shade covers the same
    area. The ordering, which is what the eye reads, is unchanged.
    """
    flat = np.asarray(loss, dtype=np.float64).ravel()
    ranks = np.empty(flat.size)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    return (ranks / max(flat.size - 1, 1)).reshape(np.shape(loss))


def iso_levels(loss: np.ndarray, n: int = N_LEVELS) -> np.ndarray:
    """``n`` loss values at evenly spaced quantiles of the grid, so the lines spread over the whole square."""
    return np.unique(np.quantile(loss, np.linspace(0.0, 1.0, n + 2)[1:-1]))


def _light_palette(n: int = 64) -> list[str]:
    """Low loss = pale cream, high loss = muted blue-grey: light enough for dark arrows on top."""
    lo, hi = np.array([255, 250, 232]), np.array([120, 142, 170])
    t = np.linspace(0.0, 1.0, n)[:, None] ** 0.8
    rgb = np.round(lo + t * (hi - lo)).astype(int)
    return ["#%02x%02x%02x" % tuple(c) for c in rgb]


PALETTE = _light_palette()


# ---------------------------------------------------------------------------------------------------------------
# an optimisation path advanced a chunk at a time (live drawing without blocking the page)
# ---------------------------------------------------------------------------------------------------------------

class TrajectoryRun:
    """Gradient descent on a two-task objective, advanced ``n`` steps at a time.

    Does exactly what ``mtl_core.arena.trajectory`` does (same update, same use of ``rng``), only resumable, so
    the page can draw the path while it grows. ``points`` ends early if a step becomes non-finite.

    Parameters
    ----------
    objective : object with .grads(theta) -> (2, 2)
    start : (2,) array
    combiner : a mtl_core.combine Combiner
    lr : float > 0, steps : int >= 0, optimizer : {"gd", "adam"}
    rng : np.random.Generator
    """

    def __init__(self, objective, start, combiner, *, lr: float, steps: int, optimizer: str,
                 rng: np.random.Generator, betas=(0.9, 0.999), eps: float = 1e-8):
        if optimizer not in ("gd", "adam"):
            raise ValueError(f"optimizer must be 'gd' or 'adam', got {optimizer!r}")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr!r}")
        self.objective, self.combiner, self.rng = objective, combiner, rng
        self.lr, self.steps, self.optimizer = float(lr), int(steps), optimizer
        self.b1, self.b2, self.eps = betas[0], betas[1], eps
        self.theta = np.array(start, dtype=np.float64)
        self.points = [self.theta.copy()]
        self.m = np.zeros(2)
        self.v = np.zeros(2)
        self.t = 0
        self.diverged = False

    @property
    def done(self) -> bool:
        return self.diverged or self.t >= self.steps

    def advance(self, n: int) -> None:
        """Take up to ``n`` more steps (fewer at the end or when a step turns non-finite)."""
        for _ in range(max(0, min(n, self.steps - self.t))):
            if self.diverged:
                return
            self.t += 1
            g = self.objective.grads(self.theta)
            with np.errstate(over="ignore", invalid="ignore"):   # a non-finite step is caught just below
                d = np.asarray(self.combiner.combine(g, rng=self.rng).direction, dtype=np.float64)
            if not np.all(np.isfinite(d)):
                self.diverged = True
                return
            if self.optimizer == "adam":
                self.m = self.b1 * self.m + (1.0 - self.b1) * d
                self.v = self.b2 * self.v + (1.0 - self.b2) * d * d
                step = (self.m / (1.0 - self.b1 ** self.t)) / (np.sqrt(self.v / (1.0 - self.b2 ** self.t)) + self.eps)
            else:
                step = d
            new = self.theta - self.lr * step
            if not np.all(np.isfinite(new)):
                self.diverged = True
                return
            self.theta = new
            self.points.append(new.copy())

    def path(self) -> np.ndarray:
        """(n_points, 2) points so far, the start first."""
        return np.array(self.points)


def pareto_distance(points: np.ndarray, pareto: np.ndarray) -> np.ndarray:
    """Distance of each point (M, 2) to the polyline ``pareto`` (K, 2): (M,)."""
    a, b = pareto[:-1], pareto[1:]                      # (K-1, 2) segment ends
    ab = b - a
    ab2 = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-300)
    ap = points[:, None, :] - a[None]                   # (M, K-1, 2)
    t = np.clip(np.einsum("mki,ki->mk", ap, ab) / ab2, 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    return np.min(np.linalg.norm(points[:, None, :] - closest, axis=2), axis=1)


# ---------------------------------------------------------------------------------------------------------------
# state
# ---------------------------------------------------------------------------------------------------------------

_Settings = settings_class("_ArenaSettings", SETTINGS)


def _image_data(img: np.ndarray) -> dict:
    return {"image": [img], "x": [-EXTENT], "y": [-EXTENT], "dw": [2 * EXTENT], "dh": [2 * EXTENT]}


class ArenaState(_Settings):
    """The arena's settings, computations and plot data (no widgets).

    ``tap(x, y)`` places the parameters; ``start_runs()`` begins the descent paths and ``tick()`` grows them
    (the periodic callback calls it), ``finish_runs()`` completes them at once. ``combined()`` returns the
    current combiner's result at the clicked point. All plot data lives in ``self.sources`` (names in the module
    docstring).
    """

    running = param.Boolean(False, doc="True while descent paths are still growing.")
    readout = param.String("", doc="Plain-text readout lines about the clicked point.")
    traj_summary = param.String("", doc="Plain-text lines, one per descent path.")
    status = param.String("", doc="One line about the runner.")

    def __init__(self, **params):
        super().__init__(**params)
        self.xs = np.linspace(-EXTENT, EXTENT, GRID)
        self.ys = np.linspace(-EXTENT, EXTENT, GRID)
        self.sources = {
            "arrows": ColumnDataSource({k: [] for k in ("which", "gx", "gy", "x0", "y0", "x1", "y1", "color")},
                                       name="arrow_source"),
            "point": ColumnDataSource({"x": [], "y": []}, name="point_source"),
            "pareto": ColumnDataSource({"x": [], "y": []}, name="pareto_source"),
            "ends": ColumnDataSource({"x": [], "y": [], "color": [], "method": []}, name="traj_ends"),
        }
        for m in METHODS:
            self.sources[f"traj_{m}"] = ColumnDataSource({"x": [], "y": []}, name=f"traj_{m}")
        for key in ("sum", "a", "b"):
            self.sources[f"heat_{key}"] = ColumnDataSource(_image_data(np.zeros((2, 2))), name=f"heat_{key}")
            self.sources[f"iso_{key}"] = ColumnDataSource({k: [] for k in ("x0", "y0", "x1", "y1", "color")},
                                                          name=f"iso_{key}")
        self.runs: dict[str, TrajectoryRun] = {}
        self._syncing = False
        self.param.watch(self._on_geometry, list(GEOMETRY))
        self.param.watch(self._on_point, ["x", "y"])
        self.param.watch(self._on_method, ["method", "pcgrad"])
        self.param.watch(self._on_combine_setting, ["c"])
        self.param.watch(self._on_run_setting, [s for s in RUN_SETTINGS if s != "c"])
        self._sync_method(["method"] if self.method != "sum" else (["pcgrad"] if self.pcgrad else []))
        self._build_objective()
        self._update_point()

    # ------------------------------------------------------------------ objective and its maps
    def objective_for(self, surface: str | None = None):
        """A fresh mtl_core objective for the current (or the given) surface settings."""
        from mtl_core.arena import CAGradToy, RotatedQuadratics
        surface = surface or self.surface
        if surface == "cagrad_toy":
            return CAGradToy()
        return RotatedQuadratics(self.angle, radius=QUAD_RADIUS, scale=self.b_scale)

    def _build_objective(self) -> None:
        self.objective = self.objective_for()
        losses = self.objective.grid(self.xs, self.ys)                   # (2, GRID, GRID)
        maps = {"a": losses[0], "b": losses[1], "sum": losses[0] + losses[1]}
        self.iso_colors = {"a": ARROW_COLORS["g_A"], "b": ARROW_COLORS["g_B"], "sum": "#555555"}
        for key, loss in maps.items():
            self.sources[f"heat_{key}"].data = _image_data(display_values(loss))
            x0, y0, x1, y1, _ = iso_segments(loss, self.xs, self.ys, iso_levels(loss))
            self.sources[f"iso_{key}"].data = {"x0": x0, "y0": y0, "x1": x1, "y1": y1,
                                               "color": [self.iso_colors[key]] * len(x0)}
        self.pareto = self.objective.pareto_set(PARETO_POINTS)
        self.sources["pareto"].data = {"x": self.pareto[:, 0], "y": self.pareto[:, 1]}

    def _on_geometry(self, *_events) -> None:
        self.clear_runs()
        self._build_objective()
        self._update_point()

    # ------------------------------------------------------------------ the clicked point
    def tap(self, x: float, y: float) -> None:
        """Place the parameters at (x, y), clamped to the square (what a click on a map does)."""
        x = float(np.clip(x, -EXTENT, EXTENT)) if np.isfinite(x) else self.x
        y = float(np.clip(y, -EXTENT, EXTENT)) if np.isfinite(y) else self.y
        # rounded so the URL stays short; 0.001 is far below one pixel
        self.param.update(x=round(x, 3), y=round(y, 3))

    @property
    def theta(self) -> np.ndarray:
        return np.array([self.x, self.y], dtype=np.float64)

    def make_combiner(self, method: str | None = None):
        from mtl_core.combine import make_combiner
        method = method or self.method
        return make_combiner(method, c=self.c) if method == "cagrad" else make_combiner(method)

    def combined(self):
        """The chosen combiner's CombineResult for the gradients at the clicked point."""
        return self.make_combiner().combine(self.objective.grads(self.theta), rng=np.random.default_rng(0))

    def _on_point(self, *_events) -> None:
        self.clear_runs()
        self._update_point()

    def _on_combine_setting(self, *_events) -> None:
        self.clear_runs()
        self._update_point()

    def _on_run_setting(self, *_events) -> None:
        self.clear_runs()

    def _update_point(self) -> None:
        theta = self.theta
        G = self.objective.grads(theta)                                  # (2, 2), row k = dL_k/dtheta
        out = self.combined()
        d = np.asarray(out.direction, dtype=np.float64)
        vecs = {"g_A": G[0], "g_B": G[1], "combined": d}
        norms = {k: float(np.linalg.norm(v)) for k, v in vecs.items()}
        longest = max(norms.values())
        # one shared scale: the longest arrow spans a quarter of the square; tiny but non-zero arrows keep a
        # minimum visible length so their direction can still be read
        scale = 0.5 * EXTENT / longest if longest > 0 else 0.0
        cols = {k: [] for k in ("which", "gx", "gy", "x0", "y0", "x1", "y1", "color")}
        for k, v in vecs.items():
            s = scale
            if norms[k] > 0 and norms[k] * scale < 0.06 * EXTENT:
                s = 0.06 * EXTENT / norms[k]
            cols["which"].append(k)
            cols["gx"].append(float(v[0]))
            cols["gy"].append(float(v[1]))
            cols["x0"].append(float(theta[0]))
            cols["y0"].append(float(theta[1]))
            cols["x1"].append(float(theta[0] - s * v[0]))
            cols["y1"].append(float(theta[1] - s * v[1]))
            cols["color"].append(ARROW_COLORS[k])
        self.sources["arrows"].data = cols
        self.sources["point"].data = {"x": [float(theta[0])], "y": [float(theta[1])]}

        losses = self.objective.losses(theta)
        cos = float(G[0] @ G[1] / (norms["g_A"] * norms["g_B"])) if norms["g_A"] * norms["g_B"] > 0 else 0.0
        self.info = {"loss_a": float(losses[0]), "loss_b": float(losses[1]), "norm_a": norms["g_A"],
                     "norm_b": norms["g_B"], "norm_d": norms["combined"], "cosine": cos,
                     "conflict": bool(G[0] @ G[1] < 0), "improves_a": bool(G[0] @ d > 0),
                     "improves_b": bool(G[1] @ d > 0), "direction": d}
        self.readout = self._readout_text()

    def _readout_text(self) -> str:
        i = self.info
        name = METHOD_LABELS[self.method]

        def effect(ok, norm_d):
            if norm_d == 0:
                return "no step (d = 0: Pareto-stationary for this method)"
            return "goes down" if ok else "goes UP"
        lines = [
            f"θ = ({self.x:.2f}, {self.y:.2f})    L_A = {i['loss_a']:.4g}    L_B = {i['loss_b']:.4g}",
            f"|g_A| = {i['norm_a']:.3g}    |g_B| = {i['norm_b']:.3g}    |d| = {i['norm_d']:.3g} ({name})",
            f"cos(g_A, g_B) = {i['cosine']:+.3f}  →  " + ("CONFLICT: the tasks pull apart (g_A · g_B < 0)"
                                                         if i["conflict"] else "no conflict (g_A · g_B ≥ 0)"),
            f"A small step along −d: L_A {effect(i['improves_a'], i['norm_d'])}, "
            f"L_B {effect(i['improves_b'], i['norm_d'])}.",
        ]
        return "\n".join(lines)

    # ------------------------------------------------------------------ PCGrad toggle <-> method
    def _on_method(self, *events) -> None:
        if self._syncing:
            return
        self._sync_method([e.name for e in events])
        self._on_combine_setting()

    def _sync_method(self, changed) -> None:
        """Keep the toggle and the method choice consistent; the method wins when both changed at once."""
        self._syncing = True
        try:
            if "method" in changed:
                self.pcgrad = self.method == "pcgrad"
            elif "pcgrad" in changed:
                if self.pcgrad:
                    self.method = "pcgrad"
                elif self.method == "pcgrad":
                    self.method = "sum"
        finally:
            self._syncing = False

    # ------------------------------------------------------------------ descent paths
    def clear_runs(self) -> None:
        """Forget every path (they start at the old point or use old settings)."""
        self.runs = {}
        for m in METHODS:
            self.sources[f"traj_{m}"].data = {"x": [], "y": []}
        self.sources["ends"].data = {"x": [], "y": [], "color": [], "method": []}
        self.traj_summary = ""
        self.running = False
        self.status = "Press Run to draw the descent paths from the clicked point."

    def start_runs(self) -> None:
        """Start one path per method in ``traj`` from the clicked point (they grow in ``tick``)."""
        self.clear_runs()
        self.runs = {m: TrajectoryRun(self.objective, self.theta, self.make_combiner(m), lr=self.lr,
                                      steps=self.steps, optimizer=self.optimizer, rng=np.random.default_rng(0))
                     for m in METHODS if m in self.traj}
        self._draw_runs()
        self.running = bool(self.runs)
        if not self.runs:
            self.status = "Pick at least one method to run."

    def tick(self, budget: float = TICK_BUDGET) -> None:
        """Grow the paths for about ``budget`` seconds (one periodic-callback tick), then redraw them."""
        t0 = time.perf_counter()
        while True:
            active = [r for r in self.runs.values() if not r.done]
            if not active:
                break
            for r in active:
                r.advance(CHUNK)
            if time.perf_counter() - t0 > budget:
                break
        self._draw_runs()
        if all(r.done for r in self.runs.values()):
            self.running = False

    def finish_runs(self) -> None:
        """Complete every path at once (tests; no event loop needed)."""
        for r in self.runs.values():
            r.advance(r.steps)
        self._draw_runs()
        self.running = False

    def _draw_runs(self) -> None:
        ends = {"x": [], "y": [], "color": [], "method": []}
        lines = []
        for m, r in self.runs.items():
            path = r.path()
            self.sources[f"traj_{m}"].data = {"x": path[:, 0], "y": path[:, 1]}
            ends["x"].append(float(path[-1, 0]))
            ends["y"].append(float(path[-1, 1]))
            ends["color"].append(METHOD_COLORS[m])
            ends["method"].append(METHOD_LABELS[m])
            if r.done:
                losses = self.objective.losses(path[-1])
                dist = float(pareto_distance(path[-1:], self.pareto)[0])
                what = f"stopped at step {r.t}: the step became non-finite" if r.diverged else f"{r.t} steps"
                lines.append(f"{METHOD_LABELS[m]}: ended at ({path[-1, 0]:.2f}, {path[-1, 1]:.2f}), "
                             f"L_A = {losses[0]:.3g}, L_B = {losses[1]:.3g}, {dist:.2f} from the Pareto set "
                             f"({what}).")
        self.sources["ends"].data = ends
        self.traj_summary = "\n".join(lines)
        done = sum(r.done for r in self.runs.values())
        total = len(self.runs)
        steps = max((r.t for r in self.runs.values()), default=0)
        self.status = (f"Running: step {steps} / {self.steps}" if done < total else
                       f"Done: {total} path{'s' if total != 1 else ''} from ({self.x:.2f}, {self.y:.2f}).")


# ---------------------------------------------------------------------------------------------------------------
# view
# ---------------------------------------------------------------------------------------------------------------

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

The **✂ PCGrad surgery** button is a shortcut: switching it on selects PCGrad, switching it off goes back to
the plain sum, and picking any other method switches it off.

**Pareto set** (green): the points where no step can lower one loss without raising the other. Press **Run** to
descend from θ with several methods at once and see which reach the green line, and where on it they land.
The *CAGrad toy* is the two-valley problem from the CAGrad paper; *Two quadratics* are bowls whose gradients
meet at the chosen angle at the origin (180° = directly opposed), with task B optionally scaled up.
"""


class ArenaView(pn.viewable.Viewer):
    """Widgets, the clickable maps and the live path drawing around an :class:`ArenaState`."""

    state = param.ClassSelector(class_=ArenaState)

    def __init__(self, state: ArenaState | None = None, notices=(), query=None, **params):
        super().__init__(state=state or ArenaState(), **params)
        self.query = query
        s = self.state
        wide = {"sizing_mode": "stretch_width"}
        self.widgets = {
            "surface": pn.widgets.RadioButtonGroup.from_param(
                s.param.surface, options={SURFACE_LABELS[k]: k for k in SURFACES}, **wide),
            "method": pn.widgets.RadioButtonGroup.from_param(
                s.param.method, options={METHOD_LABELS[k]: k for k in METHODS}, **wide),
            "pcgrad": pn.widgets.Toggle.from_param(s.param.pcgrad, label="✂ PCGrad surgery", **wide),
            "c": pn.widgets.FloatSlider.from_param(s.param.c, **wide),
            "angle": pn.widgets.FloatSlider.from_param(s.param.angle, **wide),
            "b_scale": pn.widgets.FloatSlider.from_param(s.param.b_scale, **wide),
            "traj": pn.widgets.CheckButtonGroup.from_param(
                s.param.traj, options={METHOD_LABELS[k]: k for k in METHODS}, **wide),
            "optimizer": pn.widgets.RadioButtonGroup.from_param(
                s.param.optimizer, options={"Adam": "adam", "GD": "gd"}, **wide),
            "lr": pn.widgets.FloatInput.from_param(s.param.lr, **wide),
            "steps": pn.widgets.IntSlider.from_param(s.param.steps, **wide),
        }
        for name, w in self.widgets.items():
            common.bokeh_name(w, name)
        self.buttons = {
            "run": pn.widgets.Button(label="▶ Run", color="primary", width=90),
            "clear": pn.widgets.Button(label="Clear paths", width=100),
        }
        for name, b in self.buttons.items():
            common.bokeh_name(b, f"{name}_button")
        self.buttons["run"].on_click(lambda _e: s.start_runs())
        self.buttons["clear"].on_click(lambda _e: s.clear_runs())

        self.notices = common.bokeh_name(common.notices_pane(), "notices")
        self.notices.object = common.render_notices(notices)
        self.readout = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width"), "readout")
        self.traj_readout = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width"), "traj_readout")
        self.status = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width"), "status")
        s.param.watch(self._refresh_text, ["readout", "traj_summary", "status"])
        s.param.watch(self._refresh_enabled, ["surface"])
        self._refresh_text()
        self._refresh_enabled()
        self.animator = common.Animator(s, period=50)

    def _refresh_text(self, *_events) -> None:
        s = self.state
        lines = s.readout.splitlines()
        html = []
        for n, line in enumerate(lines):
            style = ""
            if n == 2:
                style = ' style="color:#b3261e;font-weight:600"' if s.info["conflict"] else ' style="color:#1b7f3a"'
            html.append(f"<div{style}>{common.escape(line)}</div>")
        key = " &nbsp; ".join(f'<span style="color:{ARROW_COLORS[k]};font-weight:700">&#x279D; {label}</span>'
                              for k, label in (("g_A", "−g_A"), ("g_B", "−g_B"), ("combined", "−d")))
        self.readout.object = (f'<div style="font-size:0.9em">Arrows: {key} &nbsp; (● = θ)</div>'
                               '<div style="font-family:ui-monospace,monospace;font-size:0.85em;line-height:1.5">'
                               + "".join(html) + "</div>")
        self.traj_readout.object = "".join(f"<div>{common.escape(t)}</div>" for t in s.traj_summary.splitlines())
        self.status.object = f"<i>{common.escape(s.status)}</i>"

    def _refresh_enabled(self, *_events) -> None:
        quad = self.state.surface == "quadratics"
        self.widgets["angle"].disabled = not quad
        self.widgets["b_scale"].disabled = not quad

    # ------------------------------------------------------------------ plots
    def _map(self, name: str, key: str, title: str, size: int, *, main: bool = False):
        s = self.state
        fig = figure(name=name, title=title, width=size, height=size, x_range=(-EXTENT, EXTENT),
                     y_range=(-EXTENT, EXTENT), tools="", toolbar_location=None, match_aspect=True,
                     sizing_mode="scale_width" if main else "fixed", min_border=4)
        mapper = LinearColorMapper(palette=PALETTE, low=0.0, high=1.0)
        fig.image(image="image", x="x", y="y", dw="dw", dh="dh", color_mapper=mapper, source=s.sources[f"heat_{key}"])
        iso_keys = ("a", "b") if main else (key,)
        for k in iso_keys:
            fig.segment("x0", "y0", "x1", "y1", color="color", line_width=1.0 if main else 0.8, line_alpha=0.8,
                        source=s.sources[f"iso_{k}"])
        pareto = {"legend_label": "Pareto set"} if main else {}
        fig.line("x", "y", source=s.sources["pareto"], color="#1b9e4b", line_width=4 if main else 2.5,
                 line_alpha=0.85, **pareto)
        if main:
            for m in METHODS:
                fig.line("x", "y", source=s.sources[f"traj_{m}"], color=METHOD_COLORS[m], line_width=2.2,
                         legend_label=METHOD_LABELS[m])
            fig.scatter("x", "y", source=s.sources["ends"], color="color", size=9, marker="diamond",
                        line_color="white")
            fig.add_layout(Arrow(end=VeeHead(size=12, fill_color="color", line_color="color"),
                                 x_start="x0", y_start="y0", x_end="x1", y_end="y1", line_color="color",
                                 line_width=3, source=s.sources["arrows"]))
            legend = fig.legend[0]
            fig.add_layout(legend, "below")      # outside the square: it must not hide the Pareto set
            legend.orientation = "horizontal"
            legend.label_text_font_size = "10px"
            legend.padding = 2
            legend.spacing = 6
            legend.click_policy = "hide"
        fig.scatter("x", "y", source=s.sources["point"], size=11 if main else 7, color="#ffd400",
                    line_color="black", line_width=1.5)
        fig.title.text_font_size = "12px" if main else "11px"
        fig.grid.visible = False
        if not main:
            fig.axis.visible = False
        fig.on_event(Tap, self._on_tap)
        return fig

    def _on_tap(self, event) -> None:
        if event.x is None or event.y is None:
            return
        self.state.tap(event.x, event.y)

    def __panel__(self):
        s = self.state
        main = self._map("arena_plot", "sum", "Click to place θ (arrows point downhill)",
                         520, main=True)
        maps = pn.FlexBox(
            *[pn.pane.Bokeh(self._map(f"map_{k}", k, t, 170)) for k, t in
              (("a", "Task A: L_A"), ("b", "Task B: L_B"), ("sum", "L_A + L_B"))],
            flex_wrap="wrap", justify_content="space-around", sizing_mode="stretch_width")
        controls = pn.Column(
            pn.pane.HTML("<b>Surface</b>", margin=(0, 5)), self.widgets["surface"], self.widgets["angle"],
            self.widgets["b_scale"],
            pn.pane.HTML("<b>Combine the two gradients</b>", margin=(8, 5, 0, 5)), self.widgets["method"],
            self.widgets["pcgrad"], self.widgets["c"],
            pn.pane.HTML("<b>Descent paths</b>", margin=(8, 5, 0, 5)), self.widgets["traj"],
            self.widgets["optimizer"], self.widgets["lr"], self.widgets["steps"],
            pn.Row(*self.buttons.values(), sizing_mode="stretch_width"), self.status,
            sizing_mode="stretch_width", min_width=240, max_width=330, styles={"flex": "1 1 260px"})
        plot = pn.Column(pn.pane.Bokeh(main, sizing_mode="stretch_width", max_width=560), self.readout,
                         sizing_mode="stretch_width", min_width=280, max_width=580, styles={"flex": "3 1 360px"})
        side = pn.Column(maps, self.traj_readout, sizing_mode="stretch_width", min_width=200,
                         styles={"flex": "1 1 220px"})
        top = pn.FlexBox(controls, plot, side, flex_wrap="wrap", gap="10px", sizing_mode="stretch_width")
        body = pn.Column(self.notices, top, common.explanation(EXPLANATION), sizing_mode="stretch_width")
        return common.page_layout(SLUG, pn.pane.HTML("<h2>Gradient Conflict Arena</h2>", sizing_mode="stretch_width"),
                                  body, query=self.query)


def create_page(query: str | dict | None = None):
    """Build the page: state restored from the URL query (or ``query``), widgets, clickable maps."""
    state = ArenaState()
    notices = common.bind_url(state, SETTINGS, query)
    view = ArenaView(state, notices=notices, query=query)
    view.animator.start()
    return view


if __name__.startswith("bokeh"):
    create_page().servable(title="Gradient Conflict Arena - MTL Playground")

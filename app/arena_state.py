"""State of the "Gradient Conflict Arena" page (app/arena.py is its view): settings, the clicked point, the maps
and the descent paths, with no widgets.

The numerics come from ``mtl_core``: the surfaces and the resumable descent from ``mtl_core.arena``, the
methods from ``mtl_core.combine``. Plot data lives in Bokeh ColumnDataSources named as listed in app/arena.py.
"""

from __future__ import annotations

import time

import numpy as np
import param
from bokeh.models import ColumnDataSource

from app.settings import Setting, lr_setting, optimizer_setting, settings_class
from mtl_core import arena as surfaces

METHOD_LABELS = {
    "sum": "Sum",
    "pcgrad": "PCGrad",
    "mgda": "MGDA",
    "cagrad": "CAGrad",
    "nash_mtl": "Nash-MTL",
    "imtl_g": "IMTL-G",
    "fairgrad": "FairGrad",
    "aligned_mtl": "Aligned-MTL",
}
METHODS = tuple(METHOD_LABELS)
METHOD_COLORS = {
    "sum": "#222222",
    "pcgrad": "#d62728",
    "mgda": "#1f77b4",
    "cagrad": "#9467bd",
    "nash_mtl": "#2ca02c",
    "imtl_g": "#ff7f0e",
    "fairgrad": "#8c564b",
    "aligned_mtl": "#e377c2",
}
# the paths Run draws by default: the four classic methods (eight paths at once hide each other)
DEFAULT_RUNS = ("sum", "pcgrad", "mgda", "cagrad")
SURFACES = ("cagrad_toy", "quadratics")
SURFACE_LABELS = {"cagrad_toy": "CAGrad toy", "quadratics": "Two quadratics"}
ARROW_COLORS = {"g_A": "#1565c0", "g_B": "#c43f00", "combined": "#111111"}  # 4.5:1 on white: the key is text
EXTENT = 10.0  # both surfaces live on [-EXTENT, EXTENT]^2
QUAD_RADIUS = EXTENT / 1.6  # RotatedQuadratics' bounds are +-1.6 radius: this makes them +-EXTENT too
GRID = 121  # heat image / marching-squares resolution (GRID x GRID)
RUN_HINT = "Press Run to draw the descent paths from the clicked point."  # the status line while no path is drawn
N_LEVELS = 11  # iso-lines per map
TICK_BUDGET = 0.04  # seconds of trajectory steps per periodic-callback tick
CHUNK = 10  # steps per run between two looks at the clock
PARETO_POINTS = 400

SETTINGS = (
    Setting(
        "surface",
        "choice",
        "cagrad_toy",
        choices=SURFACES,
        label="Surface",
        labels=SURFACE_LABELS,
        help="The CAGrad paper's toy problem, or two quadratic bowls meeting at an adjustable angle.",
    ),
    Setting(
        "angle",
        "float",
        135.0,
        0.0,
        180.0,
        step=5.0,
        label="Conflict angle (°)",
        help="Quadratics only: the angle between the two gradients at the origin (0 = agree, 180 = opposed).",
    ),
    Setting(
        "b_scale",
        "float",
        1.0,
        0.1,
        10.0,
        step=0.1,
        label="Task B scale",
        help="Quadratics only: multiplies task B's loss, so its gradients are that many times longer.",
    ),
    Setting(
        "x",
        "float",
        -3.0,
        -EXTENT,
        EXTENT,
        step=0.01,
        label="θ x",
        help="First coordinate of the parameters: type it, or click the plot to move it.",
        control="input",
    ),
    Setting(
        "y",
        "float",
        6.0,
        -EXTENT,
        EXTENT,
        step=0.01,
        label="θ y",
        help="Second coordinate of the parameters: type it, or click the plot to move it.",
        control="input",
    ),
    Setting(
        "method",
        "choice",
        "sum",
        label="Combine with",
        labels=METHOD_LABELS,
        help="How the two gradients become one update (the explanation below says what each method does).",
        control="select",
    ),
    Setting("pcgrad", "bool", False, label="PCGrad surgery", help="Shortcut for method = PCGrad (off = plain sum)."),
    Setting(
        "c",
        "float",
        0.5,
        0.0,
        1.0,
        step=0.05,
        label="CAGrad c",
        help="CAGrad's radius: how far (relative to |g0|) the update may leave the average gradient g0.",
    ),
    Setting(
        "alpha",
        "float",
        2.0,
        0.0,
        10.0,
        step=0.1,
        label="FairGrad α",
        help="FairGrad's fairness: 0 = the plain sum, 1 = Nash-MTL, large = help the worst-off task most.",
    ),
    Setting(
        "traj",
        "multi",
        DEFAULT_RUNS,
        label="Run these methods",
        labels=METHOD_LABELS,
        help="Methods whose descent paths Run draws.",
        control="boxes",
    ),
    optimizer_setting("gd", "Adam (as in the CAGrad paper's toy runs) or plain gradient descent theta -= lr d."),
    lr_setting(0.1, 0.001, 1.0, "Step size of the runs."),
    Setting("steps", "int", 500, 10, 3000, step=10, label="Steps", help="Length of each run."),
)
GEOMETRY = ("surface", "angle", "b_scale")
RUN_SETTINGS = ("traj", "optimizer", "lr", "steps", "c", "alpha")
METHOD_PARAMS = {"cagrad": "c", "fairgrad": "alpha"}  # the setting each parametrised method reads


_Settings = settings_class("_ArenaSettings", SETTINGS)


def _clear(source: ColumnDataSource) -> None:
    """Empty ``source``'s columns, unless they are empty already (then nothing is sent to the browser)."""
    if any(len(column) for column in source.data.values()):
        source.data = {name: [] for name in source.data}


# The maps' shades and iso-lines are drawn, never computed with: float32 is exact to a pixel, and it halves what they
# cost in the static site's memory snapshot, which holds each array twice (in the page and in its serialised
# document) and comes with every visit of every page (0.07 MB less of it, zstd).
DRAWN = np.float32


def _broken_line(x0, y0, x1, y1) -> dict:
    """Segments (x0, y0) -> (x1, y1) as the points of one line, a NaN after each segment (a gap in the line)."""
    gap = np.full(len(x0), np.nan)
    return {
        "x": np.column_stack([x0, x1, gap]).ravel().astype(DRAWN),
        "y": np.column_stack([y0, y1, gap]).ravel().astype(DRAWN),
    }


def _image_data(img: np.ndarray) -> dict:
    return {"image": [img.astype(DRAWN)], "x": [-EXTENT], "y": [-EXTENT], "dw": [2 * EXTENT], "dh": [2 * EXTENT]}


class ArenaState(_Settings):
    """The arena's settings, computations and plot data (no widgets).

    ``tap(x, y)`` places the parameters; ``start_runs()`` begins the descent paths and ``tick()`` grows them
    (the periodic callback calls it), ``finish_runs()`` completes them at once. ``combined()`` returns the
    current combiner's result at the clicked point. All plot data lives in ``self.sources`` (names in the docstring
    of app/arena.py).
    """

    running = param.Boolean(False, doc="True while descent paths are still growing.")
    readout = param.String("", doc="Plain-text readout lines about the clicked point.")
    traj_summary = param.String("", doc="Plain-text lines, one per descent path.")
    # from the start, not only after the first click: the line's height is then the page's from the start, and the
    # first click does not make the whole page lay itself out again (~45 ms at 4x)
    status = param.String(RUN_HINT, doc="One line about the runner.")

    def __init__(self, **params):
        super().__init__(**params)
        self.xs = np.linspace(-EXTENT, EXTENT, GRID)
        self.ys = np.linspace(-EXTENT, EXTENT, GRID)
        self.sources = {
            "arrows": ColumnDataSource(
                {k: [] for k in ("which", "gx", "gy", "x0", "y0", "x1", "y1", "color")}, name="arrow_source"
            ),
            "point": ColumnDataSource({"x": [], "y": []}, name="point_source"),
            "pareto": ColumnDataSource({"x": [], "y": []}, name="pareto_source"),
            "ends": ColumnDataSource({"x": [], "y": [], "color": [], "method": []}, name="traj_ends"),
        }
        for m in METHODS:
            self.sources[f"traj_{m}"] = ColumnDataSource({"x": [], "y": []}, name=f"traj_{m}")
        for key in ("sum", "a", "b"):
            self.sources[f"heat_{key}"] = ColumnDataSource(_image_data(np.zeros((2, 2))), name=f"heat_{key}")
            self.sources[f"iso_{key}"] = ColumnDataSource({"x": [], "y": []}, name=f"iso_{key}")
        self.runs: dict[str, surfaces.TrajectoryRun] = {}
        self._syncing = False
        self.param.watch(self._on_geometry, list(GEOMETRY))
        self.param.watch(self._on_point, ["x", "y", "c", "alpha"])
        self.param.watch(self._on_method, ["method", "pcgrad"])
        self.param.watch(self._on_run_setting, [s for s in RUN_SETTINGS if s not in ("c", "alpha")])
        self._sync_method(["method"] if self.method != "sum" else (["pcgrad"] if self.pcgrad else []))
        self._build_objective()
        self._update_point()

    # ------------------------------------------------------------------ objective and its maps
    def objective_for(self, surface: str | None = None):
        """A fresh mtl_core objective for the current (or the given) surface settings."""
        surface = surface or self.surface
        if surface == "cagrad_toy":
            return surfaces.CAGradToy()
        return surfaces.RotatedQuadratics(self.angle, radius=QUAD_RADIUS, scale=self.b_scale)

    def _build_objective(self) -> None:
        self.objective = self.objective_for()
        losses = self.objective.grid(self.xs, self.ys)  # (2, GRID, GRID)
        maps = {"a": losses[0], "b": losses[1], "sum": losses[0] + losses[1]}
        self.iso_colors = {"a": ARROW_COLORS["g_A"], "b": ARROW_COLORS["g_B"], "sum": "#555555"}
        for key, loss in maps.items():
            self.sources[f"heat_{key}"].data = _image_data(surfaces.rank_values(loss))
            x0, y0, x1, y1, _ = surfaces.iso_segments(loss, self.xs, self.ys, surfaces.iso_levels(loss, N_LEVELS))
            self.sources[f"iso_{key}"].data = _broken_line(x0, y0, x1, y1)
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
        name = METHOD_PARAMS.get(method)
        return make_combiner(method, **{name: getattr(self, name)}) if name else make_combiner(method)

    def combined(self):
        """The chosen combiner's CombineResult for the gradients at the clicked point."""
        return self.make_combiner().combine(self.objective.grads(self.theta), rng=np.random.default_rng(0))

    def _on_point(self, *_events) -> None:
        """The point or the combiner changed: old paths are stale, the arrows move."""
        self.clear_runs()
        self._update_point()

    def _on_run_setting(self, *_events) -> None:
        self.clear_runs()

    def _update_point(self) -> None:
        theta = self.theta
        G = self.objective.grads(theta)  # (2, 2), row k = dL_k/dtheta
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
        self.info = {
            "loss_a": float(losses[0]),
            "loss_b": float(losses[1]),
            "norm_a": norms["g_A"],
            "norm_b": norms["g_B"],
            "norm_d": norms["combined"],
            "cosine": cos,
            "conflict": bool(G[0] @ G[1] < 0),
            "improves_a": bool(G[0] @ d > 0),
            "improves_b": bool(G[1] @ d > 0),
            "direction": d,
            "weights": None if out.task_weights is None else [float(w) for w in out.task_weights],
            "method_info": dict(out.info),
        }
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
            f"cos(g_A, g_B) = {i['cosine']:+.3f}  →  "
            + ("CONFLICT: the tasks pull apart (g_A · g_B < 0)" if i["conflict"] else "no conflict (g_A · g_B ≥ 0)"),
            f"A small step along −d: L_A {effect(i['improves_a'], i['norm_d'])}, "
            f"L_B {effect(i['improves_b'], i['norm_d'])}.",
        ]
        if i["weights"] is not None:
            w_a, w_b = i["weights"]
            lines.append(f"d = {w_a:.3g} g_A + {w_b:.3g} g_B{self._method_note()}")
        return "\n".join(lines)

    def describe(self) -> dict[str, str]:
        """The plots in words, now (the page's text alternative; keys start the figures' names)."""
        i = self.info
        d = i["direction"]
        g = self.objective.grads(self.theta)
        point = (
            f"At θ = ({self.x:.2f}, {self.y:.2f}): L_A = {i['loss_a']:.4g}, L_B = {i['loss_b']:.4g}; "
            f"g_A = ({g[0, 0]:.3g}, {g[0, 1]:.3g}), g_B = ({g[1, 0]:.3g}, {g[1, 1]:.3g}), cosine {i['cosine']:+.2f}"
            f"{' (a conflict)' if i['conflict'] else ''}; {METHOD_LABELS[self.method]} direction d = "
            f"({d[0]:.3g}, {d[1]:.3g}): a step along -d takes L_A {'down' if i['improves_a'] else 'up'} and L_B "
            f"{'down' if i['improves_b'] else 'up'}."
        )
        paths = self.traj_summary.replace("\n", " ") if self.traj_summary else "No descent paths drawn."
        texts = {"arena": point + " " + (f"{self.status} {paths}" if self.runs else paths)}
        texts["map"] = f"Small maps of L_A, L_B and their sum, with θ at ({self.x:.2f}, {self.y:.2f})."
        return texts

    def _method_note(self) -> str:
        """What the chosen method's own numbers say at this point (after the weights line)."""
        info = self.info["method_info"]
        if self.method == "aligned_mtl" and "cond" in info:
            return f"    condition number of [g_A, g_B]: {info['cond']:.3g}"
        if self.method == "imtl_g" and "projection" in info:
            return f"    projection on each unit gradient: {info['projection']:.3g}"
        if self.method in ("nash_mtl", "fairgrad") and info.get("pareto_stationary"):
            return "    (Pareto-stationary: no step helps both tasks)"
        return ""

    # ------------------------------------------------------------------ PCGrad toggle <-> method
    def _on_method(self, *events) -> None:
        if self._syncing:
            return
        self._sync_method([e.name for e in events])
        self._on_point()

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
        # only the sources that hold a path: a click with no paths drawn would otherwise send nine empty sources
        # and have BokehJS redo each one's glyph data
        for m in METHODS:
            _clear(self.sources[f"traj_{m}"])
        _clear(self.sources["ends"])
        self.traj_summary = ""
        self.running = False
        self.status = RUN_HINT

    def start_runs(self) -> None:
        """Start one path per method in ``traj`` from the clicked point (they grow in ``tick``)."""
        self.clear_runs()
        self.runs = {
            m: surfaces.TrajectoryRun(
                self.objective,
                self.theta,
                self.make_combiner(m),
                lr=self.lr,
                steps=self.steps,
                optimizer=self.optimizer,
                rng=np.random.default_rng(0),
            )
            for m in METHODS
            if m in self.traj
        }
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
                dist = float(surfaces.pareto_distance(path[-1:], self.pareto)[0])
                what = f"stopped at step {r.t}: the step became non-finite" if r.diverged else f"{r.t} steps"
                lines.append(
                    f"{METHOD_LABELS[m]}: ended at ({path[-1, 0]:.2f}, {path[-1, 1]:.2f}), "
                    f"L_A = {losses[0]:.3g}, L_B = {losses[1]:.3g}, {dist:.2f} from the Pareto set "
                    f"({what})."
                )
        self.sources["ends"].data = ends
        self.traj_summary = "\n".join(lines)
        done = sum(r.done for r in self.runs.values())
        total = len(self.runs)
        steps = max((r.t for r in self.runs.values()), default=0)
        self.status = (
            f"Running: step {steps} / {self.steps}"
            if done < total
            else f"Done: {total} path{'s' if total != 1 else ''} from ({self.x:.2f}, {self.y:.2f})."
        )

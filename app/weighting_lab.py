"""Page 3, "Loss-Weighting Lab": the same network trained side by side with different loss weightings.

Two data settings:

* **Scale mismatch** (``mtl_core.data.make_scale_mismatch``): a regression task "value" whose target is
  ``10^k`` times a signal, and a classification task "label" read off the same signal, on the same rows. The
  regression's MSE is ~10^(2k) times the classification's cross-entropy, so with equal weights it owns the
  shared trunk's gradient.
* **Unequal sizes** (``mtl_core.data.make_unequal_tasks``): two related classification tasks with separate
  datasets, "big" (1000 rows) and "small" (``n_small`` rows). Each batch row comes from one task's dataset,
  drawn by a temperature sampler (``mtl_core.sampling.TaskSampler``) with ``P(task k) ∝ n_k^alpha``.

Each chosen weighting method (equal, uncertainty, GradNorm, DWA) trains its own copy of the same network (same
initial weights, same batches) with ``mtl_core.trainer.Trainer``; curves are drawn live from a periodic
callback. A missing-label fraction hides that share of each task's training labels (masked losses).

Stable Bokeh model names (``Bokeh.documents[0].get_model_by_name(name)`` in the browser / static-site tests):

    methods, data, scale_log10, missing, alpha, n_small, optimizer, lr, seed   the settings widgets
    train_button, pause_button, step_button, reset_button
    status          Div: "step 120 / 1000 - training" etc.
    error           Div: divergence message (empty when fine)
    summary         Div: latest test loss (and accuracy / RMSE) per method and task
    sampling_text   Div: the sampling rule and the probabilities it gives
    notices         Div: notices about clamped / ignored URL values (escaped)
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

if __name__.startswith("bokeh"):  # `panel serve app/weighting_lab.py`: make the checkout importable
    _ROOT = str(pathlib.Path(__file__).resolve().parent.parent)
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, Range1d
from bokeh.plotting import figure

from app import common
from app.settings import Setting, settings_class

SLUG = "weighting_lab"
METHODS = ("equal", "uncertainty", "gradnorm", "dwa")
METHOD_LABELS = {"equal": "Equal", "uncertainty": "Uncertainty", "gradnorm": "GradNorm", "dwa": "DWA"}
METHOD_COLORS = {"equal": "#444444", "uncertainty": "#1f77b4", "gradnorm": "#d62728", "dwa": "#2ca02c"}
DATA_LABELS = {"scale": "Scale mismatch", "unequal": "Unequal sizes"}
N_BIG = 1000          # rows of the big task in the unequal-sizes setting
N_SCALE = 400         # rows of the scale-mismatch data
TEST_FRACTION = 0.3
MAX_STEPS = 1000
STEPS_PER_TICK = 8
BATCH = 64
TRUNK = (32, 32)
BLOWUP = 1e4          # a test loss this many times its starting value counts as diverged (keeps plots readable)

SETTINGS = (
    Setting("methods", "multi", METHODS, choices=METHODS, label="Weighting methods", labels=METHOD_LABELS,
            help="Each chosen method trains its own copy of the same network, side by side."),
    Setting("data", "choice", "scale", choices=("scale", "unequal"), label="Data", labels=DATA_LABELS,
            help="Regression + classification with mismatched loss scales, or two tasks of unequal size."),
    Setting("scale_log10", "float", 2.0, 0.0, 3.0, step=0.25, label="Regression scale (log₁₀)",
            help="Scale mismatch only: the regression target is multiplied by 10^this."),
    Setting("missing", "float", 0.0, 0.0, 0.9, step=0.05, label="Missing labels",
            help="Fraction of each task's training labels hidden; masked losses average over the rest."),
    Setting("alpha", "float", 0.5, 0.0, 1.0, step=0.05, label="Sampling exponent α",
            help="Unequal sizes only: P(task k) ∝ n_k^α (α = 1 proportional to size, α = 0 uniform)."),
    Setting("n_small", "int", 50, 10, 1000, step=10, label="Small task rows",
            help="Unequal sizes only: rows of the small task (the big one has 1000)."),
    Setting("optimizer", "choice", "adam", choices=("adam", "sgd"), label="Optimizer",
            labels={"adam": "Adam", "sgd": "SGD"}, help="Adam, or plain SGD (which feels the loss scales)."),
    Setting("lr", "float", 0.01, 0.0001, 1.0, step=0.0001, label="Learning rate",
            help="Step size; changes apply at once, without a reset."),
    Setting("seed", "int", 0, 0, 9999, step=1, label="Seed", help="Seeds the data, the split, the nets and batches."),
)
RESET_ON = tuple(s.name for s in SETTINGS if s.name != "lr")


def _empty_curves() -> dict:
    return {k: [] for k in ("step", "loss_0", "loss_1", "weight_0", "weight_1", "share_0")}


def _positive(v: float) -> float:
    """Log axes cannot show 0 or negatives: those points become gaps (NaN) rather than breaking the plot."""
    v = float(v)
    return v if np.isfinite(v) and v > 0 else float("nan")


def sampling_probabilities(sizes: dict, alpha: float) -> dict:
    """{task: P(task)} of the temperature sampler, P ∝ n^alpha (from mtl_core.sampling.TaskSampler)."""
    from mtl_core.sampling import TaskSampler
    return TaskSampler(sizes, method="temperature", alpha=alpha).probabilities()


_Settings = settings_class("_WeightingLabSettings", SETTINGS)


class WeightingLabState(common.TrainingClock, _Settings):
    """Settings, data, one trainer per weighting method, and the plot data (no widgets).

    ``tick()`` runs a few steps of every run (what the periodic callback calls), ``step_once()`` exactly one,
    ``reset()`` rebuilds data and runs from the settings. Plot data lives in ``self.sources``.
    """

    max_steps, steps_per_tick = MAX_STEPS, STEPS_PER_TICK
    status = param.String("", doc="One line of plain text: step count and what is happening.")
    error = param.String("", doc="Which runs diverged and what to do, plain text; empty when fine.")
    summary = param.String("", doc="Plain text, one line per method: latest test losses.")
    sampling_text = param.String("", doc="Plain text: the sampling rule and its probabilities.")

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {f"curves_{m}": ColumnDataSource(_empty_curves(), name=f"curves_{m}") for m in METHODS}
        self.sources["sampling"] = ColumnDataSource({"task": [], "size": [], "prob": []}, name="sampling_source")
        self.sources["sampling_curve"] = ColumnDataSource({"alpha": [], "p_0": [], "p_1": []},
                                                          name="sampling_curve")
        self.sources["sampling_marker"] = ColumnDataSource({"alpha": [], "p": []}, name="sampling_marker")
        self.param.watch(self._on_reset_setting, list(RESET_ON))
        self.param.watch(self._on_lr, "lr")
        self.reset()

    # ------------------------------------------------------------------ building the runs
    @property
    def sizes(self) -> dict:
        """Rows per task of the unequal-sizes setting."""
        return {"big": N_BIG, "small": int(self.n_small)}

    def _make_data(self):
        """(train, test, tasks): train/test are a dataset (scale) or {task: dataset} (unequal)."""
        from mtl_core.data import make_scale_mismatch, make_unequal_tasks
        data_ss, split_ss, miss_ss = np.random.SeedSequence(self.seed).spawn(3)
        data_rng, split_rng, miss_rng = (np.random.default_rng(s) for s in (data_ss, split_ss, miss_ss))
        if self.data == "scale":
            full = make_scale_mismatch(N_SCALE, rng=data_rng, scale=10.0 ** self.scale_log10)
            train, test = full.split(TEST_FRACTION, rng=split_rng)
            # labels go missing in training only: the test losses stay comparable across settings
            if self.missing > 0:
                train = train.with_missing(self.missing, rng=miss_rng)
            return train, test, list(full.tasks)
        parts = make_unequal_tasks(self.sizes, rng=data_rng)
        train, test = {}, {}
        for name, ds in parts.items():
            tr, te = ds.split(TEST_FRACTION, rng=split_rng)
            train[name] = tr.with_missing(self.missing, rng=miss_rng) if self.missing > 0 else tr
            test[name] = te
        return train, test, [parts[n].tasks[0] for n in parts]

    def _make_optimizer(self):
        from mtl_core.optim import SGD, Adam
        return Adam(lr=self.lr) if self.optimizer == "adam" else SGD(lr=self.lr)

    def reset(self) -> None:
        """Draw the data and fresh, identical nets for every chosen method; clear every curve."""
        from mtl_core.nets import MultiTaskNet
        from mtl_core.sampling import TaskSampler
        from mtl_core.trainer import Trainer

        self.running = False
        self.train_data, self.test_data, self.tasks = self._make_data()
        self.task_names = [t.name for t in self.tasks]
        net_seed, train_seed = np.random.SeedSequence(self.seed).spawn(5)[3:5]
        train_seed = int(train_seed.generate_state(1)[0])
        self.runs = {}
        for m in self.methods:
            # same init for every method: differences come from the weighting alone
            net = MultiTaskNet(2, self.tasks, trunk=TRUNK, activation="tanh", rng=np.random.default_rng(net_seed))
            sampler = None
            if self.data == "unequal":
                sizes = {k: int(d.n_samples) for k, d in self.train_data.items()}
                sampler = TaskSampler(sizes, method="temperature", alpha=self.alpha)
            self.runs[m] = Trainer(net, self.train_data, weighting=m, combiner="sum",
                                   weighting_kwargs=common.WEIGHTING_KWARGS.get(m),
                                   optimizer=self._make_optimizer(), batch_size=BATCH, sampler=sampler,
                                   seed=train_seed)
        self.error = ""
        self.blown = {}
        self.initial_losses = {}
        self.steps = 0
        for m in METHODS:
            self.sources[f"curves_{m}"].data = _empty_curves()
        self._record()
        self._update_sampling()
        self._update_text()

    def _on_reset_setting(self, *_events) -> None:
        self.reset()
        self.running = bool(self.runs)  # a new setting is a new experiment: run it at once

    def _on_lr(self, event) -> None:
        for tr in self.runs.values():
            tr.optimizer.lr = event.new

    # ------------------------------------------------------------------ training
    def can_train(self) -> bool:
        return bool(self._active())   # go on while at least one run has not diverged

    def _active(self) -> list[str]:
        return [m for m in self.runs if self.diverged(m) is None]

    def diverged(self, method: str) -> str | None:
        """Why a run stopped (the trainer saw NaN/Inf, or its test loss blew up), or None."""
        return self.runs[method].diverged or self.blown.get(method)

    def _train(self, n: int) -> None:
        n = max(0, min(n, self.max_steps - self.steps))
        if n == 0 or not self._active():
            return
        for m in self._active():
            self.runs[m].run(n)
        self.steps += n
        self._record()
        bad = [(m, self.diverged(m)) for m in self.runs if self.diverged(m) is not None]
        if bad:
            lines = [f"{METHOD_LABELS[m]} diverged ({why}); its curves stop at the last good step." for m, why in bad]
            lines.append("Lower the learning rate (or the regression scale) and press Reset.")
            self.error = " ".join(lines)
        self._update_text()

    # ------------------------------------------------------------------ recording
    def test_losses(self, method: str) -> np.ndarray:
        """(2,) mean test loss of each task for one run."""
        from mtl_core.losses import loss_for
        net = self.runs[method].net
        out = np.zeros(len(self.tasks))
        for k, spec in enumerate(self.tasks):
            test = self.test_data if self.data == "scale" else self.test_data[spec.name]
            pred = net.forward(test.x)[spec.name]
            out[k] = loss_for(spec)(pred, test.targets[spec.name], test.masks[spec.name])[0]
        return out

    def _record(self) -> None:
        for m, tr in self.runs.items():
            if self.diverged(m) is not None:
                continue
            losses = self.test_losses(m)
            start = self.initial_losses.setdefault(m, losses.copy())
            grown = ~np.isfinite(losses) | (losses > BLOWUP * np.maximum(start, 1e-12))
            if grown.any():
                k = int(np.argmax(grown))
                self.blown[m] = (f"the test loss of task '{self.task_names[k]}' grew over {BLOWUP:.0e} times its "
                                 f"starting value by step {self.steps}")
                continue
            if tr.history:
                rec = tr.history[-1]
                weights, batch_losses = np.asarray(rec.weights, float), np.asarray(rec.losses, float)
            else:  # before the first step: the weights the method would start with
                weights, batch_losses = self._initial_weights(m), losses
            weighted = weights * batch_losses
            share = weighted[0] / weighted.sum() if weighted.sum() > 0 else float("nan")
            self.sources[f"curves_{m}"].stream({
                "step": [self.steps], "loss_0": [_positive(losses[0])], "loss_1": [_positive(losses[1])],
                "weight_0": [_positive(weights[0])], "weight_1": [_positive(weights[1])],
                "share_0": [float(share)]})

    def _initial_weights(self, method: str) -> np.ndarray:
        w = self.runs[method].weighting
        if method == "uncertainty":
            return 0.5 * np.exp(-np.asarray(w.log_var, float))
        if method == "gradnorm":
            return np.asarray(w.w, float).copy()
        return np.ones(len(self.tasks))

    def _update_sampling(self) -> None:
        sizes = self.sizes
        probs = sampling_probabilities(sizes, self.alpha)
        names = list(sizes)
        self.sources["sampling"].data = {"task": names, "size": [sizes[k] for k in names],
                                         "prob": [probs[k] for k in names]}
        alphas = np.linspace(0.0, 1.0, 41)
        curve = np.array([[sampling_probabilities(sizes, a)[k] for k in names] for a in alphas])
        self.sources["sampling_curve"].data = {"alpha": alphas, "p_0": curve[:, 0], "p_1": curve[:, 1]}
        self.sources["sampling_marker"].data = {"alpha": [self.alpha, self.alpha],
                                                "p": [probs[names[0]], probs[names[1]]]}
        uniform, prop = 1.0 / len(names), sizes["small"] / sum(sizes.values())
        where = ("" if self.data == "unequal" else
                 " (These are used when Data = Unequal sizes; in the scale-mismatch data every row has both "
                 "labels, so there is nothing to sample.)")
        self.sampling_text = (
            f"P(small) = {probs['small']:.3f}, P(big) = {probs['big']:.3f} at α = {self.alpha:.2f}, "
            f"for {sizes['big']} vs {sizes['small']} rows. Uniform (α = 0) would give {uniform:.2f} each; "
            f"proportional (α = 1) gives the small task only {prop:.3f}." + where)

    # ------------------------------------------------------------------ readouts
    def latest(self, method: str) -> dict:
        """Last recorded values of a run's curves ({column: value})."""
        data = self.sources[f"curves_{method}"].data
        return {k: data[k][-1] for k in data if len(data[k])}

    def _update_text(self) -> None:
        state = ("diverged" if self.runs and not self._active() else "training" if self.running else
                 "finished" if self.steps >= self.max_steps else "paused" if self.steps else "ready")
        self.status = f"Step {self.steps} / {self.max_steps} - {state}"
        if not self.runs:
            self.status = "Pick at least one weighting method to train."
        t0, t1 = self.task_names
        lines = []
        for m in self.runs:
            last = self.latest(m)
            tail = " (diverged)" if self.diverged(m) else ""
            lines.append(f"{METHOD_LABELS[m]}: test loss {t0} = {last['loss_0']:.4g}, {t1} = {last['loss_1']:.4g}; "
                         f"weights {last['weight_0']:.3g} / {last['weight_1']:.3g}; "
                         f"{t0}'s share of the weighted loss {100 * last['share_0']:.0f}%{tail}")
        self.summary = "\n".join(lines)

    @param.depends("running", watch=True)
    def _on_running(self) -> None:
        self._update_text()


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
"""


class WeightingLabView(pn.viewable.Viewer):
    """Widgets, plots and the live-training loop around a :class:`WeightingLabState`."""

    state = param.ClassSelector(class_=WeightingLabState)

    def __init__(self, state: WeightingLabState | None = None, notices=(), query=None, **params):
        super().__init__(state=state or WeightingLabState(), **params)
        self.query = query
        s = self.state
        wide = {"sizing_mode": "stretch_width"}
        self.widgets = {
            "methods": pn.widgets.CheckButtonGroup.from_param(
                s.param.methods, options={METHOD_LABELS[k]: k for k in METHODS}, **wide),
            "data": pn.widgets.RadioButtonGroup.from_param(
                s.param.data, options={v: k for k, v in DATA_LABELS.items()}, **wide),
            "scale_log10": pn.widgets.FloatSlider.from_param(s.param.scale_log10, **wide),
            "missing": pn.widgets.FloatSlider.from_param(s.param.missing, **wide),
            "alpha": pn.widgets.FloatSlider.from_param(s.param.alpha, **wide),
            "n_small": pn.widgets.IntSlider.from_param(s.param.n_small, **wide),
            "optimizer": pn.widgets.RadioButtonGroup.from_param(
                s.param.optimizer, options={"Adam": "adam", "SGD": "sgd"}, **wide),
            "lr": pn.widgets.FloatInput.from_param(s.param.lr, **wide),
            "seed": pn.widgets.IntInput.from_param(s.param.seed, **wide),
        }
        for name, w in self.widgets.items():
            common.bokeh_name(w, name)
        self.buttons = common.transport_buttons(s, pause_width=90)

        self.notices = common.bokeh_name(common.notices_pane(), "notices")
        self.notices.object = common.render_notices(notices)
        self.error = common.named_html("error", stylesheets=[common.CSS])
        self.status = common.named_html("status")
        self.summary = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width",
                                                      styles={"font-size": "0.85em"}), "summary")
        self.sampling_text = common.bokeh_name(pn.pane.HTML("", sizing_mode="stretch_width",
                                                            styles={"font-size": "0.85em"}), "sampling_text")
        s.param.watch(self._refresh_text, ["status", "summary", "error", "sampling_text"])
        s.param.watch(self._refresh_enabled, ["data"])
        s.param.watch(self._refresh_titles, ["data", "scale_log10", "n_small"])
        self.figures = {}
        self._refresh_text()
        self._refresh_enabled()
        self.animator = common.Animator(s)

    def _refresh_text(self, *_events) -> None:
        s = self.state
        self.status.object = f"<b>{common.escape(s.status)}</b>"
        self.summary.object = "".join(f"<div>{common.escape(line)}</div>" for line in s.summary.splitlines())
        self.error.object = common.render_notices([s.error], error=True) if s.error else ""
        self.sampling_text.object = f"<div>{common.escape(s.sampling_text)}</div>"

    def _refresh_enabled(self, *_events) -> None:
        scale = self.state.data == "scale"
        self.widgets["scale_log10"].disabled = not scale
        self.widgets["alpha"].disabled = scale
        self.widgets["n_small"].disabled = scale

    def _task_title(self, k: int) -> str:
        s = self.state
        name = s.task_names[k]
        if s.data == "scale":
            kind = f"regression ×{10 ** s.scale_log10:.4g}, MSE" if k == 0 else "classification, cross-entropy"
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
        fig = figure(name=name, title=title, height=230, min_width=260, sizing_mode="stretch_width",
                     y_axis_type="log" if log else "linear", tools="pan,wheel_zoom,reset", toolbar_location=None,
                     x_axis_label="step", **kw)
        fig.title.text_font_size = "11px"
        return fig

    def _legend(self, fig, location="top_right") -> None:
        fig.legend.location = location
        fig.legend.label_text_font_size = "9px"
        fig.legend.background_fill_alpha = 0.6
        fig.legend.click_policy = "hide"
        fig.legend.spacing = 0
        fig.legend.padding = 3

    def _plots(self):
        s = self.state
        figs = {}
        for k in (0, 1):
            fig = self._curve_figure(f"loss_figure_{k}", self._task_title(k))
            for m in METHODS:
                fig.line("step", f"loss_{k}", source=s.sources[f"curves_{m}"], color=METHOD_COLORS[m],
                         line_width=2, legend_label=METHOD_LABELS[m])
            self._legend(fig)
            figs[f"loss_{k}"] = fig
        fig = self._curve_figure("weight_figure", "Loss weights (solid: first task, dashed: second)")
        for m in METHODS:
            src = s.sources[f"curves_{m}"]
            fig.line("step", "weight_0", source=src, color=METHOD_COLORS[m], line_width=2,
                     legend_label=METHOD_LABELS[m])
            fig.line("step", "weight_1", source=src, color=METHOD_COLORS[m], line_width=2, line_dash="dashed",
                     legend_label=METHOD_LABELS[m])
        self._legend(fig, "bottom_left")
        figs["weights"] = fig
        fig = self._curve_figure("share_figure", "", log=False, y_range=Range1d(-0.02, 1.02))
        for m in METHODS:
            fig.line("step", "share_0", source=s.sources[f"curves_{m}"], color=METHOD_COLORS[m], line_width=2,
                     legend_label=METHOD_LABELS[m])
        self._legend(fig, "bottom_left")
        figs["share"] = fig
        fig = figure(name="sampling_figure", title="Sampling: P(task) ∝ n^α", height=230, min_width=240,
                     sizing_mode="stretch_width", x_range=(0, 1), y_range=(0, 1), tools="", toolbar_location=None,
                     x_axis_label="α (0 = uniform, 1 = proportional)", y_axis_label="probability")
        fig.line("alpha", "p_0", source=s.sources["sampling_curve"], color="#555555", line_width=2,
                 legend_label=f"big ({N_BIG} rows)")
        fig.line("alpha", "p_1", source=s.sources["sampling_curve"], color="#e65100", line_width=2,
                 legend_label="small")
        fig.scatter("alpha", "p", source=s.sources["sampling_marker"], size=10, color="#ffd400",
                    line_color="black")
        self._legend(fig, "center_right")
        fig.title.text_font_size = "11px"
        figs["sampling"] = fig
        self.figures = figs
        self._refresh_titles()
        return figs

    def __panel__(self):
        figs = self._plots()
        # 2 x 2 on a wide screen, one column on a phone
        curves = common.flex_row(
            *[common.flex_item(pn.pane.Bokeh(figs[k], sizing_mode="stretch_width"), basis="45%", min_width=260)
              for k in ("loss_0", "loss_1", "weights", "share")])
        controls = pn.Column(
            pn.Row(*self.buttons.values(), sizing_mode="stretch_width", styles={"flex-wrap": "wrap"}),
            self.status, self.widgets["methods"], self.widgets["data"], self.widgets["scale_log10"],
            self.widgets["missing"], self.widgets["alpha"], self.widgets["n_small"], self.widgets["optimizer"],
            self.widgets["lr"], self.widgets["seed"],
            sizing_mode="stretch_width", min_width=240, max_width=340, styles={"flex": "1 1 260px"})
        sampling = pn.Column(pn.pane.Bokeh(figs["sampling"], sizing_mode="stretch_width", max_width=560),
                             self.sampling_text, sizing_mode="stretch_width")
        side = pn.Column(self.error, self.summary, sampling, sizing_mode="stretch_width", min_width=280,
                         styles={"flex": "3 1 420px"})
        top = pn.FlexBox(controls, side, flex_wrap="wrap", gap="10px", sizing_mode="stretch_width")
        body = pn.Column(self.notices, top, curves, common.explanation(EXPLANATION), sizing_mode="stretch_width")
        return common.page_layout(SLUG, pn.pane.HTML("<h2>Loss-Weighting Lab</h2>", sizing_mode="stretch_width"),
                                  body, query=self.query)


def create_page(query: str | dict | None = None, *, autoplay: bool = True):
    """Build the page: state restored from the URL query (or ``query``), widgets, plots, live training."""
    state = WeightingLabState()
    notices = common.bind_url(state, SETTINGS, query)
    view = WeightingLabView(state, notices=notices, query=query)
    state.running = autoplay
    view.animator.start()
    return view


if __name__.startswith("bokeh"):
    create_page().servable(title="Loss-Weighting Lab - MTL Playground")

"""State of the "Shared vs Separate" page (app/shared_separate.py is its view): settings, the two models, their
trainers and the plot data, with no widgets.

Models, data, training and losses come from ``mtl_core``; plot data lives in Bokeh ColumnDataSources named as
listed in app/shared_separate.py.
"""

from __future__ import annotations

import numpy as np
import param
from bokeh.models import ColumnDataSource

from app import common
from app.settings import Setting, lr_setting, seed_setting, settings_class

MODELS = ("shared", "separate")
TASK_LETTERS = ("A", "B")
MAX_STEPS = 1000
STEPS_PER_TICK = 6  # steps per 100-ms tick to start with; common.Animator adapts it to keep ticks short
IMAGE_EVERY = 2  # redraw the four maps every other tick: they are most of the bytes sent to the browser
N_TEST = 1000  # fresh held-out points: a test accuracy good to about +-1.5 points, so the verdict is real
GRID = 48  # decision-boundary image resolution (GRID x GRID)
EXTENT = 3.5  # the maps show [-EXTENT, EXTENT]^2: inputs are N(0, I), so almost every point is inside
BATCH = 64
SMOOTH = 0.9  # running-mean factor of the displayed cosine

SETTINGS = (
    Setting(
        "relatedness",
        "float",
        0.8,
        0.0,
        1.0,
        step=0.05,
        label="Task relatedness",
        help="1 = both tasks have the same labels; 0 = task B's pattern is rotated so its labels are "
        "independent of task A's.",
    ),
    Setting(
        "hidden",
        "int",
        8,
        2,
        64,
        step=1,
        label="Hidden width",
        help="Units per hidden layer (two layers). Each separate net gets its own layers of this width.",
    ),
    lr_setting(0.03, 0.001, 0.5, "Adam step size; changes apply at once, without a reset."),
    Setting(
        "n_samples",
        "int",
        200,
        20,
        1000,
        step=10,
        label="Training points",
        help="Labelled points both models learn from; they are scored on 1000 fresh points.",
    ),
    Setting(
        "noise",
        "float",
        0.1,
        0.0,
        0.5,
        step=0.01,
        label="Label noise",
        help="Probability that a label is flipped, independently per task.",
    ),
    seed_setting("Seeds the data, the split and both nets."),
)
RESET_ON = ("relatedness", "hidden", "n_samples", "noise", "seed")  # everything but lr rebuilds the run

CLASS_COLORS = np.array(["#3b6fb6", "#c0392b"])  # label 0, label 1 (the colours of the training points)


def _curve_columns() -> list[str]:
    return [f"{m}_{s}_{t}" for m in MODELS for s in ("train", "test") for t in ("a", "b")]


def _empty_curves() -> dict:
    return {"step": [], **{c: [] for c in _curve_columns()}}


def _image_data(img: np.ndarray) -> dict:
    """A decision-boundary image (GRID, GRID) placed on the square the maps show."""
    return {"image": [img], "x": [-EXTENT], "y": [-EXTENT], "dw": [2 * EXTENT], "dh": [2 * EXTENT]}


_Settings = settings_class("_SharedSeparateSettings", SETTINGS)


class SharedSeparateState(common.TrainingClock, _Settings):
    """Settings, the two models, their trainers and the plot data of the page (no widgets).

    ``tick()`` runs a few training steps (what the periodic callback calls); ``step_once()`` runs exactly one;
    ``reset()`` rebuilds data and models from the settings. All plot data lives in the ColumnDataSources of
    ``self.sources`` (names and columns in the docstring of app/shared_separate.py).
    """

    max_steps, steps_per_tick, reset_on = MAX_STEPS, STEPS_PER_TICK, RESET_ON
    verdict = param.String("", doc="Plain-words comparison of the two models (plain text, one line per task).")

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {
            "acc": ColumnDataSource(_empty_curves(), name="acc_source"),
            "loss": ColumnDataSource(_empty_curves(), name="loss_source"),
            "cosine": ColumnDataSource({"step": [], "cosine": [], "smooth": []}, name="cosine_source"),
            "points": ColumnDataSource({"x0": [], "x1": [], "color_a": [], "color_b": []}, name="points_source"),
        }
        for m in MODELS:
            for t in ("a", "b"):
                self.sources[f"heat_{m}_{t}"] = ColumnDataSource(
                    _image_data(np.full((GRID, GRID), 0.5, dtype=np.float32)), name=f"heat_{m}_{t}"
                )
        # a fixed square grid (not fitted to the data) so maps stay comparable when a setting changes
        g = np.linspace(-EXTENT, EXTENT, GRID)
        xx, yy = np.meshgrid(g, g)  # row i of the image is y = g[i] (Bokeh draws row 0 at the bottom)
        self._grid = np.column_stack([xx.ravel(), yy.ravel()])
        self._ticks = 0
        self.reset()

    # ------------------------------------------------------------------ building the run
    def reset(self) -> None:
        """Draw the data and fresh models from the current settings and clear every curve."""
        from mtl_core.data import make_related_classification
        from mtl_core.nets import MultiTaskNet, SeparateNets
        from mtl_core.optim import Adam
        from mtl_core.trainer import Trainer

        data_ss, net_ss, train_ss = np.random.SeedSequence(self.seed).spawn(3)
        n = self.n_samples
        data = make_related_classification(
            n + N_TEST, rng=np.random.default_rng(data_ss), relatedness=self.relatedness, noise=self.noise
        )
        self.train_data, self.test_data = data.subset(np.arange(n)), data.subset(np.arange(n, n + N_TEST))
        self.task_names = list(data.task_names)
        # both models start from the same seed: the comparison is about sharing, not about a lucky init
        trunk = (self.hidden, self.hidden)
        self.nets = {
            "shared": MultiTaskNet(2, data.tasks, trunk=trunk, activation="tanh", rng=np.random.default_rng(net_ss)),
            "separate": SeparateNets(2, data.tasks, trunk=trunk, activation="tanh", rng=np.random.default_rng(net_ss)),
        }
        train_seed = int(train_ss.generate_state(1)[0])
        self.trainers = {
            m: Trainer(
                net,
                self.train_data,
                weighting="equal",
                combiner="sum",
                optimizer=Adam(lr=self.lr),
                batch_size=BATCH,
                seed=train_seed,
            )
            for m, net in self.nets.items()
        }
        self._smooth = None
        self.error = ""
        self._fill_points()
        self.sources["cosine"].data = {"step": [], "cosine": [], "smooth": []}
        self.steps = 0
        first = {"acc": _empty_curves(), "loss": _empty_curves()}
        self._append_scores(first)  # the step-0 point: untrained models
        for key, data in first.items():
            self.sources[key].data = data
        self._update_images()
        self._update_text()

    def _fill_points(self) -> None:
        tr = self.train_data  # only the training points: 1000 test points would hide the boundary
        cols = {"x0": tr.x[:, 0], "x1": tr.x[:, 1]}
        for t in self.task_names:
            cols[f"color_{t}"] = CLASS_COLORS[np.asarray(tr.targets[t]).astype(int)].tolist()
        self.sources["points"].data = cols

    # ------------------------------------------------------------------ training
    def optimizers(self) -> list:
        return [tr.optimizer for tr in self.trainers.values()]

    def _train(self, n: int) -> None:
        rows = {"acc": _empty_curves(), "loss": _empty_curves(), "cosine": {"step": [], "cosine": [], "smooth": []}}
        for _ in range(max(0, min(n, self.max_steps - self.steps))):
            recs = {m: tr.step() for m, tr in self.trainers.items()}
            bad = [r.diverged for r in recs.values() if r.diverged]
            if bad:
                self.error = (
                    f"Training diverged: {bad[0]}. The curves stop at the last good step; "
                    "lower the learning rate and press Reset."
                )
                self.running = False
                break
            self.steps += 1
            self._append_cosine(rows["cosine"], float(recs["shared"].cosine[0, 1]))
        if rows["cosine"]["step"]:
            # scoring 2 models on train + 1000 test points costs more than the steps: once per tick is enough
            self._append_scores(rows)
            for key, new in rows.items():  # one stream per source per tick, not one per step
                if new["step"]:
                    self.sources[key].stream(new)
        self._ticks += 1
        if n == 1 or self._ticks % IMAGE_EVERY == 0 or not self.running:
            self._update_images()
        self._update_text()

    def _evaluate(self, net, data) -> tuple[np.ndarray, np.ndarray]:
        """Per-task (accuracy, loss) of ``net`` on ``data``, each shape (2,)."""
        from mtl_core.losses import bce_with_logits

        preds = net.forward(data.x)
        acc, loss = np.zeros(2), np.zeros(2)
        for k, t in enumerate(self.task_names):
            z, y = np.asarray(preds[t], float).reshape(-1), np.asarray(data.targets[t], float)
            acc[k] = np.mean((z > 0) == (y > 0.5))
            loss[k] = bce_with_logits(z, y)[0]  # NaN for a model that has blown up: _append_scores skips it
        return acc, loss

    def _append_scores(self, rows: dict) -> None:
        """Evaluate both models now and append one point at the current step to the acc/loss ``rows``.

        Nothing is appended if a score is not finite (a model that has just blown up): no NaN reaches a plot.
        """
        point = {"acc": {}, "loss": {}}
        for m, net in self.nets.items():
            for split, data in (("train", self.train_data), ("test", self.test_data)):
                acc, loss = self._evaluate(net, data)
                for k, t in enumerate(self.task_names):
                    point["acc"][f"{m}_{split}_{t}"] = float(acc[k])
                    point["loss"][f"{m}_{split}_{t}"] = float(loss[k])
        if not all(np.isfinite(list(p.values())).all() for p in point.values()):
            return
        for key, values in point.items():
            rows[key]["step"].append(self.steps)
            for col, v in values.items():
                rows[key][col].append(v)

    def _append_cosine(self, rows: dict, cosine: float) -> None:
        self._smooth = cosine if self._smooth is None else SMOOTH * self._smooth + (1 - SMOOTH) * cosine
        for col, v in (("step", self.steps), ("cosine", cosine), ("smooth", self._smooth)):
            rows[col].append(v)

    def _update_images(self) -> None:
        for m, net in self.nets.items():
            preds = net.forward(self._grid)
            for t in self.task_names:
                z = np.asarray(preds[t], float).reshape(GRID, GRID)
                if not np.all(np.isfinite(z)):
                    continue  # keep the last good map of a model that has blown up
                prob = (1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))).astype(np.float32)  # float32: half the bytes
                self.sources[f"heat_{m}_{t}"].data = _image_data(prob)

    # ------------------------------------------------------------------ readouts
    def latest(self, metric: str = "acc", split: str = "test") -> dict:
        """{(model, task): last value} of a curve, e.g. latest()[("shared", "a")] = test accuracy."""
        data = self.sources[metric].data
        return {(m, t): float(data[f"{m}_{split}_{t}"][-1]) for m in MODELS for t in self.task_names}

    def _update_text(self) -> None:
        self.status = self.status_line()
        if self.steps == 0:
            self.verdict = "No training yet: press Train (or Step) and watch both models learn."
            return
        acc = self.latest("acc", "test")
        lines = []
        for letter, t in zip(TASK_LETTERS, self.task_names, strict=True):
            sh, se = 100 * acc[("shared", t)], 100 * acc[("separate", t)]
            gap = sh - se
            if abs(gap) < 0.5:
                lines.append(f"Task {letter}: a draw ({sh:.1f}% vs {se:.1f}% test accuracy).")
            else:
                winner = "the shared trunk wins" if gap > 0 else "separate nets win"
                lines.append(
                    f"Task {letter}: {winner} by {abs(gap):.1f} points of test accuracy "
                    f"({sh:.1f}% shared vs {se:.1f}% separate)."
                )
        cos = self.sources["cosine"].data["cosine"][-50:]
        if cos:
            c = round(float(np.mean(cos)), 2) + 0.0  # + 0.0: no "-0.00"
            mood = (
                "mostly agree: a step for one task also helps the other"
                if c > 0.1
                else "pull the trunk in opposite directions: negative transfer"
                if c < -0.1
                else "want different things from the trunk and compete for its units"
            )
            lines.append(f"Trunk gradients over the last {len(cos)} steps: mean cosine {c:+.2f} - the tasks {mood}.")
        self.verdict = "\n".join(lines)

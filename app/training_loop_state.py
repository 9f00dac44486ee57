"""State of the "Training Loop" page (app/training_loop.py is its view): settings, the net, its Trainer and the
plot data, with no widgets.

Data, net, weighting, combiner, training and metrics come from ``mtl_core``; plot data lives in the Bokeh
ColumnDataSource ``log_source`` described in app/training_loop.py.
"""

from __future__ import annotations

import numpy as np
import param
from bokeh.models import ColumnDataSource

from app import common
from app.settings import Setting, lr_setting, seed_setting, settings_class

MAX_STEPS = 1500
STEPS_PER_TICK = 5  # steps per 100-ms tick to start with; common.Animator adapts it
LOG_ROWS = 12  # rows of the step log
EVAL_EVERY = 10  # test-set scores refresh every this many steps
N_TRAIN, N_TEST = 400, 1000
BATCH = 64
PROBLEMS = {
    "related": "Two related classifications (same inputs)",
    "scale_mismatch": "Regression (scale x100) + classification",
}
WEIGHTING_LABELS = {
    "equal": "equal (w = 1)",
    "uncertainty": "uncertainty (Kendall et al.)",
    "gradnorm": "GradNorm",
    "dwa": "DWA (loss ratios)",
    "loss_norm": "loss normalisation",
}
COMBINER_LABELS = {
    "sum": "sum (plain)",
    "pcgrad": "PCGrad",
    "mgda": "MGDA",
    "cagrad": "CAGrad",
    "nash_mtl": "Nash-MTL",
    "imtl_g": "IMTL-G",
    "fairgrad": "FairGrad (α = 2)",
    "aligned_mtl": "Aligned-MTL",
}

SETTINGS = (
    Setting(
        "problem",
        "choice",
        "related",
        labels=PROBLEMS,
        label="Problem",
        help="Two related yes/no tasks, or a x100-scaled regression next to a yes/no task.",
        control="select",
    ),
    Setting(
        "weighting",
        "choice",
        "uncertainty",
        labels=WEIGHTING_LABELS,
        label="Loss weighting",
        help="How the per-task losses are weighted at each step.",
        control="select",
    ),
    Setting(
        "combiner",
        "choice",
        "pcgrad",
        labels=COMBINER_LABELS,
        label="Gradient combination",
        help="How the weighted trunk gradients become one update.",
        control="select",
    ),
    Setting(
        "relatedness",
        "float",
        0.3,
        0.0,
        1.0,
        step=0.05,
        label="Task relatedness",
        help="Related problem only: 1 = same labels, 0 = independent labels (more conflict).",
    ),
    Setting("hidden", "int", 16, 4, 64, step=1, label="Hidden width", help="Units per trunk layer (two layers)."),
    lr_setting(0.01, 0.0005, 0.3, "Adam step size; changes apply at once, without a reset."),
    seed_setting("Seeds the data, the net and the batches."),
)
RESET_ON = ("problem", "weighting", "combiner", "relatedness", "hidden", "seed")
LOG_COLUMNS = ("step", "loss_0", "loss_1", "weight_0", "weight_1", "cosine", "projected", "total")

_Settings = settings_class("_TrainingLoopSettings", SETTINGS)


def _empty_log() -> dict:
    return {c: [] for c in LOG_COLUMNS}


class TrainingLoopState(common.TrainingClock, _Settings):
    """Settings, the net, its Trainer and the plot data of the page (no widgets).

    ``tick()`` runs a few steps (the periodic callback), ``step_once()`` exactly one, ``reset()`` rebuilds the
    run. ``records`` holds the trainer's StepRecords; ``sources["log"]`` the plotted columns.
    """

    max_steps, steps_per_tick, reset_on = MAX_STEPS, STEPS_PER_TICK, RESET_ON
    scores = param.Dict({}, doc="Latest test-set metrics {task: {metric: value}}.")

    def __init__(self, **params):
        super().__init__(**params)
        self.sources = {"log": ColumnDataSource(_empty_log(), name="log_source")}
        self.reset()

    def reset(self) -> None:
        """Fresh data, net, weighting and combiner from the current settings; clears the log."""
        from mtl_core.data import make_related_classification, make_scale_mismatch
        from mtl_core.nets import MultiTaskNet
        from mtl_core.optim import Adam
        from mtl_core.trainer import Trainer

        data_ss, net_ss, train_ss = np.random.SeedSequence(self.seed).spawn(3)
        rng = np.random.default_rng(data_ss)
        n = N_TRAIN + N_TEST
        if self.problem == "related":
            data = make_related_classification(n, rng=rng, relatedness=self.relatedness, noise=0.1)
        else:
            data = make_scale_mismatch(n, rng=rng, scale=100.0, noise=0.1)
        self.train_data, self.test_data = data.subset(np.arange(N_TRAIN)), data.subset(np.arange(N_TRAIN, n))
        self.tasks = list(data.tasks)
        self.task_names = [t.name for t in self.tasks]
        self.net = MultiTaskNet(
            data.in_dim,
            data.tasks,
            trunk=(self.hidden, self.hidden),
            activation="tanh",
            rng=np.random.default_rng(net_ss),
        )
        self.trainer = Trainer(
            self.net,
            self.train_data,
            weighting=self.weighting,
            combiner=self.combiner,
            weighting_kwargs=common.WEIGHTING_KWARGS.get(self.weighting),
            optimizer=Adam(lr=self.lr),
            batch_size=BATCH,
            seed=int(train_ss.generate_state(1)[0]),
        )
        self.records = []
        self.error = ""
        self.steps = 0
        self.sources["log"].data = _empty_log()
        self._score()
        self._update_text()

    # ------------------------------------------------------------------ training
    def optimizers(self) -> list:
        return [self.trainer.optimizer]

    def _train(self, n: int) -> None:
        rows = _empty_log()
        for _ in range(max(0, min(n, self.max_steps - self.steps))):
            rec = self.trainer.step()
            if rec.diverged:
                self.error = (
                    f"Training diverged: {rec.diverged}. The curves stop at the last good step; "
                    "lower the learning rate and press Reset."
                )
                self.running = False
                break
            self.steps += 1
            self.records.append(rec)
            for key, value in self._row(rec).items():
                rows[key].append(value)
            if self.steps % EVAL_EVERY == 0:
                self._score()
        if rows["step"]:
            self.sources["log"].stream(rows)
        self._update_text()

    def _row(self, rec) -> dict:
        return {
            "step": rec.step + 1,
            "loss_0": float(rec.losses[0]),
            "loss_1": float(rec.losses[1]),
            "weight_0": float(rec.weights[0]),
            "weight_1": float(rec.weights[1]),
            "cosine": float(rec.cosine[0, 1]),
            "projected": int(rec.combine_info.get("n_projections", 0)),
            "total": float(rec.total),
        }

    def _score(self) -> None:
        """Test-set accuracy (yes/no tasks) or RMSE (regression) of every task.

        Only these two numbers are shown, so the page asks mtl_core.metrics for them alone rather than the
        full Trainer.evaluate (F1 and calibration too), which keeps each tick short in the browser.
        """
        from mtl_core.metrics import accuracy, rmse

        preds = self.net.forward(self.test_data.x)
        scores = {}
        for spec in self.tasks:
            z, y = preds[spec.name], self.test_data.targets[spec.name]
            if spec.kind == "regression":
                scores[spec.name] = {"rmse": float(rmse(z, y))}
            else:
                scores[spec.name] = {"accuracy": float(accuracy(z, y))}
        self.scores = scores

    # ------------------------------------------------------------------ readouts (plain text / data)
    def log_rows(self, n: int = LOG_ROWS) -> list[dict]:
        """The last ``n`` log rows, newest first (what the step-log table shows)."""
        data = self.sources["log"].data
        count = len(data["step"])
        return [{c: data[c][i] for c in LOG_COLUMNS} for i in range(count - 1, max(count - n, 0) - 1, -1)]

    def describe(self) -> dict[str, str]:
        """The plots in words, now (the page's text alternative; keys start the figures' names)."""
        texts = {"status": f"{self.status_line()}."}
        rows = self.log_rows(1)
        if not rows:
            texts["loss"] = "No training yet: the curves are empty."
            return texts
        row, names = rows[0], self.task_names
        texts["loss"] = (
            "Task losses - " + ", ".join(f"{n} {float(row[f'loss_{k}']):.4g}" for k, n in enumerate(names)) + "."
        )
        texts["weight"] = (
            "Loss weights - " + ", ".join(f"{n} {float(row[f'weight_{k}']):.3g}" for k, n in enumerate(names)) + "."
        )
        cos = float(row["cosine"])
        texts["cosine"] = f"Cosine of the weighted trunk gradients at step {row['step']}: {cos:+.2f}" + (
            " (a conflict)." if cos < 0 else "."
        )
        texts["scores"] = "Test scores - " + "; ".join(self.score_lines()) + "."
        return texts

    def score_lines(self) -> list[str]:
        lines = []
        for spec in self.tasks:
            m = self.scores.get(spec.name, {})
            if spec.kind == "regression":
                lines.append(f"{spec.name}: test RMSE {m.get('rmse', float('nan')):.2f} (targets scaled x100)")
            else:
                lines.append(f"{spec.name}: test accuracy {100 * m.get('accuracy', float('nan')):.1f}%")
        return lines

"""Export (app/export.py): the history CSV has one row per step and parses, the .npz loads without pickle and holds
net.params, and the "Copy as Python" script, run as printed in a fresh CPython that cannot import app, panel,
bokeh or param, ends with the page's final losses (to 1e-9) on every training page."""

from __future__ import annotations

import csv
import io
import math
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

from app import export
from app.architectures_state import ArchitecturesState
from app.arena_state import ArenaState
from app.auxiliary_state import AuxiliaryState
from app.shared_separate_state import SharedSeparateState
from app.training_loop_state import TrainingLoopState
from app.weighting_lab_state import WeightingLabState

ROOT = pathlib.Path(__file__).resolve().parent.parent
# the script may use numpy and mtl_core only: these imports fail inside the subprocess
RUN_ISOLATED = (
    "import sys\n"
    "for name in ('app', 'panel', 'bokeh', 'param', 'pandas', 'scipy'):\n"
    "    sys.modules[name] = None\n"
    "exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'), {'__name__': '__main__'})\n"
)

# (state class, settings): every training page, and the settings that take another path through its script
RUNS = [
    (SharedSeparateState, {}),
    (SharedSeparateState, {"relatedness": 0.2, "hidden": 5, "n_samples": 60, "noise": 0.3, "seed": 7}),
    (ArchitecturesState, {}),
    (ArchitecturesState, {"branch": 0, "hidden": 6, "seed": 3}),
    (TrainingLoopState, {}),
    (TrainingLoopState, {"problem": "scale_mismatch", "weighting": "gradnorm", "combiner": "mgda", "seed": 2}),
    (WeightingLabState, {}),
    (WeightingLabState, {"data": "unequal", "optimizer": "adam", "missing": 0.3, "alpha": 0.2, "n_small": 30}),
    (WeightingLabState, {"methods": ["uncertainty", "dwa"], "scale_log10": 1.0, "missing": 0.2}),
    (AuxiliaryState, {}),
    (AuxiliaryState, {"aux_kind": "regression", "deep": True, "l2": 0.002, "dropout": 0.2, "main_from": 10}),
]


def _trained(cls, settings, steps=(9, 6)):
    """A page state trained ``steps[0]`` steps, its learning rate halved (if it has one), then ``steps[1]`` more."""
    state = cls(**settings)
    state.tick(steps[0])
    if "lr" in state.param:
        state.lr = state.lr / 2
    state.tick(steps[1])
    return state


def run_script(text: str, tmp_path: pathlib.Path) -> dict:
    """Run a script as printed; {model: (steps, {task: final loss})} from what it prints."""
    path = tmp_path / "run.py"
    path.write_text(text)
    res = subprocess.run(
        [sys.executable, "-c", RUN_ISOLATED, str(path)],
        cwd=tmp_path,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    out = {}
    for line in res.stdout.splitlines():
        found = re.fullmatch(r"(\w+) after (\d+) steps: (.*)", line)
        if found:
            losses = dict(re.findall(r"(\w+) loss (\S+?)(?:,|$)", found.group(3)))
            out[found.group(1)] = (int(found.group(2)), {t: float(v) for t, v in losses.items()})
        elif re.fullmatch(r"(\w+): no steps trained", line):
            out[line.split(":")[0]] = (0, {})
    return out


@pytest.mark.parametrize("cls, settings", RUNS, ids=[f"{c.__name__}-{i}" for i, (c, _s) in enumerate(RUNS)])
def test_the_printed_script_reproduces_the_pages_final_losses(cls, settings, tmp_path):
    state = _trained(cls, settings)
    if "lr" in state.param:
        assert len(state.lr_changes()) == 1  # the script has to replay the slider move, not only the last rate
    script = export.python_script(state)
    assert script.filename.endswith(".py") and "import app" not in script.data.decode()
    printed = run_script(script.data.decode(), tmp_path)
    found = export.trainers(state)
    assert set(printed) == set(found)
    for model, tr in found.items():
        steps, losses = printed[model]
        assert steps == len(tr.history) == 15
        assert list(losses) == tr.task_names
        assert list(losses.values()) == pytest.approx(tr.history[-1].losses.tolist(), rel=1e-9, abs=1e-9)


def test_a_run_that_diverged_and_stopped_is_reproduced_to_the_same_step(tmp_path):
    # plain SGD on a 1000x regression at a step size of 1: the runs blow up and the page stops each one
    state = WeightingLabState(optimizer="sgd", lr=1.0, scale_log10=3.0, methods=["equal", "gradnorm"])
    for _ in range(10):
        state.tick(8)
    stopped = [m for m in state.runs if state.diverged(m)]
    assert stopped, "this setting should diverge"
    printed = run_script(export.python_script(state).data.decode(), tmp_path)
    for model, tr in state.runs.items():
        steps, losses = printed[model]
        assert steps == len(tr.history)
        expected = tr.history[-1].losses
        for got, want in zip(losses.values(), expected, strict=True):
            assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=1e-9, abs=1e-9)


def _rows(exp: export.Export) -> list[dict]:
    return list(csv.DictReader(io.StringIO(exp.data.decode("utf-8"))))


@pytest.mark.parametrize("cls", [SharedSeparateState, ArchitecturesState, TrainingLoopState, WeightingLabState])
def test_the_history_csv_has_one_row_per_step_and_every_cell_parses(cls):
    state = _trained(cls, {}, steps=(10, 7))
    exp = export.history_csv(state)
    assert exp.filename.endswith("-history.csv") and "17 steps" in exp.note
    rows = _rows(exp)
    assert [int(r["step"]) for r in rows] == list(range(1, 18))
    header = list(rows[0])
    assert len(header) == len(set(header))
    for row in rows:
        for value in row.values():
            if value != "":
                float(value)  # every cell is a number (or empty where the page recorded nothing that step)
    found = export.trainers(state)
    for model, tr in found.items():
        prefix = f"{model}_" if len(found) > 1 else ""
        for k, task in enumerate(tr.task_names):
            losses = [float(r[f"{prefix}loss_{task}"]) for r in rows]
            assert losses == [rec.losses[k] for rec in tr.history]  # full precision, in step order
            assert [float(r[f"{prefix}weight_{task}"]) for r in rows] == [rec.weights[k] for rec in tr.history]


def test_the_history_csv_carries_the_pages_recorded_curves_at_their_steps():
    state = _trained(SharedSeparateState, {}, steps=(4, 3))
    rows = _rows(export.history_csv(state))
    acc = state.sources["acc"].data
    for step, value in zip(acc["step"], acc["shared_test_a"], strict=True):
        if step:
            assert float(rows[step - 1]["acc_shared_test_a"]) == value
    assert [float(r["shared_cosine"]) for r in rows] == [float(v) for v in state.sources["cosine"].data["cosine"]]
    training = _trained(TrainingLoopState, {}, steps=(4, 3))
    rows = _rows(export.history_csv(training))
    assert "loss_a" in rows[0] and "n_projections" in rows[0]  # one model: no prefix; PCGrad's log is kept


def test_a_diverged_run_is_said_in_the_note_and_its_non_finite_values_are_empty_cells():
    state = SharedSeparateState()
    state.tick(3)
    state.trainers["shared"].net.params[:] = np.nan  # a blown-up model: its next loss is NaN
    state.tick(2)
    assert state.error and state.steps == 3  # the page stopped at the step that diverged
    exp = export.history_csv(state)
    assert "Row 4: the shared run diverged" in exp.note and "empty cells" in exp.note
    rows = _rows(exp)
    assert len(rows) == 4  # the three steps and the one that diverged (both models took it)
    assert rows[-1]["shared_loss_a"] == "" and rows[-1]["shared_diverged"].startswith("loss of task 'a' became nan")
    assert float(rows[-1]["separate_loss_a"]) > 0 and rows[-1]["separate_diverged"] == ""


def test_a_run_the_page_stopped_itself_is_said_in_the_note():
    state = WeightingLabState(optimizer="sgd", lr=1.0, scale_log10=3.0, methods=["equal"])
    for _ in range(10):
        state.tick(8)
    assert state.blown  # its test loss grew 10,000-fold: the page stops the run, the trainer did not fail
    assert "diverged" in export.history_csv(state).note


def test_before_the_first_step_the_csv_says_so_and_the_weights_and_script_still_work(tmp_path):
    state = TrainingLoopState()
    with pytest.raises(export.ExportError, match="No training steps yet"):
        export.history_csv(state)
    weights = export.weights_npz(state)
    assert "untrained" in weights.note
    script = export.python_script(state)
    assert "No steps yet" in script.note
    assert run_script(script.data.decode(), tmp_path) == {"net": (0, {})}


@pytest.mark.parametrize("cls", [SharedSeparateState, ArchitecturesState, WeightingLabState, AuxiliaryState])
def test_the_npz_loads_without_pickle_and_matches_net_params(cls, tmp_path):
    state = _trained(cls, {}, steps=(3, 2))
    exp = export.weights_npz(state)
    path = tmp_path / exp.filename
    path.write_bytes(exp.data)
    found = export.trainers(state)
    with np.load(path, allow_pickle=False) as f:
        assert list(f["models"]) == list(found)
        assert list(f["task_names"]) == next(iter(found.values())).task_names
        assert "seed" in f["settings"].item()
        for model, tr in found.items():
            params = f[f"{model}/params"]
            assert params.dtype == tr.net.params.dtype and np.array_equal(params, tr.net.params)
            assert int(f[f"{model}/steps"]) == tr.step_count == 5
            names, slices = list(f[f"{model}/layer_names"]), f[f"{model}/layer_slices"]
            assert names and slices.shape == (len(names), 2) and slices[-1, 1] == params.size
            for name, (start, stop) in zip(names, slices, strict=True):
                layer = f[f"{model}/{name}"]
                assert np.array_equal(layer.ravel(), params[start:stop])


def test_the_lr_log_belongs_to_the_current_run():
    state = SharedSeparateState()
    state.tick(2)
    state.lr = 0.02
    assert state.lr_changes() == [(2, 0.03, 0.02)]
    state.stop_and_reset()  # a new run, built with lr 0.02: nothing to replay
    assert state.lr_changes() == []
    state.tick(1)
    state.lr = 0.05
    assert state.lr_changes() == [(1, 0.02, 0.05)]


def test_the_arena_exports_its_paths_and_says_it_has_no_network():
    state = ArenaState()
    with pytest.raises(export.ExportError, match="press Run"):
        export.history_csv(state)
    state.start_runs()
    state.finish_runs()
    exp = export.history_csv(state)
    rows = _rows(exp)
    assert exp.filename == "arena-paths.csv" and rows[0]["step"] == "0"
    x = state.sources["traj_sum"].data["x"]
    assert [float(r["sum_x"]) for r in rows[: len(x)]] == [float(v) for v in x]
    with pytest.raises(export.ExportError, match="no network"):
        export.weights_npz(state)
    with pytest.raises(export.ExportError):
        export.python_script(state)


def test_no_method_chosen_is_a_message_not_an_error():
    state = WeightingLabState(methods=[])
    with pytest.raises(export.ExportError, match="no model is training"):
        export.history_csv(state)


def _csv_text(header: str, rows) -> str:
    return header + "\n" + "\n".join(",".join("" if v is None else repr(v) for v in row) for row in rows) + "\n"


def test_a_run_on_ones_own_data_is_written_into_the_script_and_reproduced(tmp_path):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((40, 2))
    rows = [(float(a), float(b), int(a * b > 0), None if i % 7 == 0 else int(a > 0)) for i, (a, b) in enumerate(x)]
    state = SharedSeparateState()
    assert state.load_csv(_csv_text("x1,x2,label_a,label_b", rows)), state.data_error
    assert state.data == "custom"
    state.tick(6)
    state.lr = 0.05
    state.tick(4)
    script = export.python_script(state)
    assert (
        "Your own data is written into it" in script.note and "make_related_classification" not in script.data.decode()
    )
    printed = run_script(script.data.decode(), tmp_path)
    for model, tr in state.trainers.items():
        steps, losses = printed[model]
        assert steps == 10
        assert list(losses.values()) == pytest.approx(tr.history[-1].losses.tolist(), rel=1e-9, abs=1e-9)


def test_the_weighting_labs_own_data_is_written_into_the_script_and_reproduced(tmp_path):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((60, 3))
    rows = [(*map(float, r), float(100 * r[0] + r[1]), None if i % 5 == 0 else int(r[2] > 0)) for i, r in enumerate(x)]
    state = WeightingLabState(missing=0.2, methods=["equal", "uncertainty"])
    assert state.load_csv(_csv_text("x1,x2,x3,y_reg,y_cls", rows)), state.data_error
    assert state.data == "custom"
    state.tick(8)
    printed = run_script(export.python_script(state).data.decode(), tmp_path)
    for model, tr in state.runs.items():
        steps, losses = printed[model]
        assert steps == 8 and tr.net.in_dim == 3
        assert list(losses.values()) == pytest.approx(tr.history[-1].losses.tolist(), rel=1e-9, abs=1e-9)


def test_the_architectures_own_data_is_written_into_the_script_and_reproduced(tmp_path):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((48, 2))
    rows = [(float(a), float(b), int(a > 0), None if i % 3 == 0 else int(b > 0)) for i, (a, b) in enumerate(x)]
    state = ArchitecturesState(branch=1, hidden=6)
    assert state.load_csv(_csv_text("x1,x2,label_a,label_b", rows)), state.data_error
    state.tick(5)
    state.lr = 0.05
    state.tick(4)
    script = export.python_script(state)
    text = script.data.decode()
    assert "Your own data is written into it" in script.note and "make_related_classification" not in text
    assert f"reshape({state.train_data.n_samples}, 2)" in text  # the training rows: the held-out ones never train
    printed = run_script(text, tmp_path)
    assert set(printed) == {"separate", "hard", "stitch"}
    for model, tr in state.trainers.items():
        steps, losses = printed[model]
        assert steps == 9
        assert list(losses.values()) == pytest.approx(tr.history[-1].losses.tolist(), rel=1e-9, abs=1e-9)
    rows_out = _rows(export.history_csv(state))
    assert [int(r["step"]) for r in rows_out] == list(range(1, 10))
    weights = export.weights_npz(state)
    with np.load(io.BytesIO(weights.data), allow_pickle=False) as npz:
        assert np.array_equal(npz["hard/params"], state.nets["hard"].params)
        assert "custom" in str(npz["settings"].item())  # the settings say whose data it was


@pytest.mark.parametrize("settings", [{}, {"aux_kind": "regression", "deep": True, "main_from": 5, "l2": 0.001}])
def test_the_auxiliary_pages_own_data_is_written_into_the_script_and_reproduced(settings, tmp_path):
    rng = np.random.default_rng(9)
    x = rng.standard_normal((60, 2))
    numeric = settings.get("aux_kind") == "regression"
    rows = [
        (float(a), float(b), int(a * b > 0) if i < 16 else None, float(1.5 * a) if numeric else int(a > 0))
        for i, (a, b) in enumerate(x)
    ]
    state = AuxiliaryState(**settings)
    assert state.load_csv(_csv_text("x1,x2,main,aux", rows)), state.data_error
    state.tick(6)
    state.tick(4)
    script = export.python_script(state)
    text = script.data.decode()
    assert "Your own data is written into it" in script.note and "make_main_and_auxiliary" not in text
    printed = run_script(text, tmp_path)
    assert set(printed) == set(state.trainers)
    for model, tr in state.trainers.items():
        steps, losses = printed[model]
        assert steps == 10
        assert list(losses.values()) == pytest.approx(tr.history[-1].losses.tolist(), rel=1e-9, abs=1e-9)

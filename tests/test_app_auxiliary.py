"""Logic tests of the "Auxiliary tasks and evaluation" page without a browser: runs, table, sweep, two heads, URL."""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest

import app.auxiliary_state as page
from app.auxiliary import create_page
from app.auxiliary_state import METRICS, AuxiliaryState
from mtl_core import metrics
from mtl_core.twohead import TwoHead, two_head_loss


@pytest.fixture
def state():
    return AuxiliaryState()


def curve(state, col):
    return np.asarray(state.sources["curves"].data[col], float)


def test_fresh_state_has_one_untrained_point_and_a_table(state):
    assert state.steps == 0 and not state.running
    assert state.sources["curves"].data["step"] == [0]
    table = state.sources["eval"].data
    assert list(zip(table["model"], table["task"], strict=True)) == [
        ("main + auxiliary", "main"),
        ("main + auxiliary", "aux"),
        ("main alone", "main"),
        ("auxiliary alone", "aux"),
    ]
    assert table["counted"] == ["yes", "no (auxiliary)", "yes", "no (auxiliary)"]
    assert "Step 0" in state.summary and "Δm" in state.delta_text


def test_step_advances_exactly_one_step_and_pauses(state):
    state.running = True
    state.step_once()
    assert state.steps == 1 and not state.running
    assert state.sources["curves"].data["step"] == [0, 1]  # a Step always shows its result
    assert all(tr.step_count == 1 for tr in state.trainers.values())


def test_the_auxiliary_task_changes_the_main_curve_and_only_that_one(state):
    state.tick(30)
    with_aux, alone = curve(state, "with_test"), curve(state, "alone_test")
    assert not np.array_equal(with_aux, alone)  # the auxiliary head's gradients move the shared trunk
    assert np.allclose(curve(state, "gain"), 100 * (with_aux - alone))
    state.relatedness = 0.0  # a new experiment, trained at once
    assert state.running
    state.running = False
    state.tick(30)
    assert np.array_equal(curve(state, "alone_test"), alone)  # the main task alone does not see the auxiliary
    assert not np.array_equal(curve(state, "with_test"), with_aux)


def test_the_auxiliary_helps_when_related_and_hurts_when_not():
    """The page's default story (seed 0): related side labels raise the main task's test accuracy, a pattern
    turned by 45 degrees lowers it."""
    gains = {}
    for rel in (1.0, 0.0):
        s = AuxiliaryState(relatedness=rel)
        s.tick(150)
        gains[rel] = s.latest()["gain"]
    assert gains[1.0] > 2.0 and gains[0.0] < gains[1.0] - 2.0, gains


def test_the_evaluation_table_is_mtl_core_metrics_on_the_same_predictions(state):
    state.tick(20)
    table = state.sources["eval"].data
    test = state.test_data
    rows = {(m, t): i for i, (m, t) in enumerate(zip(table["model"], table["task"], strict=True))}
    for model, label in page.MODEL_LABELS.items():
        preds = state.predictions(model, test)
        for task in preds:
            i = rows[(label, task)]
            p, y = preds[task], test.targets[task]
            expected = {
                "accuracy": metrics.accuracy(p, y),
                "f1": metrics.f1(p, y),
                "ece": metrics.expected_calibration_error(p, y),
            }
            for m in METRICS:
                assert table[m][i] == pytest.approx(expected.get(m, np.nan), nan_ok=True), (model, task, m)
    main = {"main": {m: table[m][rows[("main + auxiliary", "main")]] for m in ("accuracy", "f1", "ece")}}
    single = {"main": {m: table[m][rows[("main alone", "main")]] for m in ("accuracy", "f1", "ece")}}
    assert state.delta_m() == pytest.approx(metrics.delta_m(main, single))
    assert f"{state.delta_m():+.1f}%" in state.delta_text


def test_a_numeric_auxiliary_score_is_scored_by_rmse_and_mae():
    s = AuxiliaryState(aux_kind="regression")
    s.tick(10)
    table = s.sources["eval"].data
    i = table["model"].index("auxiliary alone")
    pred = s.predictions("aux_alone", s.test_data)["aux"]
    assert table["rmse"][i] == pytest.approx(metrics.rmse(pred, s.test_data.targets["aux"]))
    assert table["mae"][i] == pytest.approx(metrics.mae(pred, s.test_data.targets["aux"]))
    assert np.isnan(table["accuracy"][i])
    assert np.isfinite(s.delta_m(with_auxiliary=True))


def test_curriculum_holds_the_main_task_back_until_step_k():
    s = AuxiliaryState(main_from=10)
    net = s.nets["with_aux"]
    head = net.params[net.task_slices["main"]].copy()
    s.tick(10)
    assert np.array_equal(net.params[net.task_slices["main"]], head)  # weight 0: the main head has not moved
    assert [list(r.weights) for r in s.trainers["with_aux"].history[:2]] == [[0.0, 1.0]] * 2
    s.tick(1)
    assert list(s.trainers["with_aux"].history[-1].weights) == [1.0, 1.0]
    assert not np.array_equal(net.params[net.task_slices["main"]], head)


def test_deep_supervision_l2_and_dropout_reach_the_models():
    s = AuxiliaryState(deep=True, l2=0.002, dropout=0.2)
    heads = {h.name: h.attach for h in s.nets["with_aux"]._heads}
    assert heads == {"main": 1, "aux": 0}  # the auxiliary head reads hidden layer 1
    assert all(tr.l2 == 0.002 for tr in s.trainers.values())
    assert all(net.dropout == 0.2 for net in s.nets.values())
    s.tick(5)
    assert s.steps == 5 and not s.error


def test_the_sweep_trains_on_demand_one_point_per_task_count(monkeypatch):
    monkeypatch.setattr(page, "SWEEP_STEPS", 10)
    s = AuxiliaryState(n_tasks=3)
    assert s.sweep.max_steps == 3 * page.SWEEP_REPEATS * 10 and "not run yet" in s.sweep.status
    s.running = True
    s.sweep.play()
    assert s.sweep.running and not s.running  # one thing trains at a time
    s.sweep.tick(25)
    assert s.sources["sweep"].data["n_tasks"] == [1]
    s.pause()  # the page's Pause stops the sweep too
    assert not s.sweep.running
    s.sweep.play()
    while s.sweep.running:
        s.sweep.tick(25)
    data = s.sources["sweep"].data
    assert data["n_tasks"] == [1, 2, 3] and "3 of 3" in s.sweep.status
    assert np.allclose(np.asarray(data["test_error"]) - data["train_error"], data["gap"])
    s.play()
    assert s.running and not s.sweep.running
    s.relatedness = 0.5  # the points belong to the old relatedness: cleared
    assert s.sources["sweep"].data["n_tasks"] == [] and s.sweep.steps == 0


def test_the_pause_button_stops_the_sweep_and_says_paused(monkeypatch):
    """The page's one Pause button (its two halves: "paused" at once, then the words) stops a running sweep."""
    monkeypatch.setattr(page, "SWEEP_STEPS", 10)
    view = create_page("?n_tasks=2")
    try:
        s = view.state
        s.sweep.play()
        s.sweep.tick(5)
        assert s.sweep.running and not s.running
        view.buttons["pause"].clicks += 1
        assert not s.sweep.running and "paused" in s.sweep.status and "paused" in view.sweep_status.object
        s.play()
        s.tick(2)
        view.buttons["pause"].clicks += 1
        assert not s.running and s.status.endswith("paused")
    finally:
        view.animator.stop()
        view.sweep_animator.stop()


def test_the_broadcast_bug_is_the_explicit_n_by_n_formula_and_the_right_loss_is_two_head_loss(state):
    state.param.update(alpha=0.3, flatten_bug=True)
    th = state.two_head
    x, y_a, y_b = th["x"], th["y_a"], th["y_b"]
    out_a, out_b = TwoHead(hidden=page.TWO_HEAD_HIDDEN, seed=state.seed).forward(x)
    n = len(y_a)
    wrong_a = sum((out_a[i, 0] - y_a[j]) ** 2 for i in range(n) for j in range(n)) / n**2
    wrong_b = sum((out_b[i, 0] - y_b[j]) ** 2 for i in range(n) for j in range(n)) / n**2
    assert th["wrong"] == pytest.approx([0.3 * wrong_a + 0.7 * wrong_b, wrong_a, wrong_b])
    assert np.array_equal(th["right"], two_head_loss(state.seed, x, y_a, y_b, 0.3, hidden=page.TWO_HEAD_HIDDEN))
    assert not np.allclose(th["right"], th["wrong"])  # the bug is visible in real numbers
    assert th["squares_a"].shape == (n, n) and np.diag(th["squares_a"]).mean() == pytest.approx(th["right"][1])
    assert list(state.sources["two_head"].data["wrong"]) == list(th["wrong"])
    state.flatten_bug = False
    assert np.isnan(state.sources["two_head"].data["wrong"]).all()  # shown only with the toggle


def test_the_library_keeps_refusing_the_broadcast(state):
    th = state.two_head
    assert th["refusal"].startswith("ValueError") and "(6, 6)" in th["refusal"]
    from mtl_core.losses import mse

    out_a, _ = TwoHead(hidden=page.TWO_HEAD_HIDDEN, seed=state.seed).forward(th["x"])
    assert mse(out_a, th["y_a"])[0] == pytest.approx(th["right"][1])  # (N, 1) vs (N,): flattened, not broadcast


def test_the_page_restores_a_deep_link_and_reports_garbage():
    view = create_page("?relatedness=0.3&aux_kind=regression&deep=1&n_tasks=4&alpha=2&bogus=1", autoplay=False)
    s = view.state
    assert (s.relatedness, s.aux_kind, s.deep, s.n_tasks, s.alpha) == (0.3, "regression", True, 4, 1.0)
    assert "bogus" in view.notices.object and "Two-head weight" in view.notices.object
    root = pn.panel(view).get_root()
    names = {m.name for m in root.references() if getattr(m, "name", None)}
    assert {"curves_source", "sweep_source", "two_head_source", "sweep_button", "eval_table"} <= names
    assert "RMSE" in view.eval_table.object and "Δm" in view.eval_table.object
    s.flatten_bug = True
    assert "The bug" in view.two_head_text.object and "<table" in view.two_head_text.object
    view.animator.stop()
    view.sweep_animator.stop()


# ---------------------------------------------------------------------------------------------------- your own data
def aux_file(n: int = 120, *, main_rows: int = 24, numeric: bool = False, seed: int = 1) -> str:
    """An x1,x2,main,aux file: main (the XOR of the signs) on the first ``main_rows`` rows only, empty elsewhere;
    aux on every row (the sign of x1, or a score whose sign it is)."""
    x = np.random.default_rng(seed).standard_normal((n, 2)).round(3)
    rows = []
    for i, (a, b) in enumerate(x):
        main = int(a * b > 0) if i < main_rows else ""
        aux = f"{1.5 * a:.3f}" if numeric else int(a > 0)
        rows.append(f"{a},{b},{main},{aux}\n")
    return "x1,x2,main,aux\n" + "".join(rows)


def test_a_csv_with_empty_main_cells_trains_the_three_runs_on_its_rows(state):
    state.tick(5)
    assert state.load_csv(aux_file())
    assert state.data == "custom" and state.steps == 0 and state.running  # a new run, trained at once
    tr, te = state.train_data, state.test_data
    # a quarter of the 24 main-labelled rows and of the 96 others held out: the few main labels mostly train
    assert (tr.n_labelled()["main"], te.n_labelled()["main"]) == (18, 6)
    assert (tr.n_samples, te.n_samples) == (90, 30) and tr.n_labelled()["aux"] == 90
    assert state.trainers["with_aux"].data is tr
    assert state.trainers["alone"].data.n_samples == 18  # the main task alone: its labelled rows only
    assert state.trainers["aux_alone"].data.n_samples == 90
    assert [t.kind for t in tr.tasks] == ["binary", "binary"] and tr.tasks[1].auxiliary
    assert "120 rows" in state.data_summary and "18 with a main label" in state.data_summary
    state.tick(10)
    curves = state.sources["curves"].data
    assert curves["step"][-1] == 10
    want = metrics.accuracy(state.nets["with_aux"].forward(te.x)["main"], te.targets["main"], mask=te.masks["main"])
    assert curves["with_test"][-1] == want  # scored on the held-out rows that have a main label
    table = state.sources["eval"].data
    assert np.isfinite(table["accuracy"][0]) and "with the auxiliary task" in state.summary


def test_the_auxiliary_target_decides_what_aux_may_hold(state):
    numeric = aux_file(numeric=True)
    assert not state.load_csv(numeric)  # a score while the auxiliary target is a yes/no label
    assert "column aux" in state.data_error and "Numeric score" in state.data_error
    assert state.data == "generated"
    state.aux_kind = "regression"
    assert state.load_csv(numeric) and state.train_data.tasks[1].kind == "regression"
    state.tick(5)
    assert np.isfinite(state.sources["eval"].data["rmse"][1])  # the score is scored as a score
    state.aux_kind = "binary"  # the file's scores cannot be yes/no labels: refused, it stays a score
    assert state.aux_kind == "regression" and "such as" in state.data_error and state.data == "custom"
    assert state.load_csv(aux_file()) and state.data_error == ""
    state.aux_kind = "binary"  # 0/1 values can be either
    assert state.aux_kind == "binary" and state.train_data.tasks[1].kind == "binary"


@pytest.mark.parametrize(
    "raw, words",
    [
        ("x1,x2,main\n" + "0,0,1\n" * 5, ["missing column aux"]),
        ("x1,x2,label_a,label_b\n" + "0,0,1,1\n" * 5, ["missing columns main, aux", "unknown columns 'label_a'"]),
        ("x1,x2,main,aux\n" + "0,0,,1\n" * 5, ["main has no labels"]),
        ("x1,x2,main,aux\n" + "0,0,2,1\n" * 5, ["row 2, column main", "labels are 0 or 1"]),
        ("x1,x2,main,aux\n0,0,1,1\n1,1,0,\n2,2,,\n3,3,,\n", ["Column aux has a label on only"]),
        (b"\x00binary", ["not a text"]),
    ],
)
def test_a_refused_file_gets_its_message_and_the_run_stays(state, raw, words):
    assert state.load_csv(aux_file())
    state.tick(3)
    x, curves = state.custom.x.copy(), {k: list(v) for k, v in state.sources["curves"].data.items()}
    assert not state.load_csv(raw)
    for w in words:
        assert w in state.data_error, state.data_error
    np.testing.assert_array_equal(state.custom.x, x)
    assert {k: list(v) for k, v in state.sources["curves"].data.items()} == curves and state.steps == 3


def test_no_held_out_main_label_says_so_instead_of_a_score(state):
    assert state.load_csv(aux_file(main_rows=1))  # one main label: it trains, none is left to score on
    assert state.train_data.n_labelled()["main"] == 1 and state.test_data.n_labelled()["main"] == 0
    state.tick(5)
    state.tick(5)
    curves = state.sources["curves"].data
    assert curves["step"] == [0, 5, 10]  # recorded although there is no test score
    assert np.all(np.isnan(curves["with_test"])) and np.all(np.isfinite(curves["with_train"]))
    assert "no held-out row has a main label" in state.summary and "undefined" in state.delta_text
    assert "no test score" in state.describe()["accuracy"]


def test_the_data_knobs_wait_and_a_link_with_data_custom_falls_back():
    view = create_page("?page=auxiliary&data=custom&seed=3", autoplay=False)
    try:
        s = view.state
        assert s.data == "generated" and s.seed == 3 and page.FALLBACK_NOTICE in view._notices
        view.__panel__()
        assert "1000 test rows" in view.eval_title.object
        view.upload.value = aux_file().encode()  # what Panel sets when the browser sends a file
        assert s.data == "custom" and view.widgets["main_labels"].disabled and view.widgets["relatedness"].disabled
        assert not view.widgets["aux_kind"].disabled and "held-out rows" in view.eval_title.object
        assert "120 rows" in view.data_summary.object
        view.upload.value = b"x1,x2\n1,2\n"
        assert "missing columns main, aux" in view.data_error.object and s.custom.n_rows == 120
        view.reset_data.clicks += 1
        assert s.data == "generated" and not view.widgets["main_labels"].disabled
    finally:
        view.animator.stop()
        view.sweep_animator.stop()


def test_ones_own_data_in_the_worker_is_not_taken_back_as_if_the_browser_had_sent_it(monkeypatch):
    """Upload, Reset to generated data, the tab's data restored: only the browser's own changes are processed."""
    from worker_document import check_own_data_in_the_worker

    check_own_data_in_the_worker(create_page, "auxiliary", aux_file(), monkeypatch)

"""Logic tests of the "Sharing architectures" page without a browser: state, data sources, readouts, URL, and
the reader's own data (a CSV upload, its refusals, held-out scoring, the data=custom fallback)."""

from __future__ import annotations

import re

import numpy as np
import panel as pn
import pytest

import app.architectures_state as page
from app.architectures import create_page, summary_html
from app.architectures_state import DEPTH, FALLBACK_NOTICE, MODELS, SETTINGS, SHARING, ArchitecturesState
from app.settings import current_values, to_query
from app.shared_separate_state import SharedSeparateState
from mtl_core.metrics import accuracy
from test_custom_data import BAD_TWO_TASK_FILES, GOOD


@pytest.fixture
def state():
    return ArchitecturesState(n_samples=100)


def dense_params(dims) -> int:
    return sum(dims[l] * dims[l + 1] + dims[l + 1] for l in range(len(dims) - 1))


def test_an_untrained_verdict_has_as_many_lines_as_a_trained_one(state):
    """The page keeps its height when a new run starts and when its first readout comes."""
    untrained = state.verdict.splitlines()
    state.step_once()
    trained = state.verdict.splitlines()
    assert len(untrained) == len(trained) == 4 and untrained != trained
    for before, after in zip(untrained[1:3], trained[:2], strict=True):  # each model's head stays, its gain comes
        assert before.split(":")[0] == after.split(":")[0]
        assert 0.8 < len(before) / len(after) < 1.25
    state.stop_and_reset()
    assert state.verdict.splitlines() == untrained


def test_fresh_state_has_one_untrained_point_and_stitches_at_their_start(state):
    assert state.steps == 0 and not state.running
    assert state.sources["acc"].data["step"] == [0] and state.sources["stitch_history"].data["step"] == [0]
    assert "No training yet" in state.verdict
    cells = state.sources["stitch"].data
    assert len(cells["value"]) == 4 * DEPTH
    diag = [v for v, to, frm in zip(cells["value"], cells["to"], cells["frm"], strict=True) if to == frm]
    off = [v for v, to, frm in zip(cells["value"], cells["to"], cells["frm"], strict=True) if to != frm]
    assert diag == pytest.approx([0.9] * 2 * DEPTH) and off == pytest.approx([0.1] * 2 * DEPTH)


def test_step_advances_every_model_exactly_one_step(state):
    state.running = True
    state.step_once()
    assert state.steps == 1 and not state.running
    assert state.sources["acc"].data["step"] == [0, 1]
    assert all(tr.step_count == 1 for tr in state.trainers.values())


def test_moving_the_branch_point_changes_the_shared_parameters_and_retrains(state):
    h = state.hidden
    state.tick(6)
    before = list(state.sources["acc"].data["hard_test_a"])
    seen = {}
    for branch in (0, 1, 3, 2):
        state.branch = branch
        assert state.steps == 0 and state.running  # a new run, trained at once
        hard = state.nets["hard"]
        assert hard.n_shared == dense_params((2,) + (h,) * branch)
        # the diagram: one wide box per shared layer, two per task layer, plus the input and two heads
        assert len(state.sources["arch"].data["label"]) == 1 + branch + 2 * (DEPTH - branch) + 2
        row = next(r for r in state.table if r["model"] == "hard")
        assert (row["shared"], row["params"]) == (hard.n_shared, hard.n_params)
        seen[branch] = hard.n_params
    assert seen[0] > seen[1] > seen[2] > seen[3]  # sharing more layers makes the model smaller
    assert seen[0] == state.nets["separate"].n_params  # branching at 0 is two separate nets
    state.tick(6)  # branch 2 again, as at the start: the same run, so the same curve
    assert state.sources["acc"].data["hard_test_a"] == before
    state.branch = 0
    state.tick(6)
    assert state.sources["acc"].data["hard_test_a"] != before


def test_cross_stitch_matrices_are_in_the_source_and_change_while_training(state):
    start = list(state.sources["stitch"].data["value"])
    for _ in range(5):
        state.tick(4)
    cells = state.sources["stitch"].data
    A = state.nets["stitch"].stitch_matrices()
    for x, y, v, text, layer in zip(cells["x"], cells["y"], cells["value"], cells["text"], cells["layer"], strict=True):
        to, frm = 1 - y, x - 3 * (layer - 1)
        assert v == A[layer - 1, to, frm] and text == f"{v:.2f}"
    assert np.abs(np.array(cells["value"]) - start).max() > 0.01
    hist = state.sources["stitch_history"].data
    assert hist["step"] == [0, 4, 8, 12, 16, 20]
    for l in range(DEPTH):
        assert hist[f"l{l}_ab"][-1] == A[l, 0, 1] and hist[f"l{l}_ba"][-1] == A[l, 1, 0]
        assert hist[f"l{l}_ab"][0] == pytest.approx(0.1)
    shares = state.stitch_shares()
    np.testing.assert_allclose(shares[:, 0], np.abs(A[:, 0, 1]) / np.abs(A[:, 0]).sum(axis=1))


def test_transfer_table_and_verdict_equal_what_the_accuracy_source_says(state):
    for _ in range(10):
        state.tick(5)
    acc = state.sources["acc"].data
    tr = state.sources["transfer"].data
    rows = {r["model"]: r for r in state.table}
    lines = state.verdict.splitlines()
    counts = {m: state.nets[m].n_params for m in MODELS}
    for i, (model, task) in enumerate((m, t) for m in SHARING for t in ("a", "b")):
        gain = 100 * (acc[f"{model}_test_{task}"][-1] - acc[f"separate_test_{task}"][-1])
        assert tr["model"][i] == model and tr["task"][i] == task
        assert tr["gain"][i] == pytest.approx(gain)
        assert tr["color"][i] == ("#2e8b57" if gain >= page.DRAW else "#c0392b" if gain <= -page.DRAW else "#999999")
        assert rows[model][f"gain_{task}"] == pytest.approx(gain)
        assert rows[model][f"acc_{task}"] == pytest.approx(100 * acc[f"{model}_test_{task}"][-1])
        assert re.search(rf"task {task.upper()} {re.escape(page._points(gain))}[, ]", lines[SHARING.index(model)])
    for k, model in enumerate(SHARING):
        ga, gb = tr["gain"][2 * k], tr["gain"][2 * k + 1]
        assert page._transfer_words(ga, gb) in lines[k]
        size = abs(100 * (counts[model] / counts["separate"] - 1))
        assert f"{size:.0f}%" in lines[k]
    for letter, t in (("A", "a"), ("B", "b")):
        best = max(MODELS, key=lambda m: acc[f"{m}_test_{t}"][-1])
        assert f"task {letter}: {page.MODEL_LABELS[best]} ({100 * acc[f'{best}_test_{t}'][-1]:.1f}%)" in lines[2]
    html = summary_html(state.table)
    assert html.count("<tr>") == 1 + len(MODELS) and f"{counts['stitch']:,}" in html


@pytest.mark.parametrize(
    "ga, gb, words",
    [
        (2.0, 3.0, "both tasks gain"),
        (-2.0, -1.5, "both tasks lose"),
        (2.5, -3.0, "asymmetric transfer: A gains while B loses"),
        (-1.2, 4.0, "asymmetric transfer: B gains while A loses"),
        (0.3, -1.1, "B loses, A about the same"),
        (0.9, -0.9, "no clear difference"),
    ],
)
def test_transfer_words(ga, gb, words):
    assert words in page._transfer_words(ga, gb)


def test_settings_reset_lr_is_live_and_limits_hold(state):
    state.tick(3)
    state.lr = 0.1
    assert state.steps == 3 and all(tr.optimizer.lr == 0.1 for tr in state.trainers.values())
    for name, bad in (("branch", DEPTH + 1), ("branch", -1), ("hidden", 1), ("relatedness", 2.0), ("lr", 0.0)):
        with pytest.raises(ValueError):
            setattr(state, name, bad)
    assert state.branch == 2


def test_divergence_stops_cleanly_without_nan_in_plots(state):
    state.tick(2)
    state.running = True
    state.nets["stitch"].params[:] = np.nan
    state.tick()
    assert not state.running and "diverged" in state.error and "cross-stitch" in state.error
    for key in ("acc", "stitch_history", "stitch", "transfer"):
        for col, values in state.sources[key].data.items():
            if values and isinstance(values[0], float):
                assert np.all(np.isfinite(values)), (key, col)
    state.reset()
    assert state.error == "" and state.steps == 0


def test_deep_link_restores_the_page_and_escapes_notices():
    view = create_page("?page=architectures&branch=0&relatedness=0.3&hidden=<b>x</b>&branch=9", autoplay=False)
    try:
        s = view.state
        assert s.branch == DEPTH and s.relatedness == 0.3 and s.hidden == 8  # the last branch=9 is clamped
        assert "&lt;b&gt;" in view.notices.object and "<b>x" not in view.notices.object
        assert "Branch point" in view.notices.object
        root = pn.panel(view).get_root()
        assert root.select_one({"name": "branch"}).value == DEPTH
        for name in ("acc_source", "stitch_source", "stitch_history", "transfer_source", "arch_source", "summary"):
            assert root.select_one({"name": name}) is not None, name
        view.buttons["step"].clicks += 1
        assert s.steps == 1 and "parameters shared / all" in view.summary.object
        assert view.verdict.object.count("<div>") == 4
    finally:
        view.animator.stop()


# ---------------------------------------------------------------------------------------------------- your own data


def _file(rows) -> str:
    """An x1,x2,label_a,label_b file; None = an empty cell (a missing label)."""
    return "x1,x2,label_a,label_b\n" + "".join(",".join("" if v is None else str(v) for v in r) + "\n" for r in rows)


def _rows(n: int, *, seed: int = 0, b_every: int = 1) -> list:
    """n points with task A = x1 > 0 and task B = x2 > 0 (B labelled on every ``b_every``-th row only)."""
    x = np.random.default_rng(seed).standard_normal((n, 2)).round(3)
    return [(a, b, int(a > 0), int(b > 0) if i % b_every == 0 else None) for i, (a, b) in enumerate(x)]


def test_uploading_a_csv_trains_all_three_models_on_its_rows(state):
    state.tick(3)
    assert state.load_csv(_file(_rows(40, b_every=4)))
    assert state.data == "custom" and state.steps == 0 and state.running  # a new run, trained at once
    held = state.custom.held_out
    assert 0 < held.sum() < 40 and state.train_data.n_samples == 40 - held.sum()
    assert state.test_data.n_samples == held.sum()
    for tr in state.trainers.values():
        assert tr.data is state.train_data  # every model trains on the file's training rows, none on held-out ones
    # an empty label_b cell is a missing label: masked out of task B's loss, kept for task A
    b_mask = np.array([r[3] is not None for r in _rows(40, b_every=4)])
    assert state.train_data.masks["b"].tolist() == b_mask[~held].tolist()
    assert state.train_data.masks["a"].all()
    assert "40 points" in state.data_summary and "task B 10" in state.data_summary
    assert to_query(SETTINGS, current_values(state, SETTINGS)) == "n_samples=100&data=custom"  # no points in it
    state.tick(5)
    acc = state.sources["acc"].data
    assert acc["step"] == [0, 5]
    # the test curves score the held-out rows, on their labelled rows only
    test = state.test_data
    for m in MODELS:
        preds = state.nets[m].forward(test.x)
        for t in ("a", "b"):
            mask = test.masks[t]
            want = np.mean((preds[t][mask] > 0) == (test.targets[t][mask] > 0.5)) if mask.any() else np.nan
            assert acc[f"{m}_test_{t}"][-1] == pytest.approx(want, nan_ok=True)


def test_the_file_is_read_exactly_as_shared_vs_separate_reads_it(state):
    raw = _file([(10 * x, 10 * y, a, b) for x, y, a, b in _rows(30)])  # outside the square: standardised
    assert state.load_csv(raw)
    shared = SharedSeparateState(seed=state.seed)
    assert shared.load_csv(raw)
    np.testing.assert_array_equal(state.custom.x, shared.custom.x)
    np.testing.assert_array_equal(state.custom.held_out, shared.custom.held_out)
    assert "standardised to fit the generated data's square" in state.data_summary  # this page has no map
    assert "the map" not in state.data_summary


@pytest.mark.parametrize("what,raw,words", BAD_TWO_TASK_FILES, ids=[b[0] for b in BAD_TWO_TASK_FILES])
def test_a_refused_file_gets_its_message_and_leaves_the_run_as_it_was(state, what, raw, words):
    assert state.load_csv(GOOD)
    state.tick(4)
    before = (state.custom.x.copy(), {k: list(v) for k, v in state.sources["acc"].data.items()}, state.steps)
    assert not state.load_csv(raw)
    for w in words:
        assert w in state.data_error, (what, state.data_error)
    assert state.data == "custom" and state.steps == before[2]
    np.testing.assert_array_equal(state.custom.x, before[0])
    assert {k: list(v) for k, v in state.sources["acc"].data.items()} == before[1]
    assert state.load_csv(GOOD) and state.data_error == ""  # a good file clears the message


def test_a_refused_first_file_leaves_the_generated_data():
    state = ArchitecturesState(n_samples=60)
    x = state.train_data.x.copy()
    assert not state.load_csv(b"\x00binary")
    assert state.data == "generated" and state.custom is None
    np.testing.assert_array_equal(state.train_data.x, x)


def test_settings_retrain_on_ones_own_data_and_reset_to_generated_brings_the_generated_back(state):
    assert state.load_csv(GOOD)
    rows = state.train_data.x.copy()
    state.branch = 0
    state.seed = 5  # new nets and batches; the same file (the held-out rows were drawn when it came)
    assert state.data == "custom" and state.steps == 0
    np.testing.assert_array_equal(state.train_data.x, rows)
    state.reset_to_generated()
    assert state.data == "generated" and state.custom is None and state.train_data.n_samples == state.n_samples
    assert "Generated data: 100 training points" in state.data_summary


def test_no_held_out_label_for_a_task_is_said_and_nothing_breaks(state):
    rows = _rows(24)
    held = page.two_task_file(_file(rows), seed=state.seed).held_out  # which rows the seed holds out
    assert held.any()
    no_b_held = [(x, y, a, None if h else b) for (x, y, a, b), h in zip(rows, held, strict=True)]
    assert state.load_csv(_file(no_b_held))
    state.tick(4)
    acc = state.sources["acc"].data
    assert np.all(np.isnan(acc["hard_test_b"])) and np.all(np.isfinite(acc["hard_test_a"]))
    assert np.all(np.isfinite(acc["hard_train_b"]))  # task B still trains on its labelled training rows
    assert "no test score for task B" in state.verdict and "task B: no test score" in state.verdict
    tr = state.sources["transfer"].data
    b = [i for i, t in enumerate(tr["task"]) if t == "b"]
    assert all(np.isnan(tr["gain"][i]) and tr["text"][i] == "none" and tr["ty"][i] == 0.0 for i in b)
    assert "task B no score" in state.describe()["acc"] and "task B none" in state.describe()["transfer"]
    html = summary_html(state.table)
    assert html.count("no score") == len(MODELS) and "nan" not in html


def test_no_held_out_row_at_all_scores_nothing_on_test_but_trains():
    state = ArchitecturesState()
    state.custom = page.CustomData(
        x=np.array([[0.0, 0.0], [1.0, 1.0], [-1.0, 0.5], [0.5, -1.0]]),
        x_columns=("x1", "x2"),
        labels={"label_a": np.array([0.0, 1.0, 0.0, 1.0]), "label_b": np.array([1.0, 0.0, np.nan, 1.0])},
    )
    state.data = "custom"
    assert state.test_data is None and state.steps == 0
    state.tick(3)
    acc = state.sources["acc"].data
    assert all(np.all(np.isnan(acc[f"{m}_test_{t}"])) for m in MODELS for t in ("a", "b"))
    assert acc["separate_train_a"][-1] == accuracy(
        state.nets["separate"].forward(state.train_data.x)["a"], state.train_data.targets["a"]
    )


def test_a_link_with_data_custom_falls_back_with_a_notice_and_so_does_the_data_choice():
    view = create_page("?page=architectures&data=custom&seed=4&branch=1", autoplay=False)
    try:
        s = view.state
        assert s.data == "generated" and s.seed == 4 and s.branch == 1
        assert FALLBACK_NOTICE in view._notices and "your file never travels in a link" in view.notices.object
        s.data = "custom"  # the Data choice without a file: back to the generated data, said beside the upload
        assert s.data == "generated" and s.data_error == FALLBACK_NOTICE
    finally:
        view.animator.stop()


def test_the_view_wires_the_upload_the_data_choice_and_the_legend():
    view = create_page({}, autoplay=False)
    try:
        s = view.state
        root = pn.panel(view).get_root()
        for name in ("data", "data_upload", "data_summary", "data_error", "reset_data_button"):
            assert root.select_one({"name": name}) is not None, name
        assert "fresh points" in view.curve_legend.object and view.reset_data.disabled
        view.upload.value = GOOD.encode()  # what Panel sets when the browser sends a file
        assert s.data == "custom" and s.custom.n_rows == 8
        assert all(view.widgets[k].disabled for k in ("relatedness", "n_samples", "noise"))
        assert not view.widgets["branch"].disabled and not view.reset_data.disabled
        assert "held-out rows" in view.curve_legend.object and "8 points" in view.data_summary.object
        view.upload.value = b"x1,x2\n1,2\n"
        assert "missing columns label_a, label_b" in view.data_error.object and s.custom.n_rows == 8
        view.reset_data.clicks += 1
        assert s.data == "generated" and not view.widgets["relatedness"].disabled
        assert view.data_error.object == ""
    finally:
        view.animator.stop()


def test_ones_own_data_in_the_worker_is_not_taken_back_as_if_the_browser_had_sent_it(monkeypatch):
    """Upload, Reset to generated data, the tab's data restored: only the browser's own changes are processed."""
    from worker_document import check_own_data_in_the_worker

    check_own_data_in_the_worker(create_page, "architectures", _file(_rows(40)), monkeypatch)

"""Logic tests of the "Sharing architectures" page without a browser: state, data sources, readouts, URL."""

from __future__ import annotations

import re

import numpy as np
import panel as pn
import pytest

import app.architectures_state as page
from app.architectures import create_page, summary_html
from app.architectures_state import DEPTH, MODELS, SHARING, ArchitecturesState


@pytest.fixture
def state():
    return ArchitecturesState(n_samples=100)


def dense_params(dims) -> int:
    return sum(dims[l] * dims[l + 1] + dims[l + 1] for l in range(len(dims) - 1))


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

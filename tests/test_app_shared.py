"""Logic tests of the "Shared vs Separate" page without a browser: state, data sources, readouts, URL."""

from __future__ import annotations

import re

import numpy as np
import panel as pn
import pytest

import app.shared_separate_state as page
from app.shared_separate import create_page
from app.shared_separate_state import MODELS, SharedSeparateState


@pytest.fixture
def state():
    return SharedSeparateState(n_samples=100)


def curve_len(state, key="acc"):
    return len(state.sources[key].data["step"])


def test_fresh_state_has_one_untrained_point(state):
    assert state.steps == 0 and not state.running
    assert curve_len(state) == 1 and curve_len(state, "loss") == 1
    assert len(state.sources["cosine"].data["step"]) == 0
    assert state.sources["acc"].data["step"] == [0]
    assert "No training yet" in state.verdict


def test_step_advances_exactly_one_step(state):
    state.running = True
    state.step_once()
    assert state.steps == 1 and not state.running  # Step pauses live training
    assert state.sources["acc"].data["step"] == [0, 1]
    assert len(state.sources["cosine"].data["cosine"]) == 1
    assert state.trainers["shared"].step_count == 1 and state.trainers["separate"].step_count == 1
    state.step_once()
    assert state.steps == 2 and curve_len(state) == 3


def test_tick_trains_and_improves_training_accuracy(state):
    for _ in range(60):
        state.tick()
    assert state.steps == 60 * page.STEPS_PER_TICK
    acc = state.sources["acc"].data
    for m in MODELS:
        for t in ("a", "b"):
            col = np.asarray(acc[f"{m}_train_{t}"])
            assert np.all((0 <= col) & (col <= 1))
            assert col[-1] > col[0] + 0.1, (m, t, col[0], col[-1])
    loss = state.sources["loss"].data
    assert loss["shared_train_a"][-1] < loss["shared_train_a"][0]


def test_cosine_is_the_trunk_gradient_cosine(state):
    state.tick(3)
    cos = np.asarray(state.sources["cosine"].data["cosine"])
    assert cos.shape == (3,) and np.all(np.abs(cos) <= 1 + 1e-12)
    # recompute the next step's cosine by hand from the per-task gradients of the shared trunk
    tr = state.trainers["shared"]
    rng_state = tr.rng.bit_generator.state
    x, targets, masks = tr._batch()
    tr.rng.bit_generator.state = rng_state
    res = state.nets["shared"].losses_and_grads(x, targets, masks, train=True)
    g = res.grads[:, : res.n_shared]
    expected = g[0] @ g[1] / (np.linalg.norm(g[0]) * np.linalg.norm(g[1]))
    state.step_once()
    assert state.sources["cosine"].data["cosine"][-1] == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_moving_relatedness_resets_retrains_and_changes_accuracy(state):
    for _ in range(20):
        state.tick()
    before = dict(state.sources["acc"].data)
    colors_b = list(state.sources["points"].data["color_b"])
    state.relatedness = 0.1
    assert state.steps == 0 and state.running  # reset, and retraining is requested at once
    assert curve_len(state) == 1
    assert state.sources["points"].data["color_b"] != colors_b  # task b's labels follow the new pattern
    for _ in range(20):
        state.tick()
    after = state.sources["acc"].data
    assert after["step"] == before["step"]
    assert any(after[c] != before[c] for c in before if c != "step")


def test_every_data_or_model_setting_resets(state):
    for name, value in (("hidden", 5), ("n_samples", 60), ("noise", 0.3), ("seed", 3), ("relatedness", 0.5)):
        state.tick(2)
        assert state.steps == 2
        setattr(state, name, value)
        assert state.steps == 0, name
    assert state.nets["shared"].n_shared > 0 and state.nets["separate"].n_shared == 0
    assert state.train_data.n_samples == 60


def test_learning_rate_applies_live_without_reset(state):
    state.tick(3)
    state.lr = 0.2
    assert state.steps == 3
    assert all(tr.optimizer.lr == 0.2 for tr in state.trainers.values())


def test_out_of_range_values_are_refused_in_python(state):
    for name, bad in (
        ("relatedness", 1.5),
        ("relatedness", -0.1),
        ("hidden", 0),
        ("hidden", 1000),
        ("n_samples", 5),
        ("noise", 0.9),
        ("lr", 0.0),
        ("seed", -1),
    ):
        with pytest.raises(ValueError):
            setattr(state, name, bad)
    assert state.relatedness == 0.8 and state.hidden == 8


def test_decision_images_are_probabilities_and_update(state):
    img0 = {k: np.array(state.sources[f"heat_{k}"].data["image"][0]) for k in ("shared_a", "separate_b")}
    for _ in range(10):
        state.tick()
    for k, before in img0.items():
        after = np.array(state.sources[f"heat_{k}"].data["image"][0])
        assert after.shape == (page.GRID, page.GRID)
        assert np.all((after >= 0) & (after <= 1))
        assert np.abs(after - before).max() > 0.05, k


def test_verdict_names_the_winner_with_the_measured_gap(state):
    for _ in range(25):
        state.tick()
    acc = state.latest("acc", "test")
    lines = state.verdict.splitlines()
    for letter, t, line in zip("AB", ("a", "b"), lines, strict=False):
        gap = 100 * (acc[("shared", t)] - acc[("separate", t)])
        assert line.startswith(f"Task {letter}:")
        if abs(gap) < 0.5:
            assert "draw" in line
        else:
            assert ("shared trunk wins" in line) == (gap > 0)
            assert re.search(rf"by {abs(gap):.1f} points", line), (line, gap)
    assert "mean cosine" in lines[2]


def test_max_steps_stops_training(state, monkeypatch):
    monkeypatch.setattr(state, "max_steps", 10)
    state.play()
    assert state.running
    for _ in range(5):
        state.tick()
    assert state.steps == 10 and not state.running
    assert "finished" in state.status
    state.play()
    assert not state.running  # nothing left to train until a reset


def test_divergence_shows_a_message_and_stops_cleanly(state):
    state.tick(2)
    state.running = True
    state.nets["shared"].params[:] = np.nan  # what an exploding run looks like to the trainer
    state.tick()
    assert not state.running
    assert "diverged" in state.error.lower() and "Reset" in state.error
    assert state.steps == 2
    for key in ("acc", "loss"):
        for col, values in state.sources[key].data.items():
            assert np.all(np.isfinite(values)), (key, col)  # no NaN reaches a plot
    state.play()
    assert not state.running
    state.reset()
    assert state.error == "" and state.steps == 0
    state.tick(2)
    assert state.steps == 2


def test_deep_link_restores_state_and_escapes_notices():
    view = create_page("?page=shared_separate&relatedness=0.3&seed=5&hidden=<script>alert(1)</script>", autoplay=False)
    s = view.state
    assert s.relatedness == 0.3 and s.seed == 5 and s.hidden == 8
    assert "&lt;script&gt;" in view.notices.object and "<script" not in view.notices.object
    root = pn.panel(view).get_root()
    try:
        slider = root.select_one({"name": "relatedness"})
        assert slider is not None and slider.value == 0.3
        for name in (
            "acc_source",
            "loss_source",
            "cosine_source",
            "points_source",
            "heat_shared_a",
            "train_button",
            "pause_button",
            "step_button",
            "reset_button",
            "verdict",
            "status",
            "cosine_figure",
            "boundary_separate_b",
        ):
            assert root.select_one({"name": name}) is not None, name
    finally:
        view.animator.stop()


def test_buttons_drive_the_state():
    view = create_page({}, autoplay=False)
    try:
        s = view.state
        view.buttons["step"].clicks += 1
        assert s.steps == 1
        view.buttons["train"].clicks += 1
        assert s.running and view.animator.callback is not None
        view.buttons["pause"].clicks += 1
        assert not s.running and view.animator.callback is None  # the periodic callback is stopped
        view.buttons["reset"].clicks += 1
        assert s.steps == 0
    finally:
        view.animator.stop()


def test_view_text_panes_are_escaped():
    view = create_page({}, autoplay=False)
    view.state.error = "<b>boom</b>"
    assert "&lt;b&gt;boom" in view.error.object
    view.state.status = "<img src=x>"
    assert "<img" not in view.status.object


def test_closing_the_session_stops_the_periodic_callback():
    view = create_page({}, autoplay=True)
    assert view.state.running and view.animator.callback is not None
    view.animator._on_destroyed(None)  # what Bokeh calls when the browser tab goes away
    assert view.animator.callback is None and not view.state.running


def test_a_closed_tab_stops_training_at_the_next_tick():
    from types import SimpleNamespace

    view = create_page({}, autoplay=True)
    session = SimpleNamespace(connection_count=0)
    view.animator._doc = SimpleNamespace(session_context=SimpleNamespace(session=session))
    view.animator._tick()  # not connected yet: the page is still loading, keep training
    assert view.state.running and view.state.steps > 0
    session.connection_count = 1
    view.animator.receipt.value = str(view.animator._sent)  # the browser drew that update: the next tick may go
    before = view.state.steps
    view.animator._tick()
    assert view.state.steps > before
    session.connection_count = 0  # the browser went away
    before = view.state.steps
    view.animator._tick()
    assert not view.state.running and view.animator.callback is None
    assert view.state.steps == before


def test_a_blown_up_model_never_puts_nan_into_plots(state):
    state.tick(3)
    images = {k: np.array(v.data["image"][0]) for k, v in state.sources.items() if k.startswith("heat_")}
    state.nets["separate"].params[:] = np.nan  # one model blows up; scoring it must not stream NaN
    rows = {"acc": page._empty_curves(), "loss": page._empty_curves()}
    state._append_scores(rows)
    assert rows["acc"]["step"] == [] and rows["loss"]["step"] == []
    state._update_images()
    for k, before in images.items():
        after = np.array(state.sources[k].data["image"][0])
        assert np.all(np.isfinite(after)), k
        if k.startswith("heat_separate"):
            assert np.array_equal(after, before)  # the last good map stays


def test_an_exception_in_a_tick_stops_the_loop_with_a_visible_error(monkeypatch):
    view = create_page({}, autoplay=True)

    def broken(n=1):
        raise RuntimeError("boom")

    monkeypatch.setattr(view.state, "tick", broken)
    view.animator._tick()
    assert not view.state.running and view.animator.callback is None
    assert "RuntimeError: boom" in view.state.error and "boom" in view.error.object


def test_ones_own_data_in_the_worker_is_not_taken_back_as_if_the_browser_had_sent_it(monkeypatch):
    """Upload, Reset to generated data, the tab's data restored: only the browser's own changes are processed."""
    from test_custom_data import GOOD
    from worker_document import check_own_data_in_the_worker

    check_own_data_in_the_worker(create_page, "shared_separate", GOOD, monkeypatch)

"""Logic tests of the "Training Loop" page without a browser: one Trainer, its step log, settings and URL."""

from __future__ import annotations

import numpy as np
import panel as pn
import pytest

import app.training_loop_state as page
from app.training_loop import create_page, render_log
from app.training_loop_state import TrainingLoopState
from mtl_core.combine import make_combiner


@pytest.fixture
def state():
    return TrainingLoopState()


def test_fresh_state_is_empty_and_paused(state):
    assert state.steps == 0 and not state.running
    assert all(len(v) == 0 for v in state.sources["log"].data.values())
    assert "No steps yet" in render_log(state)
    assert state.weighting == "uncertainty" and state.combiner == "pcgrad"


def test_step_logs_exactly_one_row_matching_the_trainer_record(state):
    state.running = True
    state.step_once()
    assert not state.running and state.steps == 1
    log = state.sources["log"].data
    assert log["step"] == [1]
    rec = state.trainer.history[-1]
    assert log["loss_0"][0] == pytest.approx(rec.losses[0]) and log["loss_1"][0] == pytest.approx(rec.losses[1])
    assert log["weight_0"][0] == pytest.approx(rec.weights[0])
    assert log["cosine"][0] == pytest.approx(rec.cosine[0, 1])
    assert log["projected"][0] == rec.combine_info["n_projections"]


def test_uncertainty_weights_follow_the_learned_log_variances(state):
    state.tick(5)
    w = state.trainer.weighting
    # the weights used at the NEXT step are 0.5 * exp(-s) for the current log-variances s
    expected = 0.5 * np.exp(-np.asarray(w.log_var))
    state.step_once()
    log = state.sources["log"].data
    assert [log["weight_0"][-1], log["weight_1"][-1]] == pytest.approx(list(expected))


def test_pcgrad_projects_exactly_on_conflicting_steps(state):
    for _ in range(20):
        state.tick()
    log = state.sources["log"].data
    cos, proj = np.asarray(log["cosine"]), np.asarray(log["projected"])
    assert (proj > 0).any() and (proj == 0).any()  # low relatedness: some conflict, not always
    # with two tasks PCGrad projects (both gradients) iff their cosine is negative
    assert np.array_equal(proj > 0, cos < 0)
    assert np.all(proj[cos < 0] == 2)
    html = render_log(state)
    assert html.count("<tr") == page.LOG_ROWS + 1 and "yes" in html


def test_step_log_shows_newest_first(state):
    state.tick(15)
    rows = state.log_rows()
    assert [r["step"] for r in rows] == list(range(15, 15 - page.LOG_ROWS, -1))


def test_combiner_choice_is_used_by_the_trainer(state):
    state.combiner = "mgda"
    assert state.steps == 0 and state.running  # a new method: reset and retrain
    assert state.trainer.combiner.name == "mgda"
    state.tick(3)
    assert all(p == 0 for p in state.sources["log"].data["projected"])
    assert "<td>-</td>" in render_log(state)  # "projected?" only means something for PCGrad


@pytest.mark.parametrize("name", ["nash_mtl", "imtl_g", "fairgrad", "aligned_mtl"])
def test_new_combiners_train_the_loop_and_stay_finite(state, name):
    state.param.update(problem="scale_mismatch", combiner=name)
    assert state.trainer.combiner.name == name
    state.tick(20)
    log = state.sources["log"].data
    assert state.steps == 20 and not state.error
    assert np.all(np.isfinite(log["loss_0"])) and np.all(np.isfinite(log["loss_1"]))
    assert log["loss_0"][-1] < log["loss_0"][0]  # the x100 regression is learning


def test_sum_combiner_direction_is_what_the_update_used(state):
    state.combiner = "sum"
    state.weighting = "equal"
    net = state.net
    before = net.params.copy()
    state.trainer.optimizer = type(state.trainer.optimizer)(lr=0.01)  # fresh Adam: first step is lr * sign
    tr = state.trainer
    rng_state = tr.rng.bit_generator.state
    x, targets, masks = tr._batch()
    tr.rng.bit_generator.state = rng_state
    res = net.losses_and_grads(x, targets, masks, train=True)
    direction = make_combiner("sum").combine(res.grads[:, : res.n_shared]).direction
    state.step_once()
    moved = before[: res.n_shared] - net.params[: res.n_shared]
    nz = np.abs(direction) > 1e-12
    assert np.allclose(np.sign(moved[nz]), np.sign(direction[nz]))


def test_scale_mismatch_problem_swaps_tasks_and_scores(state):
    state.problem = "scale_mismatch"
    assert state.task_names == ["value", "label"]
    state.weighting = "equal"
    state.tick(10)
    log = state.sources["log"].data
    assert np.mean(log["loss_0"]) > 100 * np.mean(log["loss_1"])  # the mismatch the page is about
    lines = state.score_lines()
    assert "RMSE" in lines[0] and "accuracy" in lines[1]


def test_settings_changes_reset_and_lr_applies_live(state):
    for name, value in (("weighting", "gradnorm"), ("relatedness", 0.9), ("hidden", 8), ("seed", 4)):
        state.tick(2)
        setattr(state, name, value)
        assert state.steps == 0, name
    state.tick(2)
    state.lr = 0.05
    assert state.steps == 2 and state.trainer.optimizer.lr == 0.05


def test_out_of_range_values_are_refused_in_python(state):
    for name, bad in (
        ("lr", 1.0),
        ("lr", -0.01),
        ("hidden", 2),
        ("relatedness", 2.0),
        ("combiner", "nope"),
        ("weighting", "<script>"),
        ("problem", "other"),
    ):
        with pytest.raises(ValueError):
            setattr(state, name, bad)


def test_max_steps_and_divergence_stop_training(state, monkeypatch):
    monkeypatch.setattr(state, "max_steps", 7)
    state.play()
    for _ in range(5):
        state.tick()
    assert state.steps == 7 and not state.running
    state.reset()
    state.tick(2)
    state.play()
    state.net.params[:] = np.inf
    state.tick()
    assert not state.running and "diverged" in state.error.lower()
    assert state.steps == 2
    assert all(np.all(np.isfinite(v)) for v in state.sources["log"].data.values())


def test_scores_refresh_every_eval_interval(state):
    first = state.scores
    state.tick(page.EVAL_EVERY)
    assert state.scores is not first
    for name in state.task_names:
        assert 0.0 <= state.scores[name]["accuracy"] <= 1.0


def test_deep_link_restores_state_and_the_view_has_named_models():
    view = create_page("?page=training_loop&combiner=mgda&weighting=dwa&lr=5&seed=oops", autoplay=False)
    try:
        s = view.state
        assert (s.combiner, s.weighting, s.lr, s.seed) == ("mgda", "dwa", 0.3, 0)
        assert view.notices.object.count("mtl-notice") == 2
        root = pn.panel(view).get_root()
        assert root.select_one({"name": "combiner"}).value == "mgda"
        assert root.select_one({"name": "lr"}).value == 0.3
        for name in (
            "log_source",
            "step_log",
            "metrics",
            "loss_figure",
            "weight_figure",
            "cosine_figure",
            "relatedness",
            "problem",
            "weighting",
            "train_button",
            "step_button",
        ):
            assert root.select_one({"name": name}) is not None, name
        view.buttons["step"].clicks += 1
        assert s.steps == 1 and "<td>1</td>" in view.step_log.object
        s.problem = "scale_mismatch"
        assert view.widgets["relatedness"].disabled
    finally:
        view.animator.stop()

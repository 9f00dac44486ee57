"""Logic tests of the "Loss-Weighting Lab" page without a browser: training, curves, weights, masks, sampling."""

from __future__ import annotations

import numpy as np
import pytest

from app import common
from app.weighting_lab import create_page
from app.weighting_lab_state import METHODS, SETTINGS, WeightingLabState, sampling_probabilities
from mtl_core.sampling import TaskSampler


@pytest.fixture
def state():
    return WeightingLabState()


def n_points(state, method):
    return len(state.sources[f"curves_{method}"].data["step"])


def test_fresh_state_has_one_point_per_method(state):
    assert state.steps == 0 and not state.running
    assert set(state.runs) == set(METHODS)
    for m in METHODS:
        assert n_points(state, m) == 1
        assert state.sources[f"curves_{m}"].data["step"] == [0]
    assert state.task_names == ["value", "label"]


def test_stepping_trains_and_the_curves_grow(state):
    start = {m: state.latest(m)["loss_0"] for m in METHODS}
    for _ in range(10):
        state.tick()
    assert state.steps == 10 * 8
    for m in METHODS:
        data = state.sources[f"curves_{m}"].data
        assert len(data["step"]) == 11 and data["step"][-1] == state.steps
        assert len(state.runs[m].history) == state.steps
    # equal weights put the big regression loss in charge: it must come down
    assert state.latest("equal")["loss_0"] < 0.8 * start["equal"]
    state.step_once()
    assert state.steps == 81 and n_points(state, "equal") == 12


def test_weights_are_recorded_per_method(state):
    for _ in range(5):
        state.tick()
    for m in METHODS:
        rec = state.runs[m].history[-1]
        last = state.latest(m)
        assert last["weight_0"] == pytest.approx(rec.weights[0])
        assert last["weight_1"] == pytest.approx(rec.weights[1])
        weighted = rec.weights * rec.losses
        assert last["share_0"] == pytest.approx(weighted[0] / weighted.sum())
    assert state.latest("equal")["weight_0"] == 1.0
    # uncertainty weighting gives the huge-loss regression a far smaller weight than the classification
    # (the page warm-starts its log-variances at log L of the first batch, so this holds from the start)
    u = state.latest("uncertainty")
    assert u["weight_0"] < 0.01 * u["weight_1"]
    # and so the regression's share of the weighted loss drops well below equal weighting's
    assert state.latest("equal")["share_0"] > 0.99
    assert u["share_0"] < state.latest("equal")["share_0"]


def test_methods_choice_trains_only_those(state):
    state.methods = ["equal", "dwa"]
    assert set(state.runs) == {"equal", "dwa"}
    state.tick()
    assert n_points(state, "equal") == 2 and n_points(state, "dwa") == 2
    assert n_points(state, "gradnorm") == 0
    assert "GradNorm" not in state.summary


def test_missing_fraction_changes_the_masks(state):
    assert all(m.all() for m in state.train_data.masks.values())
    state.missing = 0.4
    for task, mask in state.train_data.masks.items():
        assert mask.mean() == pytest.approx(0.6, abs=0.01), task
    assert all(m.all() for m in state.test_data.masks.values())  # test losses use every label
    # training still runs on the masked data
    state.tick()
    assert n_points(state, "equal") == 2 and np.isfinite(state.latest("equal")["loss_1"])
    state.missing = 0.0
    assert all(m.all() for m in state.train_data.masks.values())


def test_missing_fraction_in_unequal_data(state):
    state.param.update(data="unequal", missing=0.5, n_small=100)
    for name, ds in state.train_data.items():
        assert ds.masks[name].mean() == pytest.approx(0.5, abs=0.02)


def test_temperature_changes_the_sampling_probabilities_shown(state):
    state.data = "unequal"
    before = list(state.sources["sampling"].data["prob"])
    state.alpha = 1.0
    shown = dict(zip(state.sources["sampling"].data["task"], state.sources["sampling"].data["prob"], strict=True))
    assert shown == pytest.approx(TaskSampler({"big": 1000, "small": 50}, method="proportional").probabilities())
    assert shown["small"] == pytest.approx(50 / 1050)
    assert list(state.sources["sampling"].data["prob"]) != before
    state.alpha = 0.0
    shown = dict(zip(state.sources["sampling"].data["task"], state.sources["sampling"].data["prob"], strict=True))
    assert shown == pytest.approx({"big": 0.5, "small": 0.5})
    state.alpha = 0.3
    assert state.sources["sampling_marker"].data["alpha"] == [0.3, 0.3]
    expected = sampling_probabilities({"big": 1000, "small": 50}, 0.3)
    assert state.sources["sampling_marker"].data["p"] == pytest.approx([expected["big"], expected["small"]])
    assert "α = 0.30" in state.sampling_text and f"{expected['small']:.3f}" in state.sampling_text
    # the trainers draw their batches with that sampler
    assert state.runs["equal"].sampler.probabilities() == pytest.approx(
        TaskSampler(
            {k: d.n_samples for k, d in state.train_data.items()}, method="temperature", alpha=0.3
        ).probabilities()
    )


def test_a_new_run_of_the_same_sampling_leaves_the_sampling_plot_alone(state):
    """Another setting (missing labels, seed) starts a new run, but the sampling plot shows the same rule: its sources
    are not sent again (the page would redraw it for nothing); a change of alpha or the sizes redraws it."""
    state.data = "unequal"
    changes = []
    for name in ("sampling", "sampling_curve", "sampling_marker"):
        state.sources[name].on_change("data", lambda attr, old, new, name=name: changes.append(name))
    state.param.update(missing=0.3, seed=4)
    assert state.steps <= state.steps_per_tick and changes == []  # a new run, the same plot
    state.alpha = 0.8  # the rule's curve over alpha stays
    assert sorted(changes) == ["sampling", "sampling_marker"]
    changes.clear()
    state.n_small = 120
    assert sorted(changes) == ["sampling", "sampling_curve", "sampling_marker"]
    assert state.sources["sampling"].data["size"] == [1000, 120]


def test_unequal_sizes_trains_with_separate_datasets(state):
    state.param.update(data="unequal", n_small=40)
    assert state.task_names == ["big", "small"]
    assert state.train_data["small"].n_samples == 28 and state.test_data["small"].n_samples == 12
    for _ in range(3):
        state.tick()
    assert n_points(state, "gradnorm") == 4


def test_divergence_shows_a_message_and_stops_cleanly(state):
    state.param.update(optimizer="sgd", scale_log10=3.0, lr=0.5)
    state.running = True
    for _ in range(40):
        if not state.running:
            break
        state.tick()
    assert state.error and "diverged" in state.error and "Reset" in state.error
    bad = [m for m in METHODS if state.diverged(m)]
    assert bad
    for m in METHODS:
        data = state.sources[f"curves_{m}"].data
        # no NaN, inf or absurd point reaches the loss plots
        losses = np.array(data["loss_0"], float)
        assert np.all(np.isfinite(losses)) and losses.max() < 1e4 * losses[0] * 1.0001
    if len(bad) == len(METHODS):
        assert not state.running and "diverged" in state.status
    state.reset()
    assert state.error == "" and state.steps == 0 and all(state.diverged(m) is None for m in METHODS)


def test_lr_change_applies_without_reset(state):
    state.tick()
    state.lr = 0.002
    assert state.steps == 8
    assert all(tr.optimizer.lr == 0.002 for tr in state.runs.values())


def test_tick_stops_at_max_steps(state, monkeypatch):
    monkeypatch.setattr(state, "max_steps", 20)
    state.running = True
    for _ in range(5):
        state.tick()
    assert state.steps == 20 and not state.running
    state.play()
    assert not state.running


@pytest.mark.parametrize(
    "name,value",
    [
        ("missing", 0.95),
        ("alpha", -0.1),
        ("n_small", 5),
        ("lr", 0.0),
        ("scale_log10", 9.0),
        ("data", "<b>"),
        ("methods", ["nope"]),
        ("optimizer", "rmsprop"),
    ],
)
def test_bad_values_are_refused_in_python(state, name, value):
    before = getattr(state, name)
    with pytest.raises(ValueError):
        setattr(state, name, value)
    assert getattr(state, name) == before


def test_url_restores_and_clamps():
    s = WeightingLabState()
    notices = common.bind_url(s, SETTINGS, "?methods=dwa,equal,<script>&alpha=7&data=unequal&missing=0.2")
    assert s.methods == ["equal", "dwa"] and s.alpha == 1.0 and s.data == "unequal" and s.missing == 0.2
    assert len(notices) == 2
    assert "<script>" not in common.render_notices(notices)


def test_create_page_builds_the_view():
    view = create_page("?data=unequal&n_small=200", autoplay=False)
    assert view.state.n_small == 200 and not view.state.running
    view.__panel__()
    assert view.widgets["alpha"].disabled is False and view.widgets["scale_log10"].disabled is True
    assert "200 rows" in view.figures["loss_1"].title.text
    view.state.data = "scale"
    assert view.widgets["alpha"].disabled is True
    assert "regression" in view.figures["loss_0"].title.text


def test_no_method_chosen_trains_nothing_and_says_so(state):
    state.methods = []
    assert state.runs == {}
    state.play()
    assert not state.running
    state.tick()
    assert "at least one" in state.status
    assert state.steps == 0


def test_live_training_gets_a_point_every_few_steps_whatever_the_steps_per_tick(state):
    from app.weighting_lab_state import RECORD_EVERY

    state.running = True  # as under the Animator, which may give a tick 1 to 12 steps
    for _ in range(3 * RECORD_EVERY):
        state.tick(1)
    assert state.steps == 3 * RECORD_EVERY and n_points(state, "equal") == 4
    state.tick(3)
    assert n_points(state, "equal") == 4
    state.tick(12)  # a long tick crossing a multiple of RECORD_EVERY: one point
    assert n_points(state, "equal") == 5 and state.sources["curves_equal"].data["step"][-1] == state.steps
    state.step_once()  # a Step always shows its result
    assert n_points(state, "equal") == 6


def test_ones_own_data_in_the_worker_is_not_taken_back_as_if_the_browser_had_sent_it(monkeypatch):
    """Upload, Reset to generated data, the tab's data restored: only the browser's own changes are processed."""
    from test_custom_data import REG_CSV
    from worker_document import check_own_data_in_the_worker

    check_own_data_in_the_worker(create_page, "weighting_lab", REG_CSV, monkeypatch)

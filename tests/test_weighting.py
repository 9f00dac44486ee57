"""Loss-weighting methods: formulas written out independently, state, resets, bad inputs."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mtl_core.weighting import WEIGHTINGS, make_weighting, weighting_settings

NAMES = ["equal", "fixed", "uncertainty", "gradnorm", "loss_norm", "dwa", "performance", "curriculum"]
pos_losses = st.floats(0.01, 10.0)


def run(w, losses, t, grads_last=None, metrics=None):
    if grads_last is None and w.needs_grads:
        grads_last = np.ones((w.n_tasks, 3))
    return w.step(np.asarray(losses, dtype=float), step=t, grads_last=grads_last, metrics=metrics)


def test_registry_and_flags():
    assert set(WEIGHTINGS) == set(NAMES)
    for name in NAMES:
        w = make_weighting(name, n_tasks=2)
        assert w.name == name
    assert WEIGHTINGS["gradnorm"].needs_grads and not WEIGHTINGS["equal"].needs_grads
    assert WEIGHTINGS["performance"].needs_metrics and not WEIGHTINGS["dwa"].needs_metrics
    assert weighting_settings("dwa") == {"temperature": 2.0}
    assert weighting_settings("gradnorm")["alpha"] == 1.5


@pytest.mark.parametrize("name", NAMES)
def test_state_is_json_and_weights_are_fresh_arrays(name):
    w = make_weighting(name, n_tasks=3)
    out = []
    for t in range(4):
        weights = run(w, [1.0, 2.0, 3.0 - 0.5 * t], t, metrics=np.array([0.5, 0.7, 0.9]))
        assert weights.shape == (3,) and np.all(np.isfinite(weights)) and np.all(weights >= 0)
        out.append(weights)
        json.dumps(w.state())
    out[0][:] = -1.0  # mutating a returned array must not touch the method's state
    assert np.all(run(w, [1.0, 1.0, 1.0], 4, metrics=np.array([0.5, 0.7, 0.9])) >= 0)


def test_equal_and_fixed():
    assert np.array_equal(run(make_weighting("equal", 3), [1, 2, 3], 0), np.ones(3))
    np.testing.assert_allclose(run(make_weighting("fixed", 2, alpha=0.3), [1, 2], 0), [0.3, 0.7])
    np.testing.assert_allclose(run(make_weighting("fixed", 3, weights=(1, 0, 2.5)), [1, 2, 3], 5), [1, 0, 2.5])
    assert np.array_equal(run(make_weighting("fixed", 3), [1, 2, 3], 0), np.ones(3))


# ---------------------------------------------------------------- uncertainty
@settings(max_examples=100, deadline=None)
@given(hnp.arrays(np.float64, 3, elements=st.floats(-3, 3)), hnp.arrays(np.float64, 3, elements=pos_losses))
def test_uncertainty_gradient_matches_finite_differences(s, losses):
    w = make_weighting("uncertainty", 3, grad_clip=0.0)
    w.log_var = s.copy()
    grad = w.log_var_grad(losses)
    h = 1e-6
    for k in range(3):
        w.log_var = s.copy()
        w.log_var[k] += h
        up = w.total_objective(losses)
        w.log_var[k] -= 2 * h
        down = w.total_objective(losses)
        assert abs((up - down) / (2 * h) - grad[k]) < 1e-6 * (1 + abs(grad[k]) + losses[k] * np.exp(-s[k]))
    w.log_var = s.copy()
    # the weight used is d total / d L_k, by finite differences in the losses
    weights = w.step(losses, step=0)
    for k in range(3):
        w2 = make_weighting("uncertainty", 3)
        w2.log_var = s.copy()
        e = np.zeros(3)
        e[k] = 1e-6
        fd = (w2.total_objective(losses + e) - w2.total_objective(losses - e)) / 2e-6
        assert abs(fd - weights[k]) < 1e-7 * (1 + weights[k])
    # and s moved by exactly one SGD step on its own gradient
    np.testing.assert_allclose(w.log_var, s - 0.05 * grad, rtol=0, atol=1e-14)


def test_uncertainty_learns_log_loss():
    w = make_weighting("uncertainty", 2, lr=0.2, grad_clip=0.0)
    losses = np.array([0.5, 4.0])
    for t in range(500):
        weights = w.step(losses, step=t)
    np.testing.assert_allclose(w.log_var, np.log(losses), atol=1e-6)
    np.testing.assert_allclose(weights, 0.5 / losses, rtol=1e-5)
    w.reset()
    assert np.array_equal(w.log_var, np.zeros(2))


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e4])
def test_uncertainty_clipped_steps_reach_log_loss_at_any_scale(scale):
    # unclipped SGD at lr=0.05 jumps s into its bound when L ~ 1e4; clipped steps walk there in ~200 steps
    w = make_weighting("uncertainty", 2, lr=0.05)
    losses = np.array([1.0, scale])
    path = [w.step(losses, step=t) for t in range(600)]
    assert np.all(np.abs(w.log_var) < w.max_abs_log_var)
    np.testing.assert_allclose(w.log_var, np.log(losses), atol=0.02)
    assert np.all(np.isfinite(path))


def test_uncertainty_warm_start_from_first_loss():
    w = make_weighting("uncertainty", 3, init_from_loss=True)
    first = w.step(np.array([4.0, 0.0, 1e4]), step=0)  # task 1 unlabelled in this batch: stays cold
    np.testing.assert_allclose(first, [0.5 / 4.0, 0.5, 0.5 / 1e4])
    w.step(np.array([4.0, 2.0, 1e4]), step=1)
    # task 1 warms up at its first positive loss; the others keep their own path (already at the optimum)
    np.testing.assert_allclose(w.log_var, np.log([4.0, 2.0, 1e4]), atol=1e-12)
    w.reset()
    assert np.array_equal(w.log_var, np.zeros(3)) and not w._warm.any()
    with pytest.raises(ValueError, match="init_from_loss"):
        make_weighting("uncertainty", 2, init_from_loss="yes")


def test_uncertainty_unclipped_sgd_overshoots_at_large_scale():
    w = make_weighting("uncertainty", 2, lr=0.05, grad_clip=0.0)
    w.step(np.array([1.0, 1e4]), step=0)
    assert w.log_var[1] == w.max_abs_log_var  # why the clip exists


def test_uncertainty_bad_grad_clip():
    with pytest.raises(ValueError, match="grad_clip"):
        make_weighting("uncertainty", 2, grad_clip=-1.0)


# ---------------------------------------------------------------- gradnorm
@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4), st.integers(1, 20), st.integers(0, 2**32 - 1), st.floats(0.0, 3.0), st.floats(1e-3, 1.0))
def test_gradnorm_weights_sum_to_T_after_every_step(T, n_steps, seed, alpha, lr):
    rng = np.random.default_rng(seed)
    w = make_weighting("gradnorm", T, alpha=alpha, lr=lr)
    for t in range(n_steps):
        grads_last = rng.normal(size=(T, 6)) * rng.uniform(0, 5, (T, 1))
        weights = w.step(rng.uniform(0.0, 5.0, T), step=t, grads_last=grads_last)
        assert abs(weights.sum() - T) < 1e-10 and np.all(weights > 0)
        assert abs(sum(w.state()["weights"]) - T) < 1e-10


def test_gradnorm_one_step_by_hand():
    alpha, lr = 1.5, 0.1
    w = make_weighting("gradnorm", 2, alpha=alpha, lr=lr)
    g = np.array([[3.0, 4.0], [1.0, 0.0]])  # norms 5 and 1, mean norm 3
    norms = np.array([5.0, 1.0])
    first = w.step([2.0, 1.0], step=0, grads_last=g)
    assert np.array_equal(first, [1.0, 1.0])  # weights in use start at 1
    # step 0: all ratios are 1 -> target is mean(G) = 3 for both: G = (5, 1)
    # sign(G_k - 3) = (+1, -1); the step is lr * ||g_k|| / mean norm = (0.5/3, 0.1/3), below the distance to the
    # target |G_k - 3| / ||g_k|| = (0.4, 2)
    expected = np.array([1.0 - lr * 5 / 3, 1.0 + lr * 1 / 3])
    expected *= 2 / expected.sum()
    np.testing.assert_allclose(w.state()["weights"], expected, atol=1e-14)
    # step 1: task 0's loss halved, task 1's did not: task 1 lags -> larger target
    second = w.step([1.0, 1.0], step=1, grads_last=g)
    np.testing.assert_allclose(second, expected)
    G = expected * norms
    ratio = np.array([0.5, 1.0])
    r = ratio / ratio.mean()
    target = G.mean() * r**alpha
    step = np.minimum(lr * norms / norms.mean(), np.abs(G - target) / norms)
    nxt = np.maximum(expected - np.sign(G - target) * step, 1e-3)
    np.testing.assert_allclose(w.state()["weights"], nxt * 2 / nxt.sum(), atol=1e-14)


def test_gradnorm_step_stops_at_the_target():
    # a step is never longer than the distance to the (constant) target: with a large lr one step balances
    w = make_weighting("gradnorm", 2, alpha=0.0, lr=4.0)
    w.step([1.0, 1.0], step=0, grads_last=np.array([[1.0, 0.0], [0.0, 3.0]]))  # G = (1, 3), target 2
    # relative steps 4 * (1, 3) / 2 = (2, 6) are capped at the distances 1 and 1/3: w = (2, 2/3), then / (4/3)
    np.testing.assert_allclose(w.state()["weights"], [1.5, 0.5], atol=1e-14)
    G = w.w * np.array([1.0, 3.0])
    np.testing.assert_allclose(G[0], G[1], rtol=1e-14)
    # a smaller lr moves each weight by lr * ||g_k|| / mean norm where that is shorter
    w = make_weighting("gradnorm", 2, alpha=0.0, lr=1.0)
    w.step([1.0, 1.0], step=0, grads_last=np.array([[1.0, 0.0], [0.0, 3.0]]))
    np.testing.assert_allclose(w.state()["weights"], np.array([1.5, 2.0 / 3.0]) * 2 / (1.5 + 2.0 / 3.0), atol=1e-14)


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("lr", [0.025, 0.2])
def test_gradnorm_converges_whatever_the_gradient_scale(scale, lr):
    """Two tasks, alpha = 0, last-layer norms 1 and 10 (times scale), constant losses: the weighted norms
    w_k ||g_k|| must become equal and stay so. A plain gradient step of lr * ||g_k|| could not do that for
    norms of O(10): it moved a weight by more than its balanced value and bounced between the floor and ~1."""
    w = make_weighting("gradnorm", 2, alpha=0.0, lr=lr)
    g = np.array([[1.0, 0.0, 0.0], [0.0, 6.0, 8.0]]) * scale  # norms 1 and 10
    ratios = []
    for t in range(400):
        weights = w.step([0.7, 1.3], step=t, grads_last=g)
        G = weights * np.linalg.norm(g, axis=1)
        ratios.append(G[0] / G[1])
    ratios = np.array(ratios)
    assert abs(ratios[0] - 0.1) < 1e-12  # starts unbalanced
    np.testing.assert_allclose(ratios[-100:], 1.0, rtol=1e-9)
    assert np.all(np.diff(ratios[:50]) >= -1e-12)  # approaches the balance without overshooting
    np.testing.assert_allclose(w.state()["weights"], [20 / 11, 2 / 11], rtol=1e-9)


def test_gradnorm_trajectory_is_scale_free():
    runs = []
    for scale in (1e-3, 1.0, 1e3):
        w = make_weighting("gradnorm", 3, alpha=1.5)
        rng = np.random.default_rng(4)
        g = rng.normal(size=(3, 5)) * np.array([[1.0], [4.0], [0.3]])
        runs.append([w.step(rng.uniform(0.5, 2.0, 3), step=t, grads_last=g * scale) for t in range(60)])
    np.testing.assert_allclose(runs[0], runs[1], rtol=1e-12)
    np.testing.assert_allclose(runs[2], runs[1], rtol=1e-12)


def test_gradnorm_needs_grads_last():
    w = make_weighting("gradnorm", 2)
    with pytest.raises(ValueError, match="grads_last"):
        w.step([1.0, 1.0], step=0)
    with pytest.raises(ValueError, match="grads_last"):
        w.step([1.0, 1.0], step=0, grads_last=np.ones((3, 2)))
    with pytest.raises(ValueError, match="grads_last"):
        w.step([1.0, 1.0], step=0, grads_last=np.array([[1.0, np.nan], [1.0, 1.0]]))


# ---------------------------------------------------------------- loss_norm, dwa
def test_loss_norm_divides_by_initial_loss():
    w = make_weighting("loss_norm", 3)
    np.testing.assert_allclose(run(w, [2.0, 0.5, 0.0], 0), [0.5, 2.0, 1.0])
    np.testing.assert_allclose(run(w, [1.0, 1.0, 1.0], 1), [0.5, 2.0, 1.0])
    w.reset()
    np.testing.assert_allclose(run(w, [4.0, 1.0, 1.0], 0), [0.25, 1.0, 1.0])


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 4), st.floats(0.1, 5.0), st.data())
def test_dwa_formula(T, temp, data):
    seq = [data.draw(hnp.arrays(np.float64, T, elements=pos_losses)) for _ in range(5)]
    w = make_weighting("dwa", T, temperature=temp)
    for t, losses in enumerate(seq):
        weights = w.step(losses, step=t)
        if t < 2:
            assert np.array_equal(weights, np.ones(T))
        else:
            r = seq[t - 1] / seq[t - 2]
            e = np.exp((r - r.max()) / temp)  # same softmax, shifted so large ratios cannot overflow
            np.testing.assert_allclose(weights, T * e / e.sum(), rtol=1e-12)


# ---------------------------------------------------------------- performance, curriculum
def test_performance_with_metrics_and_fallback():
    w = make_weighting("performance", 3, gamma=2.0)
    kpi = np.array([0.9, 0.5, 0.2])
    raw = -((1 - kpi) ** 2) * np.log(kpi)
    weights = w.step([1.0, 1.0, 1.0], step=0, metrics=kpi)
    np.testing.assert_allclose(weights, 3 * raw / raw.sum())
    assert weights[2] > weights[1] > weights[0]  # worse task -> more weight
    # without metrics: losses relative to their first values
    w2 = make_weighting("performance", 2, gamma=1.0)
    w2.step([2.0, 4.0], step=0)
    weights = w2.step([1.0, 4.0], step=1)  # task 0 halved, task 1 stuck
    np.testing.assert_allclose(weights, 2 * np.array([0.5, 1.0]) / 1.5)
    # all tasks perfect -> nothing to prefer
    assert np.array_equal(w.step([1.0, 1.0, 1.0], step=1, metrics=[1.0, 1.0, 1.0]), np.ones(3))


def test_curriculum_schedule():
    w = make_weighting("curriculum", 3, order=(2, 0, 1), interval=10, ramp=4)
    np.testing.assert_allclose(w.weights_at(0), [0, 0, 1])
    np.testing.assert_allclose(w.weights_at(9), [0, 0, 1])
    np.testing.assert_allclose(w.weights_at(10), [0.25, 0, 1])
    np.testing.assert_allclose(w.weights_at(12), [0.75, 0, 1])
    np.testing.assert_allclose(w.weights_at(13), [1, 0, 1])
    np.testing.assert_allclose(w.weights_at(21), [1, 0.5, 1])
    np.testing.assert_allclose(w.weights_at(500), [1, 1, 1])
    np.testing.assert_allclose(run(w, [1, 1, 1], 11), [0.5, 0, 1])
    hard = make_weighting("curriculum", 2, interval=5, ramp=0)
    np.testing.assert_allclose(hard.weights_at(4), [1, 0])
    np.testing.assert_allclose(hard.weights_at(5), [1, 1])


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "bad", [[1.0, np.nan, 1.0], [1.0, np.inf, 1.0], [1.0, -0.1, 1.0], [1.0, 1.0], [[1.0, 1.0, 1.0]], ["a", "b", "c"]]
)
def test_bad_losses_raise(name, bad):
    w = make_weighting(name, 3)
    with pytest.raises(ValueError, match="losses"):
        w.step(bad, step=0, grads_last=np.ones((3, 2)))


@pytest.mark.parametrize("name", NAMES)
def test_bad_step_and_metrics_raise(name):
    w = make_weighting(name, 2)
    g = np.ones((2, 2))
    with pytest.raises(ValueError, match="step"):
        w.step([1.0, 1.0], step=-1, grads_last=g)
    with pytest.raises(ValueError, match="step"):
        w.step([1.0, 1.0], step=1.5, grads_last=g)
    with pytest.raises(ValueError, match="metrics"):
        w.step([1.0, 1.0], step=0, grads_last=g, metrics=[0.5, 1.5])
    with pytest.raises(ValueError, match="metrics"):
        w.step([1.0, 1.0], step=0, grads_last=g, metrics=[0.5])


@pytest.mark.parametrize(
    "name,settings,match",
    [
        ("nope", {}, "valid names"),
        ("dwa", {"temp": 1.0}, "'temp'"),
        ("dwa", {"temperature": 0.0}, "temperature"),
        ("fixed", {"alpha": 1.5}, "alpha"),
        ("fixed", {"alpha": 0.5, "weights": (1, 1)}, "alpha"),
        ("fixed", {"weights": (1, -1)}, "weights"),
        ("fixed", {"weights": (1, 1, 1)}, "weights"),
        ("uncertainty", {"lr": 0.0}, "lr"),
        ("gradnorm", {"alpha": -1.0}, "alpha"),
        ("gradnorm", {"lr": -1.0}, "lr"),
        ("performance", {"gamma": -1.0}, "gamma"),
        ("curriculum", {"order": (0, 0)}, "order"),
        ("curriculum", {"order": (0, 5)}, "order"),
        ("curriculum", {"interval": -1}, "interval"),
        ("curriculum", {"ramp": 1.5}, "ramp"),
    ],
)
def test_bad_settings_raise(name, settings, match):
    with pytest.raises(ValueError, match=match):
        make_weighting(name, 2, **settings)


def test_bad_n_tasks_and_alpha_needs_two_tasks():
    with pytest.raises(ValueError, match="n_tasks"):
        make_weighting("equal", 0)
    with pytest.raises(ValueError, match="alpha"):
        make_weighting("fixed", 3, alpha=0.5)


@pytest.mark.parametrize("name", ["loss_norm", "gradnorm", "performance"])
def test_initial_loss_is_first_positive_loss(name):
    # a task without labels in the first batch reports loss 0; its reference is its first real loss
    w = make_weighting(name, 2)
    run(w, [2.0, 0.0], 0)
    run(w, [2.0, 4.0], 1)
    np.testing.assert_allclose(w.initial_losses, [2.0, 4.0])
    run(w, [1.0, 8.0], 2)
    np.testing.assert_allclose(w.initial_losses, [2.0, 4.0])

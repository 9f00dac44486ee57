import numpy as np
import pytest

from mtl_core.arena import (
    LOWER,
    CAGradToy,
    RotatedQuadratics,
    TrajectoryRun,
    iso_levels,
    iso_segments,
    pareto_distance,
    rank_values,
    trajectory,
)


def central_diff(obj, theta, h=1e-6):
    g = np.zeros((2, 2))
    for j in range(2):
        e = np.zeros(2)
        e[j] = h
        g[:, j] = (obj.losses(theta + e) - obj.losses(theta - e)) / (2 * h)
    return g


def toy_reference(x, y):
    """The paper's toy written out independently with plain math, for one point."""
    import math

    f1 = math.log(max(abs(0.5 * (-x - 7) - math.tanh(-y)), LOWER)) + 6
    f2 = math.log(max(abs(0.5 * (-x + 3) + math.tanh(-y) + 2), LOWER)) + 6
    c1 = max(math.tanh(y * 0.5), 0.0)
    c2 = max(math.tanh(-y * 0.5), 0.0)
    f1_sq = ((-x + 7) ** 2 + 0.1 * (-y - 8) ** 2) / 10 - 20
    f2_sq = ((-x - 7) ** 2 + 0.1 * (-y - 8) ** 2) / 10 - 20
    return np.array([f1 * c1 + f1_sq * c2, f2 * c1 + f2_sq * c2])


def near_kink(theta, margin=1e-3):
    x, y = theta
    u1 = 0.5 * (-x - 7) - np.tanh(-y)
    u2 = 0.5 * (-x + 3) + np.tanh(-y) + 2
    return abs(y) < margin or abs(u1) < margin or abs(u2) < margin


def test_cagrad_toy_matches_independent_reference_and_paper_setup():
    toy = CAGradToy()
    rng = np.random.default_rng(0)
    for theta in rng.uniform(-10, 10, size=(200, 2)):
        np.testing.assert_allclose(toy.losses(theta), toy_reference(*theta), rtol=1e-12, atol=1e-12)
    assert toy.bounds == ((-10.0, 10.0), (-10.0, 10.0))
    np.testing.assert_array_equal(toy.starts, [[-8.5, 7.5], [-8.5, -5.0], [9.0, 9.0]])


def test_cagrad_toy_gradients_match_finite_differences():
    toy = CAGradToy()
    rng = np.random.default_rng(1)
    checked = 0
    for theta in rng.uniform(-10, 10, size=(600, 2)):
        if near_kink(theta):
            continue
        g = toy.grads(theta)
        fd = central_diff(toy, theta)
        np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-5 * (1 + np.abs(g).max()))
        checked += 1
    assert checked > 500


def test_cagrad_toy_gradient_is_zero_inside_the_clamp():
    toy = CAGradToy()
    # on the valley of task 1 (u1 = 0) the log is clamped: only the gate term remains, and it is the same on both
    # sides, so the x-derivative of task 1 is exactly 0 there
    y = 2.0
    x = -7.0 + 2.0 * np.tanh(y)  # u1 = -x/2 - 7/2 + tanh(y) = 0
    g = toy.grads(np.array([x, y]))
    assert g[0, 0] == 0.0
    assert toy.losses(np.array([x, y]))[0] == pytest.approx(np.tanh(1.0) * (np.log(LOWER) + 6))


def test_cagrad_toy_pareto_set_is_stationary_and_not_dominated():
    toy = CAGradToy()
    P = toy.pareto_set(21)
    assert P.shape == (21, 2)
    np.testing.assert_allclose(P[[0, -1], 0], [7.0, -7.0])
    # the paper draws the Pareto set at y = -8.3552; the midpoint of ours is there
    assert P[10, 1] == pytest.approx(-8.3552, abs=1e-4)
    for w, p in zip(np.linspace(1, 0, 21), P, strict=True):
        g = toy.grads(p)
        np.testing.assert_allclose(w * g[0] + (1 - w) * g[1], 0.0, atol=1e-9)
    xs = np.linspace(-10, 10, 201)
    L = toy.grid(xs, xs).reshape(2, -1)
    for p in P:
        lp = toy.losses(p)
        dominated = (L[0] < lp[0] - 1e-9) & (L[1] < lp[1] - 1e-9)
        assert not dominated.any()


@pytest.mark.parametrize("obj", [CAGradToy(), RotatedQuadratics(60.0, condition=3.0, scale=2.0)])
def test_grid_equals_pointwise_losses(obj):
    xs = np.linspace(-9.3, 8.1, 7)
    ys = np.linspace(-7.7, 9.9, 5)
    grid = obj.grid(xs, ys)
    assert grid.shape == (2, 5, 7)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            np.testing.assert_allclose(grid[:, i, j], obj.losses(np.array([x, y])), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("angle", [0.0, 30.0, 90.0, 135.0, 180.0])
@pytest.mark.parametrize("condition,scale,direction", [(1.0, 1.0, 90.0), (4.0, 0.1, 20.0)])
def test_rotated_quadratics_angle_knob(angle, condition, scale, direction):
    obj = RotatedQuadratics(angle, condition=condition, scale=scale, direction_deg=direction)
    g = obj.grads(obj.reference)
    cos = g[0] @ g[1] / np.linalg.norm(g[0]) / np.linalg.norm(g[1])
    assert np.degrees(np.arccos(np.clip(cos, -1, 1))) == pytest.approx(angle, abs=1e-6)


def test_rotated_quadratics_gradients_and_minima():
    obj = RotatedQuadratics(110.0, condition=2.5, scale=3.0, direction_deg=45.0)
    rng = np.random.default_rng(2)
    for theta in rng.uniform(-5, 5, size=(50, 2)):
        np.testing.assert_allclose(obj.grads(theta), central_diff(obj, theta), rtol=1e-6, atol=1e-6)
    for k in range(2):
        assert obj.losses(obj.minima[k])[k] == pytest.approx(0.0, abs=1e-15)
        np.testing.assert_allclose(obj.grads(obj.minima[k])[k], 0.0, atol=1e-14)


def test_rotated_quadratics_pareto_points_are_stationary_for_a_convex_combination():
    obj = RotatedQuadratics(120.0, condition=3.0, scale=0.5)
    P = obj.pareto_set(11)
    np.testing.assert_allclose(P[0], obj.minima[0])
    np.testing.assert_allclose(P[-1], obj.minima[1])
    for p in P:
        g = obj.grads(p)
        # find w in [0, 1] minimising |w g1 + (1-w) g2| (closed form for two vectors)
        d = g[0] - g[1]
        w = 1.0 if d @ d == 0 else np.clip(-(g[1] @ d) / (d @ d), 0, 1)
        np.testing.assert_allclose(w * g[0] + (1 - w) * g[1], 0.0, atol=1e-12)
    # a point off the segment is not stationary for any combination
    off = P[5] + np.array([0.3, -0.2])
    g = obj.grads(off)
    d = g[0] - g[1]
    w = np.clip(-(g[1] @ d) / (d @ d), 0, 1)
    assert np.linalg.norm(w * g[0] + (1 - w) * g[1]) > 0.1


def test_bad_arguments_raise_value_error_naming_them():
    with pytest.raises(ValueError, match="angle_deg"):
        RotatedQuadratics(190.0)
    with pytest.raises(ValueError, match="angle_deg"):
        RotatedQuadratics(-1.0)
    with pytest.raises(ValueError, match="theta"):
        CAGradToy().losses(np.array([1.0, 2.0, 3.0]))
    with pytest.raises(ValueError, match="theta"):
        CAGradToy().grads(np.array([np.nan, 2.0]))
    with pytest.raises(ValueError, match="xs"):
        CAGradToy().grid([], [1.0])


class MeanCombiner:
    """Stand-in with the mtl_core.combine API: averages the task gradients."""

    class Out:
        def __init__(self, d):
            self.direction = d

    def __init__(self):
        self.calls = 0

    def combine(self, G, *, rng):
        assert isinstance(rng, np.random.Generator)
        self.calls += 1
        return self.Out(G.mean(axis=0))


class BlowUp(MeanCombiner):
    def combine(self, G, *, rng):
        self.calls += 1
        return self.Out(G.mean(axis=0) if self.calls < 4 else np.array([np.inf, 0.0]))


def test_trajectory_gd_converges_to_the_mean_minimiser():
    obj = RotatedQuadratics(90.0)
    comb = MeanCombiner()
    traj = trajectory(obj, [2.0, -3.0], comb, lr=0.2, steps=200, rng=np.random.default_rng(0))
    assert traj.shape == (201, 2)
    assert comb.calls == 200
    np.testing.assert_array_equal(traj[0], [2.0, -3.0])
    np.testing.assert_allclose(traj[-1], obj.minima.mean(axis=0), atol=1e-8)
    # one explicit step
    np.testing.assert_allclose(traj[1], traj[0] - 0.2 * obj.grads(traj[0]).mean(axis=0))


def test_trajectory_adam_reaches_the_toy_pareto_set_from_the_paper_start():
    toy = CAGradToy()
    traj = trajectory(
        toy, toy.starts[1], MeanCombiner(), lr=0.05, steps=3000, rng=np.random.default_rng(0), optimizer="adam"
    )
    end = traj[-1]
    P = toy.pareto_set(400)
    assert np.min(np.linalg.norm(P - end, axis=1)) < 0.05


def test_trajectory_stops_at_a_non_finite_step():
    traj = trajectory(RotatedQuadratics(45.0), [1.0, 1.0], BlowUp(), lr=0.1, steps=50, rng=np.random.default_rng(0))
    assert traj.shape == (4, 2)
    assert np.all(np.isfinite(traj))


def test_trajectory_validates_arguments():
    obj = RotatedQuadratics()
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="start"):
        trajectory(obj, [1.0], MeanCombiner(), lr=0.1, steps=3, rng=rng)
    with pytest.raises(ValueError, match="combiner"):
        trajectory(obj, [1.0, 1.0], object(), lr=0.1, steps=3, rng=rng)
    with pytest.raises(ValueError, match="lr"):
        trajectory(obj, [1.0, 1.0], MeanCombiner(), lr=0.0, steps=3, rng=rng)
    with pytest.raises(ValueError, match="rng"):
        trajectory(obj, [1.0, 1.0], MeanCombiner(), lr=0.1, steps=3, rng=0)
    with pytest.raises(ValueError, match="optimizer"):
        trajectory(obj, [1.0, 1.0], MeanCombiner(), lr=0.1, steps=3, rng=rng, optimizer="lbfgs")


def test_trajectory_with_registered_combiners():
    obj = RotatedQuadratics(150.0, condition=2.0)
    rng = np.random.default_rng(0)
    by_name = trajectory(obj, [1.0, -4.0], "mean", lr=0.1, steps=50, rng=rng)
    by_object = trajectory(obj, [1.0, -4.0], MeanCombiner(), lr=0.1, steps=50, rng=rng)
    np.testing.assert_allclose(by_name, by_object, atol=1e-12)
    # MGDA stops on the Pareto set: its end point is on the segment between the minima
    end = trajectory(obj, [4.0, -4.0], "mgda", lr=0.1, steps=2000, rng=rng)[-1]
    m1, m2 = obj.minima
    t = np.clip((end - m1) @ (m2 - m1) / ((m2 - m1) @ (m2 - m1)), 0, 1)
    assert np.linalg.norm(end - (m1 + t * (m2 - m1))) < 1e-3
    with pytest.raises(ValueError, match="combiner"):
        trajectory(obj, [1.0, 1.0], "no_such_method", lr=0.1, steps=3, rng=rng)


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_trajectory_run_advanced_in_chunks_is_the_whole_trajectory(optimizer):
    toy = CAGradToy()
    ref = trajectory(toy, [-8.5, -5.0], "pcgrad", lr=0.1, steps=95, rng=np.random.default_rng(3), optimizer=optimizer)
    run = TrajectoryRun(
        toy, [-8.5, -5.0], "pcgrad", lr=0.1, steps=95, rng=np.random.default_rng(3), optimizer=optimizer
    )
    for chunk in (0, 1, 10, 37, 1000):
        run.advance(chunk)
    assert run.done and not run.diverged and run.t == 95
    np.testing.assert_array_equal(run.path(), ref)
    run.advance(5)  # a finished run stays where it is
    assert run.path().shape == (96, 2)


def test_trajectory_adam_is_mtl_core_optim_adam():
    from mtl_core.optim import Adam

    obj = RotatedQuadratics(150.0, condition=2.0)
    path = trajectory(
        obj,
        [1.0, -4.0],
        MeanCombiner(),
        lr=0.1,
        steps=20,
        rng=np.random.default_rng(0),
        optimizer="adam",
        betas=(0.8, 0.99),
        eps=1e-6,
    )
    theta, opt = np.array([1.0, -4.0]), Adam(lr=0.1, betas=(0.8, 0.99), eps=1e-6)
    for row in path[1:]:
        opt.step(theta, obj.grads(theta).mean(axis=0))
        np.testing.assert_array_equal(theta, row)


def test_trajectory_run_stops_on_non_finite_steps():
    class Exploding:
        def grads(self, theta):
            return np.array([[1e308, 0.0], [1e308, 0.0]])

    run = TrajectoryRun(Exploding(), np.zeros(2), "sum", lr=1.0, steps=10, optimizer="gd", rng=np.random.default_rng(0))
    run.advance(10)
    assert run.diverged and run.done and run.t == 1 and len(run.points) == 1
    with pytest.raises(ValueError, match="optimizer"):
        TrajectoryRun(Exploding(), np.zeros(2), "sum", lr=1.0, steps=1, optimizer="sgd2", rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="n must"):
        run.advance(-1)
    with pytest.raises(ValueError, match="steps"):
        TrajectoryRun(Exploding(), np.zeros(2), "sum", lr=1.0, steps=1.5, rng=np.random.default_rng(0))


def test_pareto_distance_to_a_polyline():
    pareto = np.array([[0.0, 0.0], [2.0, 0.0], [2.0, 2.0]])
    points = np.array([[1.0, 1.0], [-3.0, 4.0], [3.0, 1.0], [2.0, 0.0]])
    np.testing.assert_allclose(pareto_distance(points, pareto), [1.0, 5.0, 1.0, 0.0])
    with pytest.raises(ValueError, match="points"):
        pareto_distance(np.zeros(2), pareto)
    with pytest.raises(ValueError, match="pareto"):
        pareto_distance(points, pareto[:1])
    with pytest.raises(ValueError, match="points"):
        pareto_distance([[np.nan, 0.0]], pareto)


def test_iso_segments_trace_circles():
    xs = np.linspace(-2, 2, 81)
    ys = np.linspace(-2, 2, 61)
    z = xs[None, :] ** 2 + ys[:, None] ** 2
    x0, y0, x1, y1, level = iso_segments(z, xs, ys, [0.25, 1.0])
    assert x0.size > 40 and set(level.tolist()) == {0, 1}
    radius = np.where(level == 0, 0.5, 1.0)
    for px, py in ((x0, y0), (x1, y1)):
        # linear interpolation on a grid of spacing 0.05-0.07: points within 1% of the true circle
        assert np.allclose(np.hypot(px, py), radius, rtol=0.01)
    # the segments close up: total length close to the circumferences
    length = np.hypot(x1 - x0, y1 - y0)
    assert length[level == 1].sum() == pytest.approx(2 * np.pi, rel=0.01)
    # a level outside the values draws nothing
    assert iso_segments(z, xs, ys, [100.0])[0].size == 0


def test_iso_segments_saddle_gives_two_segments_per_cell():
    xs = ys = np.array([0.0, 1.0])
    z = np.array([[1.0, -1.0], [-1.0, 1.0]])  # corners alternate: a saddle cell
    x0, y0, x1, y1, _ = iso_segments(z, xs, ys, [0.0])
    assert x0.size == 2
    # each segment joins two edge midpoints
    pts = {(round(a, 6), round(b, 6)) for a, b in zip(np.r_[x0, x1], np.r_[y0, y1], strict=True)}
    assert pts == {(0.5, 0.0), (1.0, 0.5), (0.5, 1.0), (0.0, 0.5)}


def test_iso_segments_validate_the_grid():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match="xs"):
        iso_segments(z, np.arange(3.0), np.arange(3.0), [0.5])
    with pytest.raises(ValueError, match="ys"):
        iso_segments(z, np.arange(4.0), np.arange(4.0), [0.5])
    with pytest.raises(ValueError, match="z"):
        iso_segments(np.zeros(4), np.arange(4.0), np.arange(1.0), [0.5])
    with pytest.raises(ValueError, match="levels"):
        iso_segments(z, np.arange(4.0), np.arange(3.0), [[0.5]])


def test_iso_levels_and_rank_values():
    values = np.arange(100.0).reshape(10, 10) ** 3  # very skewed: quantiles, not a linear range
    levels = iso_levels(values, 3)
    np.testing.assert_allclose(levels, np.quantile(values, [0.25, 0.5, 0.75]))
    assert iso_levels(np.ones((4, 4)), 5).tolist() == [1.0]
    with pytest.raises(ValueError, match="n"):
        iso_levels(values, 0)
    ranks = rank_values(values)
    assert ranks.shape == values.shape
    np.testing.assert_allclose(ranks.ravel(), np.linspace(0.0, 1.0, 100))
    np.testing.assert_array_equal(rank_values([3.0, 1.0, 2.0]), [1.0, 0.0, 0.5])

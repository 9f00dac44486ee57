"""Gradient-combination methods: closed forms, optimality, properties, bad inputs."""

import warnings

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mtl_core.combine import COMBINERS, CombineResult, make_combiner, project_simplex
from mtl_core.combine.cagrad import dual_objective, simplex_weights, two_task_x
from mtl_core.combine.mgda import min_norm_weights

finite = st.floats(-10, 10, allow_nan=False, allow_infinity=False)


def grads(T, P_min=2, P_max=6):
    return st.integers(P_min, P_max).flatmap(lambda P: hnp.arrays(np.float64, (T, P), elements=finite))


def simplex_grid(T, n):
    """All points of the simplex with coordinates in {0, 1/n, ..., 1}, shape (K, T)."""
    if T == 2:
        x = np.arange(n + 1) / n
        return np.stack([x, 1 - x], axis=1)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    i, j = i[keep], j[keep]
    return np.stack([i, j, n - i - j], axis=1) / n


NAMES = sorted(
    ["sum", "mean", "pcgrad", "mgda", "cagrad", "normalize", "nash_mtl", "imtl_g", "fairgrad", "aligned_mtl"]
)


def test_registry_names():
    assert set(COMBINERS) == set(NAMES)
    for name in COMBINERS:
        assert make_combiner(name).name == name


# ---------------------------------------------------------------- PCGrad
def pcgrad_two_task_closed_form(g1, g2):
    return g1 - (g1 @ g2) / (g2 @ g2) * g2 + g2 - (g2 @ g1) / (g1 @ g1) * g1


@settings(max_examples=100, deadline=None)
@given(grads(2), st.integers(0, 2**32 - 1))
def test_pcgrad_two_conflicting_tasks_closed_form_and_no_remaining_conflict(G, seed):
    g1, g2 = G
    n1, n2 = np.linalg.norm(g1), np.linalg.norm(g2)
    assume(n1 > 1e-3 and n2 > 1e-3 and g1 @ g2 < -1e-3 * n1 * n2)
    out = make_combiner("pcgrad").combine(G, rng=np.random.default_rng(seed))
    expected = pcgrad_two_task_closed_form(g1, g2)
    scale = n1 + n2
    np.testing.assert_allclose(out.direction, expected, atol=1e-10 * scale, rtol=0)
    # after surgery the update no longer hurts either task (to first order)
    assert out.direction @ g1 >= -1e-9 * scale * n1
    assert out.direction @ g2 >= -1e-9 * scale * n2
    assert out.info["n_conflicts"] == 1 and out.info["n_projections"] == 2
    np.testing.assert_allclose(out.task_weights @ G, out.direction, atol=1e-10 * scale)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**32 - 1), st.data())
def test_pcgrad_without_conflict_is_exactly_the_sum(T, P, seed, data):
    # non-negative entries -> every pairwise dot product is >= 0: nothing to project
    G = data.draw(hnp.arrays(np.float64, (T, P), elements=st.floats(0, 10)))
    out = make_combiner("pcgrad").combine(G, rng=np.random.default_rng(seed))
    assert np.array_equal(out.direction, G.sum(axis=0))
    assert out.info["n_projections"] == 0


def test_pcgrad_order_comes_from_rng():
    G = np.array([[1.0, 0.0], [-0.6, 0.8], [-0.6, -0.8]])  # three mutually conflicting gradients
    pc = make_combiner("pcgrad")
    results = {tuple(np.round(pc.combine(G, rng=np.random.default_rng(s)).direction, 12)) for s in range(40)}
    assert len(results) > 1, "different seeds should be able to give different visiting orders"
    a = pc.combine(G, rng=np.random.default_rng(7)).direction
    b = pc.combine(G, rng=np.random.default_rng(7)).direction
    assert np.array_equal(a, b)


def test_pcgrad_matches_a_torch_reference():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    G = rng.normal(size=(4, 7))
    out = make_combiner("pcgrad").combine(G, rng=np.random.default_rng(11))
    # reference: Algorithm 1 in torch with the same visiting orders
    order_rng = np.random.default_rng(11)
    Gt = torch.tensor(G, dtype=torch.float64)
    rows = []
    for i in range(4):
        gi = Gt[i].clone()
        for j in order_rng.permutation(4):
            if j == i:
                continue
            dot = torch.dot(gi, Gt[j])
            if dot < 0:
                gi = gi - dot / torch.dot(Gt[j], Gt[j]) * Gt[j]
        rows.append(gi)
    np.testing.assert_allclose(out.direction, torch.stack(rows).sum(0).numpy(), atol=1e-12)


# ---------------------------------------------------------------- MGDA
@settings(max_examples=100, deadline=None)
@given(grads(2))
def test_mgda_two_task_closed_form(G):
    g1, g2 = G
    assume(np.linalg.norm(g1 - g2) > 1e-6 and np.linalg.norm(g1) > 0 and np.linalg.norm(g2) > 0)
    gamma = min(max(((g2 - g1) @ g2) / ((g1 - g2) @ (g1 - g2)), 0.0), 1.0)
    out = make_combiner("mgda").combine(G)
    scale = np.linalg.norm(g1) + np.linalg.norm(g2)
    np.testing.assert_allclose(out.direction, gamma * g1 + (1 - gamma) * g2, atol=1e-10 * scale, rtol=0)
    np.testing.assert_allclose(out.task_weights, [gamma, 1 - gamma], atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.sampled_from([2, 3]), st.integers(0, 2**32 - 1))
def test_mgda_is_the_min_norm_point_of_the_hull(T, seed):
    G = np.random.default_rng(seed).normal(size=(T, 4))
    out = make_combiner("mgda").combine(G)
    W = simplex_grid(T, 2000 if T == 2 else 300)
    grid_min = np.min(np.sum((W @ G) ** 2, axis=1))
    d2 = out.direction @ out.direction
    assert d2 <= grid_min + 1e-12
    assert np.all(out.task_weights >= 0) and abs(out.task_weights.sum() - 1) < 1e-12
    # optimality (KKT) of the min-norm point: every task improves at least as much as ||d||^2
    assert np.all(G @ out.direction >= d2 - 1e-9)


@pytest.mark.parametrize("T,P", [(8, 5), (12, 3), (5, 10), (20, 20)])
@pytest.mark.parametrize("seed", range(5))
def test_mgda_min_norm_solver_many_tasks_meets_optimality_conditions(T, P, seed):
    G = np.random.default_rng(seed).normal(size=(T, P))
    w, n_iter = min_norm_weights(G @ G.T)
    d = w @ G
    assert n_iter < 1000
    assert np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
    # KKT: dots >= ||d||^2 everywhere, equality on the support
    dots = G @ d
    assert np.all(dots >= d @ d - 1e-10)
    np.testing.assert_allclose(dots[w > 1e-9], d @ d, atol=1e-9)


def test_mgda_normalize_option_uses_unit_gradients():
    G = np.array([[10.0, 0.0], [0.0, 1.0]])
    out = make_combiner("mgda", normalize=True).combine(G)
    np.testing.assert_allclose(out.direction, [0.5, 0.5], atol=1e-12)
    np.testing.assert_allclose(out.task_weights @ G, out.direction, atol=1e-12)
    plain = make_combiner("mgda").combine(G)  # default: no normalisation, small gradient dominates
    assert plain.task_weights[1] > 0.9


# ---------------------------------------------------------------- CAGrad
def cagrad_f(x, g1, g2, s):
    gx = x * g1 + (1 - x) * g2
    return gx @ (0.5 * (g1 + g2)) + s * np.linalg.norm(gx)


def golden_section(f, lo, hi, tol=1e-13):
    """Independent 1-D minimiser for a convex function (no closed form involved)."""
    r = (np.sqrt(5) - 1) / 2
    a, b = lo, hi
    c, d = b - r * (b - a), a + r * (b - a)
    while b - a > tol:
        if f(c) < f(d):
            b, d = d, c
            c = b - r * (b - a)
        else:
            a, c = c, d
            d = a + r * (b - a)
    return 0.5 * (a + b)


@settings(max_examples=100, deadline=None)
@given(grads(2), st.floats(0.0, 2.0))
def test_cagrad_two_task_exact_solution(G, c):
    g1, g2 = G
    assume(np.linalg.norm(g1) > 1e-3 and np.linalg.norm(g2) > 1e-3)
    g0 = 0.5 * (g1 + g2)
    s = c * np.linalg.norm(g0)
    out = make_combiner("cagrad", c=c).combine(G)
    x = two_task_x(g1, g2, s)
    fx = cagrad_f(x, g1, g2, s)
    scale = (np.linalg.norm(g1) + np.linalg.norm(g2)) ** 2
    # brute force: no grid point beats the solution
    xs = np.linspace(0, 1, 20001)[:, None]
    X = xs * g1 + (1 - xs) * g2
    grid = X @ g0 + s * np.linalg.norm(X, axis=1)
    assert fx <= grid.min() + 1e-12 * scale
    # independent solver agrees on the optimal value
    xg = golden_section(lambda t: cagrad_f(t, g1, g2, s), 0.0, 1.0)
    assert abs(fx - cagrad_f(xg, g1, g2, s)) <= 1e-10 * scale
    # the update formula of the official code
    gw = x * g1 + (1 - x) * g2
    nw = np.linalg.norm(gw)
    if nw <= 1e-9 * np.sqrt(scale):
        # opposed gradients: the optimum is the kink g_w = 0 and the best worst-task improvement is 0. d = 0 reaches
        # it, and so does every d of the ball orthogonal to the gradients' line: when g_w is not exactly 0 (a
        # gradient off the line by 1e-11) the official formula picks one on the ball's edge. Either is right.
        d = out.direction * (1 + c**2)
        assert min(g1 @ d, g2 @ d) >= -1e-6 * scale
        assert np.linalg.norm(d - g0) <= s + 1e-9 * np.sqrt(scale)
        return
    expected = (g0 + s / nw * gw) / (1 + c**2)
    np.testing.assert_allclose(out.direction, expected, atol=1e-10 * np.sqrt(scale), rtol=0)
    np.testing.assert_allclose(out.task_weights @ G, out.direction, atol=1e-10 * np.sqrt(scale))


def test_cagrad_two_task_x_matches_golden_section_when_unique():
    rng = np.random.default_rng(5)
    for _ in range(50):
        g1, g2 = rng.normal(size=(2, 6))
        s = 0.5 * np.linalg.norm(0.5 * (g1 + g2))
        x = two_task_x(g1, g2, s)
        xg = golden_section(lambda t: cagrad_f(t, g1, g2, s), 0.0, 1.0, tol=1e-14)
        # generic random gradients -> strictly convex objective -> unique minimiser
        assert abs(x - xg) < 1e-6
        if 1e-6 < x < 1 - 1e-6:
            # interior optimum: derivative zero, by central differences
            h = 1e-6
            dfdx = (cagrad_f(x + h, g1, g2, s) - cagrad_f(x - h, g1, g2, s)) / (2 * h)
            assert abs(dfdx) < 1e-6


def test_cagrad_simplex_solver_agrees_with_two_task_closed_form():
    rng = np.random.default_rng(8)
    for _ in range(20):
        G = rng.normal(size=(2, 5))
        s = 0.5 * np.linalg.norm(G.mean(0))
        x = two_task_x(G[0], G[1], s)
        w, _ = simplex_weights(G @ G.T, s)
        assert abs(dual_objective(w, G @ G.T, s) - dual_objective(np.array([x, 1 - x]), G @ G.T, s)) < 1e-10


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.1, 1.5))
def test_cagrad_three_tasks_beats_dense_simplex_grid(seed, c):
    G = np.random.default_rng(seed).normal(size=(3, 4))
    M = G @ G.T
    s = c * np.linalg.norm(G.mean(0))
    out = make_combiner("cagrad", c=c).combine(G)
    w, _ = simplex_weights(M, s)
    W = simplex_grid(3, 300)
    Mw = W @ M
    grid = Mw.sum(1) / 3 + s * np.sqrt(np.maximum(np.sum(Mw * W, axis=1), 0))
    assert dual_objective(w, M, s) <= grid.min() + 1e-9
    np.testing.assert_allclose(out.task_weights @ G, out.direction, atol=1e-12)


def test_cagrad_c_zero_is_mean_and_worst_task_improves():
    rng = np.random.default_rng(1)
    G = rng.normal(size=(3, 5))
    np.testing.assert_allclose(make_combiner("cagrad", c=0.0).combine(G).direction, G.mean(0), atol=1e-14)
    # the whole point of CAGrad: its worst-task improvement is at least that of the (rescaled) mean
    G = np.array([[1.0, 0.0], [-0.9, 0.3]])
    d = make_combiner("cagrad", c=0.5).combine(G).direction
    g0 = G.mean(0) / 1.25
    assert np.min(G @ d) >= np.min(G @ g0)


# ---------------------------------------------------------------- normalize, sum, mean
def test_normalize_rescales_to_mean_norm_and_skips_zero_rows():
    G = np.array([[3.0, 4.0], [0.0, 1.0], [0.0, 0.0]])
    out = make_combiner("normalize").combine(G)
    common = (5.0 + 1.0) / 2
    np.testing.assert_allclose(out.direction, common * np.array([0.6, 0.8]) + common * np.array([0.0, 1.0]))
    assert out.task_weights[2] == 0.0
    assert out.info["common_norm"] == pytest.approx(common)


@pytest.mark.parametrize("name", NAMES)
def test_task_weights_reproduce_direction(name):
    G = np.random.default_rng(4).normal(size=(4, 9))
    out = make_combiner(name).combine(G, rng=np.random.default_rng(0))
    assert isinstance(out, CombineResult) and out.direction.shape == (9,)
    np.testing.assert_allclose(out.task_weights @ G, out.direction, atol=1e-12)
    assert all(isinstance(v, (int, float)) for v in out.info.values())


@pytest.mark.parametrize("name", NAMES)
def test_single_task_and_zero_gradients(name):
    comb = make_combiner(name)
    g = np.array([[1.0, -2.0, 2.0]])
    out = comb.combine(g, rng=np.random.default_rng(0))
    # one task: CAGrad's rescaled ball, Nash-MTL the unit vector (|d| = sqrt(T)), FairGrad (alpha = 2, p = 1/2)
    # solves ||g||^2 w = w^(-1/2): w = ||g||^(-4/3); the others take g itself
    factor = {"cagrad": (1 + 0.5) / (1 + 0.25), "nash_mtl": 1 / 3.0, "fairgrad": 3.0 ** (-4 / 3)}.get(name, 1.0)
    np.testing.assert_allclose(out.direction, factor * g[0], atol=1e-14)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a 0/0 would warn
        with np.errstate(all="raise"):
            zero = comb.combine(np.zeros((3, 4)), rng=np.random.default_rng(0))
            assert np.array_equal(zero.direction, np.zeros(4))
            mixed = comb.combine(np.array([[1.0, 2.0], [0.0, 0.0], [-1.0, 0.5]]), rng=np.random.default_rng(0))
            assert np.all(np.isfinite(mixed.direction))


def test_mgda_zero_row_is_ignored_by_default_but_can_stop_training():
    G = np.array([[1.0, 0.0], [0.0, 0.0]])
    np.testing.assert_allclose(make_combiner("mgda").combine(G).direction, [1.0, 0.0])
    np.testing.assert_allclose(make_combiner("mgda", ignore_zero=False).combine(G).direction, [0.0, 0.0])


def test_opposed_gradients_cagrad_has_no_correction_direction():
    G = np.array([[1.0, 0.0], [-1.0, 0.0]])
    out = make_combiner("cagrad").combine(G)
    assert np.all(np.isfinite(out.direction))


def test_project_simplex():
    rng = np.random.default_rng(2)
    for _ in range(20):
        v = rng.normal(size=5) * 3
        p = project_simplex(v)
        assert np.all(p >= 0) and abs(p.sum() - 1) < 1e-12
        # optimality of the projection: (v - p) . (q - p) <= 0 for every vertex q of the simplex
        for k in range(5):
            q = np.eye(5)[k]
            assert (v - p) @ (q - p) <= 1e-12


# ---------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "bad",
    [
        np.array([[1.0, np.nan]]),
        np.array([[np.inf, 0.0], [1.0, 1.0]]),
        np.ones(3),
        np.ones((2, 2, 2)),
        np.zeros((0, 3)),
        [["a", "b"]],
    ],
)
def test_bad_G_raises(name, bad):
    with pytest.raises(ValueError, match="G"):
        make_combiner(name).combine(bad, rng=np.random.default_rng(0))


def test_bad_settings_and_names():
    with pytest.raises(ValueError, match="valid names"):
        make_combiner("nope")
    with pytest.raises(ValueError, match="'alpha'"):
        make_combiner("cagrad", alpha=0.5)
    with pytest.raises(ValueError, match="c must be"):
        make_combiner("cagrad", c=-0.1)
    with pytest.raises(ValueError, match="normalize"):
        make_combiner("mgda", normalize="yes")
    with pytest.raises(ValueError, match="max_iter"):
        make_combiner("mgda", max_iter=0)
    with pytest.raises(ValueError, match="'c'"):
        make_combiner("sum", c=1.0)
    with pytest.raises(ValueError, match="rng"):
        make_combiner("pcgrad").combine(np.ones((2, 2)))
    with pytest.raises(ValueError, match="rng"):
        make_combiner("pcgrad").combine(np.ones((2, 2)), rng=0)


@pytest.mark.parametrize("name", ["mgda", "cagrad", "imtl_g", "aligned_mtl", "nash_mtl", "fairgrad"])
@pytest.mark.parametrize("magnitude", [1e-150, 1e150])
def test_solvers_are_scale_free(name, magnitude):
    G = np.random.default_rng(6).normal(size=(4, 5))
    comb = make_combiner(name)
    # MGDA's, CAGrad's, IMTL-G's and Aligned-MTL's coefficients are invariant to a common rescaling of G;
    # Nash-MTL's scale like 1/magnitude (its direction is invariant), FairGrad's like magnitude^(-2/(1+1/alpha))
    power = {"nash_mtl": -1.0, "fairgrad": -2.0 / (1.0 + 1.0 / 2.0)}.get(name, 0.0)
    with np.errstate(all="raise"):
        scaled = comb.combine(G * magnitude).task_weights
    np.testing.assert_allclose(scaled / magnitude**power, comb.combine(G).task_weights, rtol=1e-8, atol=1e-12)

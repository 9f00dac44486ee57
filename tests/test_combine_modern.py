"""Nash-MTL, IMTL-G, FairGrad and Aligned-MTL (issue 13): two-task closed forms, the defining equations for
T = 3..5, degenerate gradients; and CAGrad's dual for T > 2, also with 0 inside the gradients' hull."""

import numpy as np
import pytest

from mtl_core.combine import make_combiner
from mtl_core.combine.aligned_mtl import balance_weights
from mtl_core.combine.cagrad import dual_objective, dual_solve, nnls_gram
from mtl_core.combine.imtl_g import imtl_weights
from mtl_core.combine.nash_mtl import STATIONARY_MARGIN

DIMS = [2, 3, 5, 10, 20, 50]
KINDS = ["random", "near_parallel", "tiny"]
MODERN = ["nash_mtl", "imtl_g", "fairgrad", "aligned_mtl"]


def unit(v):
    return v / np.linalg.norm(v)


def pairs(P, kind, n=40):
    """n gradient pairs (2, P) with norms spread over e^(+-4): independent ('random'), 1e-4..1e-2 radians apart
    ('near_parallel'), or the second 1e-9..1e-6 times smaller ('tiny'). Nearly anti-parallel pairs (1 + cos <
    1e-3) are left out: close to Pareto-stationarity the bargaining solutions lose digits (tested below)."""
    rng = np.random.default_rng([P, KINDS.index(kind)])
    out = []
    while len(out) < n:
        g1, g2 = rng.normal(size=(2, P)) * np.exp(2 * rng.normal(size=(2, 1)))
        if kind == "near_parallel":
            noise = unit(rng.normal(size=P))
            g2 = np.linalg.norm(g2) * unit(unit(g1) + 10 ** rng.uniform(-4, -2) * noise)
        elif kind == "tiny":
            g2 = g2 * 10 ** rng.uniform(-9, -6)
        if 1 + unit(g1) @ unit(g2) > 1e-3:
            out.append(np.array([g1, g2]))
    return out


def random_G(T, P, seed):
    rng = np.random.default_rng([T, P, seed])
    return rng.normal(size=(T, P)) * np.exp(rng.normal(size=(T, 1)))


# ---------------------------------------------------------------- two tasks: closed forms
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("P", DIMS)
def test_nash_mtl_two_tasks_closed_form(P, kind):
    comb = make_combiner("nash_mtl")
    for G in pairs(P, kind):
        n = np.linalg.norm(G, axis=1)
        u1, u2 = G / n[:, None]
        cos = u1 @ u2
        out = comb.combine(G)
        # a_k = 1 / (|g_k| sqrt(1 + cos)), d = (u_1 + u_2) / sqrt(1 + cos), |d| = sqrt(2) whatever the scales
        np.testing.assert_allclose(out.direction, (u1 + u2) / np.sqrt(1 + cos), rtol=0, atol=1e-10)
        assert abs(np.linalg.norm(out.direction) - np.sqrt(2)) < 1e-10
        np.testing.assert_allclose(out.task_weights, 1 / (n * np.sqrt(1 + cos)), rtol=1e-10)
        assert out.info["pareto_stationary"] == 0 and out.info["residual"] < 1e-12


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("P", DIMS)
def test_imtl_g_two_tasks_closed_form(P, kind):
    comb = make_combiner("imtl_g")
    for G in pairs(P, kind):
        n1, n2 = np.linalg.norm(G, axis=1)
        u1, u2 = unit(G[0]), unit(G[1])
        expected = n1 * n2 / (n1 + n2) * (u1 + u2)
        out = comb.combine(G)
        assert np.linalg.norm(out.direction - expected) <= 1e-10 * np.linalg.norm(expected)
        np.testing.assert_allclose(out.task_weights, [n2 / (n1 + n2), n1 / (n1 + n2)], rtol=1e-12)
        # equal projections on the unit gradients
        assert abs(u1 @ out.direction - u2 @ out.direction) <= 1e-10 * np.linalg.norm(expected)
        if kind == "random" and 1 - u1 @ u2 > 1e-3:
            # the general T-task solver (used from T = 3 on) agrees with the two-task closed form
            w, rank = imtl_weights(G @ G.T)
            assert rank == 2
            np.testing.assert_allclose(w, out.task_weights, rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("P", DIMS)
def test_fairgrad_alpha_one_is_nash_mtl(P, kind):
    fair, nash = make_combiner("fairgrad", alpha=1.0), make_combiner("nash_mtl")
    for G in pairs(P, kind):
        a, b = fair.combine(G), nash.combine(G)
        np.testing.assert_allclose(a.direction, b.direction, rtol=0, atol=1e-12)
        np.testing.assert_allclose(a.task_weights, b.task_weights, rtol=1e-12)


def eigen_balance_weights(G):
    """Aligned-MTL's weights B 1 written out from the eigendecomposition, as LibMTL computes them."""
    M = G @ G.T
    lam, V = np.linalg.eigh(M)
    keep = lam > lam.max() * len(M) * np.finfo(float).eps
    lam, V = lam[keep], V[:, keep]
    B = np.sqrt(lam.min()) * V @ np.diag(lam**-0.5) @ V.T
    return B @ np.ones(len(M)), np.sqrt(lam.max() / lam.min()), int(keep.sum())


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("P", DIMS)
def test_aligned_mtl_two_tasks_eigendecomposition(P, kind):
    comb = make_combiner("aligned_mtl")
    for G in pairs(P, kind):
        w, cond, rank = eigen_balance_weights(G)
        out = comb.combine(G)
        np.testing.assert_allclose(out.task_weights, w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(out.direction, w @ G, rtol=0, atol=1e-10 * np.linalg.norm(G, axis=1).sum())
        # a gradient 1e-9 times smaller falls below the rank tolerance (lambda ratio 1e-18 < T eps): rank 1
        assert out.info["rank"] == rank and (rank == 2 or kind == "tiny")
        assert out.info["cond"] == pytest.approx(cond, rel=1e-10)
        if rank == 2 and cond < 1e3:
            # independent form from the SVD G = V S W^T: d = sigma_min W V^T 1
            V, S, Wt = np.linalg.svd(G, full_matrices=False)
            np.testing.assert_allclose(out.direction, S.min() * Wt.T @ V.T @ np.ones(2), rtol=0, atol=1e-10 * S.max())


# ---------------------------------------------------------------- T = 3..5: the defining equations
SHAPES = [(T, P) for T in (3, 4, 5) for P in (T, 2 * T, 20)]


def solutions(name, T, P, **settings):
    """(G, result) for ten random gradient matrices of shape (T, P)."""
    comb = make_combiner(name, **settings)
    for seed in range(10):
        G = random_G(T, P, seed)
        yield G, comb.combine(G)


@pytest.mark.parametrize("T,P", SHAPES)
def test_nash_mtl_bargaining_equations(T, P):
    for G, out in solutions("nash_mtl", T, P):
        assert out.info["pareto_stationary"] == 0  # P >= T: a common descent direction exists
        a, d = out.task_weights, out.direction
        M = G @ G.T
        assert np.all(a > 0)
        np.testing.assert_allclose(a * (M @ a), 1.0, rtol=0, atol=1e-8)  # (G G^T) a = 1 / a
        np.testing.assert_allclose(d, a @ G, rtol=1e-12, atol=0)
        assert abs(d @ d - T) < 1e-8  # |d| = sqrt(T)
        assert np.all(G @ d > 0)  # every task improves


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
@pytest.mark.parametrize("T,P", SHAPES)
def test_fairgrad_equations(T, P, alpha):
    for G, out in solutions("fairgrad", T, P, alpha=alpha):
        w = out.task_weights
        assert out.info["pareto_stationary"] == 0 and np.all(w > 0)
        # (G G^T) w = w^(-1/alpha)
        np.testing.assert_allclose((G @ G.T @ w) * w ** (1 / alpha), 1.0, rtol=0, atol=1e-8)
        np.testing.assert_allclose(out.direction, w @ G, rtol=1e-12, atol=0)


@pytest.mark.parametrize("T,P", SHAPES)
def test_imtl_g_equal_projections(T, P):
    for G, out in solutions("imtl_g", T, P):
        w, d = out.task_weights, out.direction
        n = np.linalg.norm(G, axis=1)
        proj = G @ d / n
        assert proj.max() - proj.min() <= 1e-8 * proj.mean() and proj.mean() > 0
        assert abs(abs(w.sum()) - 1) < 1e-12
        np.testing.assert_allclose(d, w @ G, rtol=1e-12, atol=0)
        # the paper's formula (G G^T)^(-1) |g|, normalised by the absolute value of its sum (see imtl_g.py)
        y = np.linalg.solve(G @ G.T, n)
        np.testing.assert_allclose(w, y / abs(y.sum()), rtol=1e-8, atol=1e-12)
        assert out.info["spread"] <= 1e-8 * out.info["projection"]


@pytest.mark.parametrize("T,P", SHAPES)
def test_aligned_mtl_balances_the_singular_values(T, P):
    for G, out in solutions("aligned_mtl", T, P):
        w, cond, _ = eigen_balance_weights(G)
        np.testing.assert_allclose(out.task_weights, w, rtol=0, atol=1e-10)
        np.testing.assert_allclose(out.direction, w @ G, rtol=1e-12, atol=0)
        # B G has all its singular values equal to sigma_min(G): condition number 1
        lam, V = np.linalg.eigh(G @ G.T)
        B = np.sqrt(lam.min()) * V @ np.diag(lam**-0.5) @ V.T
        s = np.linalg.svd(B @ G, compute_uv=False)
        np.testing.assert_allclose(s, np.sqrt(lam.min()), rtol=1e-8)
        assert out.info["cond"] == pytest.approx(cond, rel=1e-10)


def test_aligned_mtl_weights_are_libmtl_scale():
    # LibMTL: alpha = B.sum(0); torchjd's default preference vector 1/T gives the same direction T times shorter
    G = random_G(3, 6, 0)
    w, _, _ = balance_weights(G @ G.T)
    lam, V = np.linalg.eigh(G @ G.T)
    B = np.sqrt(lam.min()) * V @ np.diag(lam**-0.5) @ V.T
    np.testing.assert_allclose(w, B.sum(axis=0), atol=1e-12)


# ---------------------------------------------------------------- degenerate gradients
def test_no_common_descent_direction_gives_the_disagreement_point():
    cases = [
        np.array([[1.0, 2.0, 3.0], [-2.0, -4.0, -6.0]]),  # anti-parallel
        np.array([[-0.9, -1.7], [-1.5, -1.4], [2.8, 2.9]]),  # 0 inside the hull, P < T
        np.array([[1.0, 0.0], [-1.0, 1e-7]]),
    ]  # 1 + cos = 5e-15: below the margin
    for G in cases:
        for comb in (
            make_combiner("nash_mtl"),
            make_combiner("fairgrad", alpha=0.5),
            make_combiner("fairgrad", alpha=3.0),
        ):
            with np.errstate(all="raise"):
                out = comb.combine(G)
            assert out.info["pareto_stationary"] == 1 and out.info["margin"] <= STATIONARY_MARGIN
            assert np.array_equal(out.direction, np.zeros(G.shape[1]))
            assert np.array_equal(out.task_weights, np.zeros(G.shape[0]))


def test_nash_mtl_near_the_stationarity_margin_still_solves():
    # 1 + cos = 2e-8: distance of 0 from the unit hull 1e-4, above the margin; the solution keeps |d| = sqrt(2)
    theta = np.pi - 2e-4
    G = np.array([[3.0, 0.0], [0.01 * np.cos(theta), 0.01 * np.sin(theta)]])
    out = make_combiner("nash_mtl").combine(G)
    u1, u2 = unit(G[0]), unit(G[1])
    expected = (u1 + u2) / np.sqrt(1 + u1 @ u2)
    assert out.info["pareto_stationary"] == 0
    np.testing.assert_allclose(out.direction, expected, atol=1e-6)
    assert abs(np.linalg.norm(out.direction) - np.sqrt(2)) < 1e-6


@pytest.mark.parametrize("name", MODERN)
def test_zero_row_gets_weight_zero_and_the_others_decide(name):
    rng = np.random.default_rng(9)
    G = rng.normal(size=(3, 5))
    with_zero = np.insert(G, 1, 0.0, axis=0)
    comb = make_combiner(name)
    a, b = comb.combine(with_zero), comb.combine(G)
    assert a.task_weights[1] == 0.0
    np.testing.assert_allclose(np.delete(a.task_weights, 1), b.task_weights, rtol=1e-10)
    np.testing.assert_allclose(a.direction, b.direction, rtol=1e-10, atol=1e-14)


def test_bargaining_directions_ignore_each_gradients_scale():
    # Nash-MTL depends only on the gradients' directions; so does the direction (not the length) of IMTL-G
    rng = np.random.default_rng(10)
    G = rng.normal(size=(4, 7))
    D = np.array([1e-9, 1.0, 1e4, 0.3])[:, None]
    nash = make_combiner("nash_mtl")
    np.testing.assert_allclose(nash.combine(D * G).direction, nash.combine(G).direction, atol=1e-10)
    np.testing.assert_allclose(nash.combine(D * G).task_weights * D[:, 0], nash.combine(G).task_weights, rtol=1e-9)
    imtl = make_combiner("imtl_g")
    np.testing.assert_allclose(unit(imtl.combine(D * G).direction), unit(imtl.combine(G).direction), atol=1e-10)


def test_parallel_gradients():
    g = np.array([1.0, -2.0, 2.0])  # norm 3
    G = np.array([g, 2 * g])
    u = g / 3
    with np.errstate(all="raise"):
        nash = make_combiner("nash_mtl").combine(G)
        imtl = make_combiner("imtl_g").combine(G)
        aligned = make_combiner("aligned_mtl").combine(G)
        fair = make_combiner("fairgrad", alpha=2.0).combine(G)
    np.testing.assert_allclose(nash.direction, np.sqrt(2) * u, atol=1e-12)  # (u + u) / sqrt(2)
    np.testing.assert_allclose(imtl.direction, 2 * (3 * 6) / (3 + 6) * u, atol=1e-12)
    assert aligned.info["rank"] == 1
    np.testing.assert_allclose(aligned.direction, 3 * g, atol=1e-12)  # rank 1: the plain sum
    w = fair.task_weights
    np.testing.assert_allclose((G @ G.T @ w) * w**0.5, 1.0, atol=1e-10)


def test_anti_parallel_gradients_are_finite():
    G = np.array([[1.0, 2.0, 3.0], [-2.0, -4.0, -6.0]])
    with np.errstate(all="raise"):
        imtl = make_combiner("imtl_g").combine(G)
        aligned = make_combiner("aligned_mtl").combine(G)
    # IMTL-G: equal projections on u and -u force d = 0; Aligned-MTL at rank 1 takes the sum (as LibMTL does)
    np.testing.assert_allclose(imtl.direction, 0.0, atol=1e-14)
    np.testing.assert_allclose(aligned.direction, G.sum(axis=0), atol=1e-12)


@pytest.mark.parametrize("name", MODERN)
@pytest.mark.parametrize("tiny", [1e-12, 1e-90])
def test_tiny_gradient_is_finite(name, tiny):
    G = np.array([[1.0, 2.0, 3.0], [1.0, -3.0, 1.0], [0.5, 0.2, -0.1]])
    G[2] *= tiny
    with np.errstate(all="raise"):
        out = make_combiner(name).combine(G)
    assert np.all(np.isfinite(out.direction)) and np.all(np.isfinite(out.task_weights))
    np.testing.assert_allclose(out.task_weights @ G, out.direction, rtol=1e-12, atol=1e-14)
    if name == "nash_mtl":
        # the tiny task bargains with its direction, not its size
        rescaled = make_combiner(name).combine(G / np.array([[1.0], [1.0], [tiny]])).direction
        np.testing.assert_allclose(out.direction, rescaled, atol=1e-10)


def test_fairgrad_alpha_family():
    G = random_G(3, 6, 1)
    # alpha = 0 is the sum
    out = make_combiner("fairgrad", alpha=0.0).combine(G)
    np.testing.assert_array_equal(out.task_weights, np.ones(3))
    # small alpha approaches the sum where the sum improves every task, large alpha equal improvements g_k . d
    if np.all(G @ G.sum(axis=0) > 0):
        np.testing.assert_allclose(make_combiner("fairgrad", alpha=1e-3).combine(G).task_weights, 1.0, atol=0.05)
    d = make_combiner("fairgrad", alpha=1e4).combine(G).direction
    improvements = G @ d
    assert improvements.max() - improvements.min() < 0.01 * improvements.mean()


@pytest.mark.parametrize("alpha", [0.05, 0.2, 20.0, 1e3])
def test_fairgrad_extreme_alpha_stays_finite(alpha):
    # with conflicting gradients small alpha drives some g_k . d to ~1e-14 and large alpha some weights to ~0,
    # beyond what the equations can resolve in float64: the solver must still end with a finite descent step
    comb = make_combiner("fairgrad", alpha=alpha)
    for seed in range(20):
        G = random_G(3, 3, seed)
        with np.errstate(all="raise"):
            out = comb.combine(G)
        assert np.all(np.isfinite(out.task_weights)) and out.info["n_iter"] <= 100
        if not out.info["pareto_stationary"]:
            assert np.all(out.task_weights > 0) and np.all(G @ out.direction > -1e-9 * np.linalg.norm(G) ** 2)


def test_bad_settings():
    with pytest.raises(ValueError, match="alpha"):
        make_combiner("fairgrad", alpha=-1.0)
    with pytest.raises(ValueError, match="alpha"):
        make_combiner("fairgrad", alpha=float("inf"))
    with pytest.raises(ValueError, match="max_iter"):
        make_combiner("nash_mtl", max_iter=0)
    with pytest.raises(ValueError, match="'c'"):
        make_combiner("imtl_g", c=1.0)
    with pytest.raises(ValueError, match="'alpha'"):
        make_combiner("aligned_mtl", alpha=1.0)


# ---------------------------------------------------------------- CAGrad, T > 2
def test_cagrad_issue_example_with_zero_inside_the_hull():
    G = np.array([[-0.9, -1.7], [-1.5, -1.4], [2.8, 2.9]])
    c = 0.8
    M = G @ G.T
    s = c * np.linalg.norm(G.mean(axis=0))
    w, _, mu = dual_solve(M, s)
    assert mu is None  # the optimum is not the kink
    np.testing.assert_allclose(w, [0.0, 0.668, 0.332], atol=1e-3)
    assert dual_objective(w, M, s) <= -0.00225 < dual_objective(np.array([1, 5, 3]) / 9, M, s)
    d = make_combiner("cagrad", c=c).combine(G).direction * (1 + c**2)
    # the worst task's first-order change is the best feasible one, -0.00225 (the old solver's was -0.0567)
    assert np.min(G @ d) == pytest.approx(dual_objective(w, M, s), abs=1e-12)
    assert np.linalg.norm(d - G.mean(axis=0)) <= s * (1 + 1e-12)


def cagrad_cases():
    rng = np.random.default_rng(11)
    for i in range(120):
        T, P = int(rng.integers(3, 7)), int(rng.integers(1, 6))
        G = rng.normal(size=(T, P)) * np.exp(rng.normal(size=(T, 1)))
        if i % 3 == 0:
            G[-1] = -(rng.uniform(0.1, 1.0, T - 1) @ G[:-1])  # 0 exactly inside the hull
        yield G, float(rng.uniform(0.05, 2.0))


def test_cagrad_many_tasks_is_primal_dual_optimal():
    """Weak duality: for any d in the ball and any w in the simplex, min_k g_k . d <= g_w . d <= the dual
    objective at w. The returned (d, w) meeting with equality certifies both optimal."""
    for G, c in cagrad_cases():
        T = G.shape[0]
        M = G @ G.T
        g0 = G.mean(axis=0)
        s = c * np.linalg.norm(g0)
        scale = np.max(np.diag(M))
        out = make_combiner("cagrad", c=c).combine(G)
        d = out.direction * (1 + c**2)
        assert np.linalg.norm(d - g0) <= s * (1 + 1e-9) + 1e-12 * np.sqrt(scale)
        w, n_iter, _ = dual_solve(M, s)
        assert n_iter < 100 and np.all(w >= 0) and abs(w.sum() - 1) < 1e-12
        # Gram-based norms below ~1e-8 are rounding, hence the kink's 1e-7
        assert abs(dual_objective(w, M, s) - np.min(G @ d)) <= 1e-7 * scale
        np.testing.assert_allclose(out.task_weights @ G, out.direction, atol=1e-12 * np.sqrt(scale))
        assert np.all(np.isfinite(out.direction)) and T == len(out.task_weights)


def test_cagrad_kink_optimum_hurts_no_task():
    # three gradients around 0 in the plane and a large ball: no direction improves every task, the best worst
    # case is 0, and the returned d (the optimal point nearest g0) reaches it instead of an arbitrary step
    G = np.array([[1.0, 0.2], [-0.6, 0.9], [-0.5, -1.3]])
    c = 1.5
    out = make_combiner("cagrad", c=c).combine(G)
    d = out.direction * (1 + c**2)
    assert np.min(G @ d) >= -1e-12 and np.min(G @ d) == pytest.approx(0.0, abs=1e-12)
    assert np.linalg.norm(d - G.mean(axis=0)) <= c * np.linalg.norm(G.mean(axis=0)) + 1e-12


def test_nnls_gram_meets_its_optimality_conditions():
    rng = np.random.default_rng(12)
    for _ in range(50):
        T, P = int(rng.integers(2, 8)), int(rng.integers(1, 8))
        G = rng.normal(size=(T, P))
        g0 = rng.normal(size=P)
        mu = nnls_gram(G @ G.T, G @ g0)
        grad = G @ (g0 + mu @ G)  # gradient of 1/2 ||g0 + G^T mu||^2
        assert np.all(mu >= 0) and np.all(grad >= -1e-10)
        assert abs(mu @ grad) <= 1e-10 * (1 + np.abs(mu).sum())

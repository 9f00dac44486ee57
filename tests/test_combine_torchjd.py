"""Cross-check of mtl_core's combiners against torchjd's aggregators (torchjd 0.18, a test-only dependency).

torchjd aggregates a Jacobian J (T, P) -- the same [T, P] layout as mtl_core's G. Scale conventions differ:
- AlignedMTL multiplies B by the preference vector 1/T, LibMTL (and mtl_core) by 1: ours = T * torchjd.
- NashMTL's weights are in G's units like ours (it divides G G^T by its norm and multiplies the factor back
  inside its constraints); it is stateful (fresh instance per call), clips |d| unless max_norm=0, stops its
  cvxpy iterations at a residual of 1e-3, and sometimes ends with one equation far from met (see the test).
- CAGrad returns g0 + lambda g_w without the official code's 1 / (1 + c^2): ours * (1 + c^2) = torchjd.
- IMTLG normalises by the signed sum of pinv(G G^T) |g|; mtl_core by its absolute value (when the sum is
  negative torchjd's direction increases every loss): equal when the sum is positive, opposite otherwise.
NashMTL and CAGrad need cvxpy (and ecos / clarabel), FairGrad scipy: the test extra installs them
(``torchjd[full]==0.18.0``), so a missing one fails these checks instead of skipping them.
"""

import warnings

import numpy as np
import pytest

from mtl_core.combine import make_combiner

torch = pytest.importorskip("torch")
aggregation = pytest.importorskip("torchjd.aggregation")


def jacobians(n=40, seed=0):
    """Random full-row-rank gradient matrices, T = 2..5 tasks, P = T..3T+2 parameters, unequal norms."""
    rng = np.random.default_rng(seed)
    for _ in range(n):
        T = int(rng.integers(2, 6))
        P = int(rng.integers(T, 3 * T + 3))
        yield rng.normal(size=(T, P)) * np.exp(rng.normal(size=(T, 1)))


def torchjd(aggregator, G):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cvxpy's DPP notice
        return aggregator(torch.tensor(G, dtype=torch.float64)).numpy()


def relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


def optional(make):
    """The aggregator; a failure naming the missing solver when torchjd's optional dependencies are not there."""
    try:
        return make()
    except ImportError as exc:
        pytest.fail(f"torchjd optional dependency missing (scripts/setup.sh test installs torchjd[full]): {exc}")


def test_imtl_g_matches_torchjd():
    for G in jacobians():
        ours = make_combiner("imtl_g").combine(G).direction
        theirs = torchjd(aggregation.IMTLG(), G)
        sign = np.sign(np.linalg.solve(G @ G.T, np.linalg.norm(G, axis=1)).sum())
        assert relative(ours, sign * theirs) < 1e-10


def test_aligned_mtl_matches_torchjd_times_T():
    for G in jacobians():
        ours = make_combiner("aligned_mtl").combine(G).direction
        assert relative(ours, G.shape[0] * torchjd(aggregation.AlignedMTL(), G)) < 1e-10


def test_mgda_matches_torchjd():
    # torchjd runs the Frank-Wolfe of Sener & Koltun, which converges slowly: our exact min-norm point is never
    # longer than its result, and its result approaches ours as its tolerance shrinks
    for G in jacobians():
        ours = make_combiner("mgda").combine(G).direction
        assert ours @ ours <= np.sum(torchjd(aggregation.MGDA(), G) ** 2) * (1 + 1e-12)
    errors = [
        relative(torchjd(aggregation.MGDA(epsilon=1e-6, max_iters=2000), G), make_combiner("mgda").combine(G).direction)
        for G in jacobians(5)
    ]
    assert np.median(errors) < 1e-3 and max(errors) < 0.1


def test_sum_and_mean_match_torchjd():
    for G in jacobians(10):
        np.testing.assert_allclose(make_combiner("sum").combine(G).direction, torchjd(aggregation.Sum(), G), rtol=1e-12)
        np.testing.assert_allclose(
            make_combiner("mean").combine(G).direction, torchjd(aggregation.Mean(), G), rtol=1e-12
        )


def test_nash_mtl_matches_torchjd():
    # torchjd's NashMTL (the official sequential convex approximation in cvxpy, warned about in its docs) ends
    # now and then with one bargaining equation far from met; where it meets them all, the two agree
    agreed = 0
    cases = list(jacobians(30))
    for G in cases:
        ours = make_combiner("nash_mtl").combine(G)
        M = G @ G.T
        a = ours.task_weights
        assert ours.info["pareto_stationary"] == 0 and np.max(np.abs(a * (M @ a) - 1)) < 1e-12
        agg = optional(lambda: aggregation.NashMTL(n_tasks=G.shape[0], max_norm=0.0))
        theirs = torchjd(agg, G)  # weights in G's units, as ours (G G^T / N inside)
        alpha = agg.weighting.prvs_alpha
        if np.max(np.abs(alpha * (M @ alpha) - 1)) < 1e-3:
            assert relative(ours.direction, theirs) < 1e-3
            agreed += 1
    assert agreed >= 0.8 * len(cases)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 5.0])
def test_fairgrad_matches_torchjd(alpha):
    for G in jacobians(20):
        ours = make_combiner("fairgrad", alpha=alpha).combine(G)
        assert ours.info["pareto_stationary"] == 0
        theirs = torchjd(optional(lambda: aggregation.FairGrad(alpha=alpha)), G)  # scipy least_squares
        assert relative(ours.direction, theirs) < 1e-5


@pytest.mark.parametrize("c", [0.25, 0.5, 0.8])
def test_cagrad_matches_torchjd(c):
    # torchjd solves CAGrad's dual with cvxpy/CLARABEL; the directions agree to its solver tolerance, and ours
    # never has a worse worst-task improvement (it is the maximiser over the same ball)
    for G in jacobians(20):
        ours = make_combiner("cagrad", c=c).combine(G).direction * (1 + c**2)
        theirs = torchjd(optional(lambda: aggregation.CAGrad(c=c)), G)
        assert relative(ours, theirs) < 1e-3
        assert np.min(G @ ours) >= np.min(G @ theirs) - 1e-12 * np.max(np.sum(G * G, axis=1))

"""Gradient diagnostics: cosines, norms, conflict flags, running negative-transfer monitor."""

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from mtl_core.diagnostics import NegativeTransferMonitor, conflict_flags, cosine_matrix, task_norms


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 5), st.integers(1, 6), st.data())
def test_cosine_matrix_matches_pairwise_definition(T, P, data):
    G = data.draw(hnp.arrays(np.float64, (T, P), elements=st.floats(-10, 10)))
    C = cosine_matrix(G)
    n = task_norms(G)
    assert C.shape == (T, T) and np.allclose(C, C.T)
    for i in range(T):
        assert n[i] == pytest.approx(np.sqrt(np.sum(G[i] ** 2)))
        for j in range(T):
            if n[i] == 0 or n[j] == 0:
                assert C[i, j] == 0.0
            else:
                # reference on max-scaled rows so that tiny (1e-200) gradients do not underflow when squared
                a, b = G[i] / np.abs(G[i]).max(), G[j] / np.abs(G[j]).max()
                assert C[i, j] == pytest.approx(np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)), abs=1e-12)
    F = conflict_flags(G)
    assert F.dtype == bool and not F.diagonal().any()
    off = ~np.eye(T, dtype=bool)
    assert np.array_equal(F[off], (C < 0)[off])


def test_known_values():
    G = np.array([[1.0, 0.0], [0.0, 2.0], [-3.0, 0.0], [0.0, 0.0]])
    C = cosine_matrix(G)
    np.testing.assert_allclose(C[0], [1, 0, -1, 0])
    assert C[3, 3] == 0.0
    np.testing.assert_allclose(task_norms(G), [1, 2, 3, 0])
    F = conflict_flags(G)
    assert F[0, 2] and F[2, 0] and F.sum() == 2


def test_monitor_rates_ema_and_flag():
    mon = NegativeTransferMonitor(3, decay=0.5, threshold=0.5, warmup=4, task_names=["a", "b", "c"])
    agree = np.array([[1.0, 0.0], [1.0, 1.0], [1.0, -1.0]])  # a.b > 0, a.c > 0, b.c = 0
    fight = np.array([[1.0, 0.0], [-1.0, 0.1], [1.0, -1.0]])  # a.b < 0, b.c < 0
    for G in (fight, fight, agree):
        mon.update(G)
    rep = mon.report()
    assert rep["n_steps"] == 3 and not rep["warmed_up"] and rep["flagged"] == []
    mon.update(fight)
    rep = mon.report()
    pairs = {tuple(p["tasks"]): p for p in rep["pairs"]}
    assert pairs[("a", "b")]["conflict_rate"] == pytest.approx(0.75)
    assert pairs[("a", "c")]["conflict_rate"] == 0.0
    assert rep["flagged"] == [["a", "b"], ["b", "c"]]
    # EMA by hand: first update sets it, then ema <- 0.5 ema + 0.5 cos
    cf, ca = cosine_matrix(fight)[0, 1], cosine_matrix(agree)[0, 1]
    ema = cf
    for c in (cf, ca, cf):
        ema = 0.5 * ema + 0.5 * c
    assert pairs[("a", "b")]["ema_cosine"] == pytest.approx(ema)
    json.dumps(rep)
    mon.reset()
    assert mon.report()["n_steps"] == 0


@pytest.mark.parametrize("bad", [np.array([[np.nan, 1.0]]), np.ones(3), np.ones((2, 2, 2)), np.zeros((0, 2))])
def test_bad_G(bad):
    for fn in (cosine_matrix, task_norms, conflict_flags):
        with pytest.raises(ValueError, match="G"):
            fn(bad)


def test_monitor_bad_arguments():
    with pytest.raises(ValueError, match="n_tasks"):
        NegativeTransferMonitor(0)
    with pytest.raises(ValueError, match="decay"):
        NegativeTransferMonitor(2, decay=1.0)
    with pytest.raises(ValueError, match="threshold"):
        NegativeTransferMonitor(2, threshold=1.5)
    with pytest.raises(ValueError, match="warmup"):
        NegativeTransferMonitor(2, warmup=-1)
    with pytest.raises(ValueError, match="task_names"):
        NegativeTransferMonitor(2, task_names=["a"])
    with pytest.raises(ValueError, match="G"):
        NegativeTransferMonitor(2).update(np.ones((3, 2)))

"""Trainer: the step pipeline, determinism, divergence, callbacks, separate datasets."""

import numpy as np
import pytest

from mtl_core.data import make_related_classification, make_scale_mismatch, make_unequal_tasks
from mtl_core.nets import MultiTaskNet, SeparateNets
from mtl_core.optim import SGD, Adam
from mtl_core.trainer import Trainer


def _related(seed=0, n=200, r=0.8):
    return make_related_classification(n, rng=np.random.default_rng(seed), relatedness=r, noise=0.05)


def _net(ds, seed=0, cls=MultiTaskNet, trunk=(16,)):
    return cls(ds.x.shape[1], ds.tasks, trunk=trunk, rng=np.random.default_rng(seed))


def test_same_seed_same_history():
    runs = []
    for _ in range(2):
        ds = _related()
        tr = Trainer(_net(ds), ds, weighting="uncertainty", combiner="pcgrad", batch_size=32, seed=3)
        tr.run(25)
        runs.append(np.array([r.losses for r in tr.history]))
    np.testing.assert_array_equal(runs[0], runs[1])


def test_different_seed_different_batches():
    ds = _related()
    a = Trainer(_net(ds), ds, batch_size=32, seed=1)
    b = Trainer(_net(ds), ds, batch_size=32, seed=2)
    a.run(5)
    b.run(5)
    assert not np.allclose([r.losses for r in a.history], [r.losses for r in b.history])


@pytest.mark.parametrize("weighting", ["equal", "uncertainty", "gradnorm", "dwa", "loss_norm", "performance"])
@pytest.mark.parametrize("combiner", ["sum", "pcgrad", "mgda", "cagrad"])
def test_training_reduces_loss(weighting, combiner):
    ds = _related(n=300)
    tr = Trainer(_net(ds), ds, weighting=weighting, combiner=combiner, optimizer=Adam(lr=0.02), batch_size=64, seed=0)
    tr.run(150)
    assert tr.diverged is None
    first = np.mean([r.losses for r in tr.history[:10]], axis=0)
    last = np.mean([r.losses for r in tr.history[-10:]], axis=0)
    assert np.all(last < first), (first, last)
    assert all(r.weights.shape == (2,) and np.all(np.isfinite(r.weights)) for r in tr.history)


def test_record_contents():
    ds = _related()
    tr = Trainer(_net(ds), ds, combiner="pcgrad", batch_size=50, eval_data=ds, eval_every=5, seed=0)
    recs = tr.run(10)
    rec = recs[-1]
    assert rec.cosine.shape == (2, 2) and np.allclose(np.diag(rec.cosine), 1.0)
    assert rec.norms.shape == (2,) and np.all(rec.norms > 0)
    assert rec.metrics is not None and set(rec.metrics) == {"a", "b"}
    assert recs[3].metrics is None
    d = rec.as_dict()
    assert d["step"] == 9 and len(d["losses"]) == 2


def test_callback_can_stop():
    ds = _related()
    tr = Trainer(_net(ds), ds, seed=0)
    seen = []
    tr.run(50, callback=lambda rec: seen.append(rec.step) or len(seen) < 7)
    assert len(tr.history) == 7 and seen == list(range(7))


def test_divergence_is_reported_at_its_step_and_params_stay_finite():
    ds = make_scale_mismatch(200, rng=np.random.default_rng(0), scale=1000.0)
    net = _net(ds)
    tr = Trainer(net, ds, optimizer=SGD(lr=50.0), batch_size=200, seed=0)
    tr.run(200)
    assert tr.diverged is not None
    last = tr.history[-1]
    assert last.diverged == tr.diverged
    assert all(r.diverged is None for r in tr.history[:-1])
    assert f"step {last.step}" in tr.diverged
    assert np.all(np.isfinite(net.params))
    with pytest.raises(RuntimeError, match="diverged"):
        tr.step()


def test_separate_nets_have_no_shared_gradient():
    ds = _related()
    tr = Trainer(_net(ds, cls=SeparateNets), ds, combiner="pcgrad", seed=0)
    tr.run(5)
    assert tr.diverged is None and len(tr.history) == 5


def test_separate_datasets_with_sampler():
    from mtl_core.sampling import TaskSampler

    data = make_unequal_tasks({"a": 400, "b": 40}, rng=np.random.default_rng(0))
    first = next(iter(data.values()))
    tasks = [t for d in data.values() for t in d.tasks]
    net = MultiTaskNet(first.x.shape[1], tasks, trunk=(16,), rng=np.random.default_rng(0))
    sampler = TaskSampler({k: d.n_samples for k, d in data.items()}, method="temperature", alpha=0.5)
    tr = Trainer(net, data, sampler=sampler, batch_size=32, seed=0)
    tr.run(30)
    assert tr.diverged is None
    assert np.all(np.isfinite([r.losses for r in tr.history]))


def test_l2_adds_to_total():
    ds = _related()
    a = Trainer(_net(ds), ds, batch_size=200, seed=0)
    b = Trainer(_net(ds), ds, batch_size=200, seed=0, l2=0.1)
    ra, rb = a.step(), b.step()
    assert rb.total > ra.total
    np.testing.assert_allclose(ra.losses, rb.losses)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size"),
        ({"l2": -1.0}, "l2"),
        ({"seed": -1}, "seed"),
        ({"weighting": "nope"}, "nope"),
        ({"combiner": "nope"}, "nope"),
    ],
)
def test_bad_arguments(kwargs, match):
    ds = _related()
    with pytest.raises(ValueError, match=match):
        Trainer(_net(ds), ds, **kwargs)


def test_bad_data_keys():
    ds = _related()
    with pytest.raises(ValueError, match="data"):
        Trainer(_net(ds), {"zzz": ds})

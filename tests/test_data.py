import numpy as np
import pytest

from mtl_core.data import (
    MultiTaskDataset,
    label_agreement,
    make_related_classification,
    make_scale_mismatch,
    make_unequal_tasks,
)
from mtl_core.tasks import TaskSpec


def rng(seed=0):
    return np.random.default_rng(seed)


def small_dataset():
    x = np.arange(20, dtype=float).reshape(10, 2)
    tasks = [TaskSpec("r"), TaskSpec("b", kind="binary"), TaskSpec("m", kind="multiclass", n_classes=3)]
    targets = {"r": np.linspace(-1, 1, 10), "b": np.arange(10) % 2, "m": np.arange(10) % 3}
    return MultiTaskDataset(x, targets, None, tasks)


# -- MultiTaskDataset --------------------------------------------------------------------------------------------


def test_dataset_holds_arrays_with_contract_dtypes():
    ds = small_dataset()
    assert ds.n_samples == len(ds) == 10 and ds.in_dim == 2
    assert ds.x.dtype == np.float64
    assert ds.targets["r"].dtype == np.float64 and ds.targets["b"].dtype == np.float64
    assert ds.targets["m"].dtype.kind == "i"
    assert all(m.dtype == bool and m.all() for m in ds.masks.values())
    assert ds.task_names == ["r", "b", "m"]


def test_dataset_flattens_n_by_1_targets():
    ds = MultiTaskDataset(np.zeros((5, 1)), {"r": np.ones((5, 1))}, None, [TaskSpec("r")])
    assert ds.targets["r"].shape == (5,)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(x=np.zeros(10)), "x"),
        (dict(x=np.full((10, 2), np.nan)), "x"),
        (dict(targets={"r": np.zeros(10), "b": np.zeros(10)}), "targets"),
        (dict(targets={"r": np.zeros(9), "b": np.zeros(10), "m": np.zeros(10)}), "targets\\['r'\\]"),
        (dict(targets={"r": np.full(10, np.inf), "b": np.zeros(10), "m": np.zeros(10)}), "targets\\['r'\\]"),
        (dict(targets={"r": np.zeros(10), "b": np.full(10, 2.0), "m": np.zeros(10)}), "targets\\['b'\\]"),
        (dict(targets={"r": np.zeros(10), "b": np.zeros(10), "m": np.full(10, 3)}), "targets\\['m'\\]"),
        (dict(masks={"r": np.ones(10)}), "masks\\['r'\\]"),
        (dict(masks={"zz": np.ones(10, bool)}), "masks"),
    ],
)
def test_dataset_validation(kwargs, match):
    base = dict(
        x=np.zeros((10, 2)),
        targets={"r": np.zeros(10), "b": np.zeros(10), "m": np.zeros(10, int)},
        masks=None,
        tasks=[TaskSpec("r"), TaskSpec("b", kind="binary"), TaskSpec("m", kind="multiclass", n_classes=3)],
    )
    base.update(kwargs)
    with pytest.raises(ValueError, match=match):
        MultiTaskDataset(base["x"], base["targets"], base["masks"], base["tasks"])


def test_hidden_rows_may_hold_nan():
    mask = np.array([True, False, True, True])
    ds = MultiTaskDataset(np.zeros((4, 1)), {"r": np.array([1.0, np.nan, 2.0, 3.0])}, {"r": mask}, [TaskSpec("r")])
    assert ds.n_labelled() == {"r": 3}
    assert ds.targets["r"][0] == 1.0


def test_batch_and_split():
    ds = small_dataset()
    x, t, m = ds.batch(np.array([3, 1]))
    np.testing.assert_array_equal(x, ds.x[[3, 1]])
    np.testing.assert_array_equal(t["m"], [0, 1])
    assert set(t) == set(m) == {"r", "b", "m"}
    with pytest.raises(ValueError, match="idx"):
        ds.batch(np.array([10]))
    with pytest.raises(ValueError, match="idx"):
        ds.batch(np.array([0.5]))
    train, test = ds.split(0.3, rng=rng(1))
    assert (train.n_samples, test.n_samples) == (7, 3)
    rows = np.concatenate([train.x[:, 0], test.x[:, 0]])
    np.testing.assert_array_equal(np.sort(rows), ds.x[:, 0])  # a partition of the rows
    # the targets travel with their rows
    np.testing.assert_array_equal(test.targets["r"], np.linspace(-1, 1, 10)[(test.x[:, 0] / 2).astype(int)])
    train2, test2 = ds.split(0.3, rng=rng(1))
    np.testing.assert_array_equal(test.x, test2.x)
    for bad in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError, match="test_fraction"):
            ds.split(bad, rng=rng())
    with pytest.raises(ValueError, match="rng"):
        ds.split(0.5, rng=1)


def test_with_missing_fractions():
    ds = make_scale_mismatch(200, rng=rng())
    half = ds.with_missing(0.5, rng=rng(1))
    assert half.n_labelled() == {"value": 100, "label": 100}
    assert not np.array_equal(half.masks["value"], half.masks["label"])  # independent per task
    assert np.all(half.targets["value"][~half.masks["value"]] == 0.0)
    assert np.all(np.isfinite(half.targets["value"]))
    # labelled targets are untouched
    lab = half.masks["value"]
    np.testing.assert_array_equal(half.targets["value"][lab], ds.targets["value"][lab])
    per = ds.with_missing({"value": 0.9}, rng=rng(1))
    assert per.n_labelled() == {"value": 20, "label": 200}
    seq = ds.with_missing((0.0, 1.0), rng=rng(1))
    assert seq.n_labelled() == {"value": 200, "label": 0}
    # hiding more on top of hidden rows only hides labelled ones
    more = half.with_missing(0.5, rng=rng(2))
    assert more.n_labelled() == {"value": 50, "label": 50}
    assert not np.any(more.masks["value"] & ~half.masks["value"])
    for bad in (1.5, -0.1, {"nope": 0.1}, (0.1,), {"value": 2.0}):
        with pytest.raises(ValueError, match="fraction"):
            ds.with_missing(bad, rng=rng())


# -- generators --------------------------------------------------------------------------------------------------


def test_related_classification_agreement_tracks_relatedness():
    rs = np.linspace(0, 1, 6)
    agree = [label_agreement(make_related_classification(20000, rng=rng(3), relatedness=r, noise=0.0)) for r in rs]
    assert agree[0] == pytest.approx(0.5, abs=0.02)
    assert agree[-1] == 1.0
    assert all(b > a for a, b in zip(agree, agree[1:]))
    # the design gives agreement 0.5 + 0.5 r in expectation
    np.testing.assert_allclose(agree, 0.5 + 0.5 * rs, atol=0.02)


def test_related_classification_shape_balance_noise_and_seed():
    ds = make_related_classification(5000, rng=rng(4), relatedness=1.0, noise=0.2)
    assert ds.x.shape == (5000, 2) and ds.task_names == ["a", "b"]
    assert all(t.kind == "binary" for t in ds.tasks)
    assert ds.targets["a"].mean() == pytest.approx(0.5, abs=0.03)
    # independent flips with p = 0.2 on identical labels -> agreement (1-p)^2 + p^2 = 0.68
    assert label_agreement(ds) == pytest.approx(0.68, abs=0.02)
    again = make_related_classification(5000, rng=rng(4), relatedness=1.0, noise=0.2)
    np.testing.assert_array_equal(ds.x, again.x)
    np.testing.assert_array_equal(ds.targets["b"], again.targets["b"])


def test_related_classification_is_not_linearly_separable():
    # least-squares linear classifier on many noise-free points stays far from perfect
    ds = make_related_classification(4000, rng=rng(5), noise=0.0)
    X = np.column_stack([ds.x, np.ones(ds.n_samples)])
    w, *_ = np.linalg.lstsq(X, ds.targets["a"] * 2 - 1, rcond=None)
    acc = np.mean((X @ w > 0) == (ds.targets["a"] == 1))
    assert acc < 0.7


def test_scale_mismatch_scales_and_shares_structure():
    small = make_scale_mismatch(4000, rng=rng(6), scale=1.0)
    big = make_scale_mismatch(4000, rng=rng(6), scale=100.0)
    assert big.targets["value"].std() == pytest.approx(100 * small.targets["value"].std(), rel=1e-12)
    assert 50 < big.targets["value"].std() < 200
    assert {t.name: t.kind for t in big.tasks} == {"value": "regression", "label": "binary"}
    # the label is (almost) the sign of the value: shared structure
    agree = np.mean((big.targets["value"] > 0) == (big.targets["label"] == 1))
    assert agree > 0.9
    assert big.targets["label"].mean() == pytest.approx(0.5, abs=0.03)
    wide = make_scale_mismatch(50, rng=rng(6), n_features=5)
    assert wide.x.shape == (50, 5)


def test_unequal_tasks():
    out = make_unequal_tasks({"a": 1000, "b": 50}, rng=rng(7), missing={"b": 0.2})
    assert set(out) == {"a", "b"}
    assert out["a"].n_samples == 1000 and out["b"].n_samples == 50
    assert out["a"].task_names == ["a"] and out["b"].task_names == ["b"]
    assert out["b"].n_labelled() == {"b": 40} and out["a"].n_labelled() == {"a": 1000}
    # relatedness = 1: both tasks label the plane the same way (check on shared probe points via task a's rule)
    same = make_unequal_tasks({"a": 3000, "b": 3000}, rng=rng(8), noise=0.0, relatedness=1.0)
    far = make_unequal_tasks({"a": 3000, "b": 3000}, rng=rng(8), noise=0.0, relatedness=0.0)

    # nearest-neighbour transfer of a's labels to b's points measures how alike the tasks are
    def transfer(d):
        xa, ya = d["a"].x, d["a"].targets["a"]
        xb, yb = d["b"].x[:500], d["b"].targets["b"][:500]
        nn = np.argmin(((xb[:, None, :] - xa[None, :, :]) ** 2).sum(-1), axis=1)
        return np.mean(ya[nn] == yb)

    assert transfer(same) > 0.9
    assert transfer(far) == pytest.approx(0.5, abs=0.08)


@pytest.mark.parametrize("make,extra", [(make_related_classification, {}), (make_scale_mismatch, {})])
def test_generators_missing_and_validation(make, extra):
    ds = make(100, rng=rng(9), missing=0.3)
    assert all(v == 70 for v in ds.n_labelled().values())
    with pytest.raises(ValueError, match="n_samples"):
        make(3, rng=rng())
    with pytest.raises(ValueError, match="rng"):
        make(100, rng=42)
    with pytest.raises(ValueError, match="missing"):
        make(100, rng=rng(), missing=1.2)
    with pytest.raises(ValueError, match="noise"):
        make(100, rng=rng(), noise=-0.1)


def test_generator_knob_validation():
    for r in (-0.1, 1.1):
        with pytest.raises(ValueError, match="relatedness"):
            make_related_classification(100, rng=rng(), relatedness=r)
    with pytest.raises(ValueError, match="noise"):
        make_related_classification(100, rng=rng(), noise=0.7)
    with pytest.raises(ValueError, match="scale"):
        make_scale_mismatch(100, rng=rng(), scale=0.0)
    with pytest.raises(ValueError, match="sizes"):
        make_unequal_tasks({"a": 3}, rng=rng())
    with pytest.raises(ValueError, match="sizes"):
        make_unequal_tasks({}, rng=rng())
    with pytest.raises(ValueError, match="rng"):
        make_unequal_tasks({"a": 10}, rng=None)
    with pytest.raises(ValueError, match="missing"):
        make_unequal_tasks({"a": 10}, rng=rng(), missing=-1.0)


def test_shared_trunk_helps_when_tasks_are_related_and_labels_scarce():
    # integration with the project's nets and trainer: same inputs, 80% of each task's labels hidden
    from mtl_core.metrics import evaluate
    from mtl_core.nets import MultiTaskNet, SeparateNets
    from mtl_core.optim import Adam
    from mtl_core.trainer import Trainer

    def gain(r):
        diffs = []
        for seed in range(8):
            ds = make_related_classification(2150, rng=rng(seed), relatedness=r, noise=0.0)
            train, test = ds.split(2000 / 2150, rng=rng(seed + 1))
            train = train.with_missing(0.8, rng=rng(seed + 2))
            acc = {}
            for cls in (MultiTaskNet, SeparateNets):
                net = cls(2, ds.tasks, trunk=(32, 32), rng=rng(seed))
                Trainer(net, train, optimizer=Adam(lr=1e-2), batch_size=150, seed=seed).run(300)
                ev = evaluate(ds.tasks, net.forward(test.x), test.targets, test.masks)
                acc[cls] = (ev["a"]["accuracy"] + ev["b"]["accuracy"]) / 2
            diffs.append(acc[MultiTaskNet] - acc[SeparateNets])
        return float(np.mean(diffs))

    related, unrelated = gain(1.0), gain(0.0)
    assert related > 0.01
    assert related > unrelated + 0.01


# -- main + auxiliary, stacked tasks ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["binary", "regression"])
def test_main_and_auxiliary_labels_few_main_rows_and_every_aux_row(kind):
    from mtl_core.data import make_main_and_auxiliary

    ds = make_main_and_auxiliary(300, rng=rng(1), main_labels=25, relatedness=1.0, noise=0.0, aux_kind=kind)
    main, aux = ds.tasks
    assert (main.name, main.kind, main.auxiliary) == ("main", "binary", False)
    assert (aux.name, aux.kind, aux.auxiliary) == ("aux", kind, True)
    assert ds.n_labelled() == {"main": 25, "aux": 300}
    m = ds.masks["main"]
    aux_label = ds.targets["aux"] > 0 if kind == "regression" else ds.targets["aux"] == 1
    assert np.array_equal(aux_label[m], ds.targets["main"][m] == 1)  # relatedness 1, no noise: the same pattern
    unrelated = make_main_and_auxiliary(4000, rng=rng(2), main_labels=4000, relatedness=0.0, noise=0.0)
    assert abs(label_agreement(unrelated, "main", "aux") - 0.5) < 0.04  # turned by 45 degrees: independent
    with pytest.raises(ValueError, match="main_labels"):
        make_main_and_auxiliary(10, rng=rng(), main_labels=11)
    with pytest.raises(ValueError, match="aux_kind"):
        make_main_and_auxiliary(10, rng=rng(), main_labels=5, aux_kind="multiclass")


def test_stack_tasks_labels_each_row_for_its_own_task_only():
    from mtl_core.data import stack_tasks

    parts = make_unequal_tasks({"p": 5, "q": 7}, rng=rng(3))
    ds = stack_tasks(parts)
    assert ds.n_samples == 12 and ds.task_names == ["p", "q"]
    assert ds.n_labelled() == {"p": 5, "q": 7}
    assert np.array_equal(ds.x[:5], parts["p"].x) and np.array_equal(ds.x[5:], parts["q"].x)
    assert np.array_equal(ds.targets["q"][ds.masks["q"]], parts["q"].targets["q"])
    with pytest.raises(ValueError, match="single task"):
        stack_tasks({"p": parts["q"]})
    with pytest.raises(ValueError, match="non-empty"):
        stack_tasks({})

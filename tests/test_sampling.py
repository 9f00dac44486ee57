import numpy as np
import pytest

from mtl_core.data import make_unequal_tasks
from mtl_core.sampling import TaskSampler

SIZES = {"big": 1000, "mid": 250, "small": 50}


def test_uniform_and_proportional_probabilities():
    assert TaskSampler(SIZES).probabilities() == pytest.approx({"big": 1 / 3, "mid": 1 / 3, "small": 1 / 3})
    p = TaskSampler(SIZES, method="proportional").probabilities()
    assert p == pytest.approx({"big": 1000 / 1300, "mid": 250 / 1300, "small": 50 / 1300})


def test_temperature_interpolates_between_uniform_and_proportional():
    t1 = TaskSampler(SIZES, method="temperature", alpha=1.0).probabilities()
    t0 = TaskSampler(SIZES, method="temperature", alpha=0.0).probabilities()
    assert t1 == pytest.approx(TaskSampler(SIZES, method="proportional").probabilities())
    assert t0 == pytest.approx(TaskSampler(SIZES, method="uniform").probabilities())
    half = TaskSampler(SIZES, method="temperature", alpha=0.5).probabilities()
    ref = {k: np.sqrt(v) for k, v in SIZES.items()}
    total = sum(ref.values())
    assert half == pytest.approx({k: v / total for k, v in ref.items()})
    # smaller alpha gives the small task more weight, monotonically
    small = [TaskSampler(SIZES, method="temperature", alpha=a).probabilities()["small"] for a in (1, 0.7, 0.3, 0)]
    assert all(b > a for a, b in zip(small, small[1:]))
    # huge alpha does not overflow: all mass on the biggest task
    assert TaskSampler(SIZES, method="temperature", alpha=500.0).probabilities()["big"] == pytest.approx(1.0)


@pytest.mark.parametrize("method", ["uniform", "proportional", "temperature"])
def test_frequencies_converge_to_probabilities(method):
    s = TaskSampler(SIZES, method=method, alpha=0.3)
    names = s.sample(60000, rng=np.random.default_rng(0))
    assert names.shape == (60000,)
    for k, p in s.probabilities().items():
        freq = np.mean(names == k)
        # 5 standard errors of a binomial proportion
        assert abs(freq - p) < 5 * np.sqrt(p * (1 - p) / names.size)


def test_sampling_is_seeded_and_indices_match_names():
    s = TaskSampler(SIZES, method="proportional")
    a = s.sample_indices(100, rng=np.random.default_rng(5))
    b = s.sample_indices(100, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)
    names = s.sample(100, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(names, np.array(s.task_names)[a])
    assert s.sample(0, rng=np.random.default_rng(0)).shape == (0,)


def test_from_datasets():
    data = make_unequal_tasks({"a": 400, "b": 40}, rng=np.random.default_rng(0))
    s = TaskSampler.from_datasets(data, method="proportional")
    assert s.probabilities() == pytest.approx({"a": 400 / 440, "b": 40 / 440})


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(sizes={}), "sizes"),
        (dict(sizes={"a": 0}), "sizes"),
        (dict(sizes={"a": 2.5}), "sizes"),
        (dict(sizes=[1, 2]), "sizes"),
        (dict(sizes={"a": 3}, method="greedy"), "method"),
        (dict(sizes={"a": 3}, method="temperature", alpha=-1.0), "alpha"),
    ],
)
def test_validation(kwargs, match):
    sizes = kwargs.pop("sizes")
    with pytest.raises(ValueError, match=match):
        TaskSampler(sizes, **kwargs)


def test_sample_validation():
    s = TaskSampler(SIZES)
    with pytest.raises(ValueError, match="rng"):
        s.sample(3, rng=None)
    with pytest.raises(ValueError, match="n"):
        s.sample(-1, rng=np.random.default_rng(0))

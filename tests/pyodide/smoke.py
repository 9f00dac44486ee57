"""Exercise every registered method, model and generator of mtl_core inside Pyodide (wasm32, numpy 2.0.2)."""

import sys

import numpy as np

from mtl_core.arena import CAGradToy, RotatedQuadratics, trajectory
from mtl_core.combine import COMBINERS
from mtl_core.data import make_related_classification, make_scale_mismatch, make_unequal_tasks
from mtl_core.metrics import delta_m, evaluate
from mtl_core.nets import CrossStitchNet, MultiTaskNet, SeparateNets
from mtl_core.sampling import TaskSampler
from mtl_core.tasks import TaskSpec
from mtl_core.trainer import Trainer
from mtl_core.twohead import two_head_loss
from mtl_core.weighting import WEIGHTINGS

assert sys.platform == "emscripten" and np.__version__ == "2.0.2", (sys.platform, np.__version__)
rng = np.random.default_rng(0)
related = make_related_classification(120, rng=rng, relatedness=0.5, missing=0.3)
for weighting in WEIGHTINGS:
    for combiner in COMBINERS:
        net = MultiTaskNet(2, related.tasks, trunk=(8, 8), rng=np.random.default_rng(1))
        tr = Trainer(
            net, related, weighting=weighting, combiner=combiner, batch_size=32, eval_data=related, eval_every=2, seed=0
        )
        tr.run(4)
        assert tr.diverged is None and len(tr.history) == 4, (weighting, combiner)
        assert tr.history[-1].metrics is not None
mismatch = make_scale_mismatch(80, rng=rng, missing=0.5)
for cls in (SeparateNets, CrossStitchNet):
    Trainer(cls(2, mismatch.tasks, trunk=(8,), rng=np.random.default_rng(1)), mismatch, l2=1e-3).run(3)
unequal = make_unequal_tasks({"a": 100, "b": 20}, rng=rng)
tasks = [t for d in unequal.values() for t in d.tasks]
sampler = TaskSampler({k: d.n_samples for k, d in unequal.items()}, method="temperature", alpha=0.5)
Trainer(MultiTaskNet(2, tasks, trunk=(8,), rng=rng), unequal, sampler=sampler, batch_size=16).run(3)
multi = [TaskSpec("m", kind="multiclass", n_classes=3), TaskSpec("r", loss="smooth_l1", hidden=(4,))]
net = MultiTaskNet(2, multi, trunk=(4,), dropout=0.1, rng=rng)
res = net.losses_and_grads(
    rng.normal(size=(6, 2)), {"m": np.array([0, 1, 2, 1, 0, 2]), "r": rng.normal(size=6)}, rng=rng
)
assert res.grads.shape == (2, net.n_params) and np.all(np.isfinite(res.grads))
preds = net.forward(rng.normal(size=(6, 2)))
evaluate(multi, preds, {"m": np.array([0, 1, 2, 1, 0, 2]), "r": np.zeros(6)})
assert abs(delta_m({"a": {"accuracy": 0.9}}, {"a": {"accuracy": 0.8}}) - 12.5) < 1e-9
for objective in (CAGradToy(), RotatedQuadratics(120.0)):
    for name in ("sum", "pcgrad", "mgda", "cagrad"):
        path = trajectory(objective, np.array([-8.5, 7.5]), name, lr=0.05, steps=20, rng=rng)
        assert path.shape == (21, 2)
    assert objective.grid(np.linspace(-10, 10, 5), np.linspace(-10, 10, 4)).shape == (2, 4, 5)
out = two_head_loss(3, rng.normal(size=(5, 2)), rng.normal(size=5), rng.normal(size=(5, 1)), 0.3)
assert out.shape == (3,)
print("PYODIDE-OK")

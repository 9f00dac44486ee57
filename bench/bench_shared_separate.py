"""Wall time of a 500-step "shared vs separate" run at the playground's default demo size (CPython).

    .venv/bin/python bench/bench_shared_separate.py [--repeats 7]

Both models (a shared-trunk MultiTaskNet and SeparateNets) train 500 steps each on the same related-tasks data,
as the Shared vs Separate page does. Target: median under 1 s. Prints the median and spread over repeats.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from mtl_core.data import make_related_classification
from mtl_core.nets import MultiTaskNet, SeparateNets
from mtl_core.optim import Adam
from mtl_core.trainer import Trainer

# The page's defaults (app/shared_separate.py SETTINGS); repeated here so the bench needs no panel import.
DEFAULTS = dict(
    relatedness=0.8, n_samples=200, noise=0.1, hidden=8, depth=2, activation="tanh", lr=0.03, batch_size=64, steps=500
)


def one_run(seed: int = 0) -> float:
    d = DEFAULTS
    ds = make_related_classification(
        d["n_samples"], rng=np.random.default_rng(seed), relatedness=d["relatedness"], noise=d["noise"]
    )
    train = ds
    t0 = time.perf_counter()
    for cls in (MultiTaskNet, SeparateNets):
        net = cls(
            2, ds.tasks, trunk=(d["hidden"],) * d["depth"], activation=d["activation"], rng=np.random.default_rng(seed)
        )
        tr = Trainer(net, train, optimizer=Adam(lr=d["lr"]), batch_size=d["batch_size"], seed=seed)
        tr.run(d["steps"])
        if tr.diverged:
            raise SystemExit(f"diverged: {tr.diverged}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    a = ap.parse_args()
    one_run()  # warm-up: imports, allocator
    times = [one_run(seed) for seed in range(a.repeats)]
    med = statistics.median(times)
    print(
        f"500-step shared vs separate (both models), n={DEFAULTS['n_samples']}, trunk "
        f"{DEFAULTS['depth']}x{DEFAULTS['hidden']} {DEFAULTS['activation']}, batch {DEFAULTS['batch_size']}: "
        f"median {med:.3f} s (min {min(times):.3f}, max {max(times):.3f}, {a.repeats} runs); target < 1 s: "
        f"{'MET' if med < 1.0 else 'NOT MET'}"
    )


if __name__ == "__main__":
    main()

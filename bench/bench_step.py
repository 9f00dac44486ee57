"""One PCGrad training step: mtl_core (NumPy) versus PyTorch on CPU, measured in the same run.

The step: forward the shared-trunk net (2-D input, trunk 2 x 64 ReLU, two binary heads,
batch 256, float32), per-task gradients (T, P), PCGrad on the shared part, sum of the
task-specific part, SGD update. Both sides start from the same weights; the script first
checks that one step gives the same parameters, then times many steps (warm-up first)
and prints the medians and the ratio numpy / torch (goal: <= 0.8).

Run: ``python bench/bench_step.py [--reps 2000]``
"""

from __future__ import annotations

import argparse
import ctypes
import glob
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from mtl_core.nets import MultiTaskNet  # noqa: E402
from mtl_core.tasks import TaskSpec  # noqa: E402

N, D, H, LR = 256, 2, 64, 1e-3


def _openblas(verb: str):
    """NumPy's bundled OpenBLAS function ``<prefix>_<verb>_num_threads`` (whichever name this build exports)."""
    libdir = os.path.join(os.path.dirname(np.__file__), "..", "numpy.libs")
    for path in glob.glob(os.path.join(libdir, "libscipy_openblas*.so*")):
        lib = ctypes.CDLL(path)
        for sym in (
            f"scipy_openblas_{verb}_num_threads64_",
            f"scipy_openblas_{verb}_num_threads",
            f"openblas_{verb}_num_threads",
        ):
            fn = getattr(lib, sym, None)
            if fn is not None:
                return fn
    return None


def blas_threads() -> int:
    """Thread count of NumPy's bundled OpenBLAS (falls back to the env var / CPU count)."""
    fn = _openblas("get")
    if fn is not None:
        fn.restype = ctypes.c_int
        return int(fn())
    env = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return int(env) if env else (os.cpu_count() or 1)


def set_blas_threads(n: int) -> bool:
    """Set NumPy's OpenBLAS thread count through its C API; False if that is not available."""
    fn = _openblas("set")
    if fn is None:
        return False
    fn(ctypes.c_int(n))
    return True


def pcgrad2(G, rng):
    """Inline 2-task PCGrad (fallback if mtl_core.combine is not there)."""
    g1, g2 = G[0], G[1]
    dot = float(g1 @ g2)
    if dot < 0.0:
        return (g1 - (dot / float(g2 @ g2)) * g2) + (g2 - (dot / float(g1 @ g1)) * g1)
    return g1 + g2


def make_problem(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)).astype(np.float32)
    ya = (x[:, 0] * x[:, 1] > 0).astype(np.float32)
    yb = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(np.float32)
    tasks = [TaskSpec("a", "binary"), TaskSpec("b", "binary")]
    net = MultiTaskNet(D, tasks, trunk=(H, H), activation="relu", rng=np.random.default_rng(seed + 1), dtype=np.float32)
    return net, x, {"a": ya, "b": yb}


# ---------------------------------------------------------------- numpy steps


def numpy_step_factory(net, x, targets, combine, *, unchecked):
    rng = np.random.default_rng(0)
    ns = net.n_shared
    params = net.params
    direction = np.empty_like(params)
    lr = np.float32(LR)
    if unchecked:
        xc, prepared = net._prepare(x, targets, None)  # validate the batch once

    def step():
        if unchecked:
            res = net._losses_and_grads_unchecked(xc, prepared, rng=rng, train=True)
        else:
            res = net.losses_and_grads(x, targets, rng=rng, train=True)
        G = res.grads
        direction[:ns] = combine(G[:, :ns], rng)
        np.sum(G[:, ns:], axis=0, out=direction[ns:])
        np.multiply(direction, lr, out=direction)
        np.subtract(params, direction, out=params)
        return res.losses

    return step


# ---------------------------------------------------------------- torch steps


def torch_steps(net, x, targets, torch):
    F = torch.nn.functional
    layout = {name: (sl, shape) for name, sl, shape in net.layout}

    def t(name):
        sl, shape = layout[name]
        return torch.tensor(net.params[sl].reshape(shape)).requires_grad_(True)

    names = [
        "trunk.0.W",
        "trunk.0.b",
        "trunk.1.W",
        "trunk.1.b",
        "task.a.out.W",
        "task.a.out.b",
        "task.b.out.W",
        "task.b.out.b",
    ]
    ps = [t(n) for n in names]
    xt = torch.tensor(x)
    ya, yb = torch.tensor(targets["a"]), torch.tensor(targets["b"])
    lr = LR

    def pcgrad(g1, g2):
        dot = torch.dot(g1, g2)
        if dot.item() < 0.0:
            return (g1 - dot / torch.dot(g2, g2) * g2) + (g2 - dot / torch.dot(g1, g1) * g1)
        return g1 + g2

    def step_separate():
        W0, b0, W1, b1, wa, ba, wb, bb = ps
        h = F.relu(torch.addmm(b0, xt, W0))
        h = F.relu(torch.addmm(b1, h, W1))
        la = F.binary_cross_entropy_with_logits(torch.addmm(ba, h, wa).squeeze(1), ya)
        lb = F.binary_cross_entropy_with_logits(torch.addmm(bb, h, wb).squeeze(1), yb)
        shared = ps[:4]
        ga = torch.autograd.grad(la, shared + [wa, ba], retain_graph=True)
        gb = torch.autograd.grad(lb, shared + [wb, bb])
        d = pcgrad(torch.cat([g.reshape(-1) for g in ga[:4]]), torch.cat([g.reshape(-1) for g in gb[:4]]))
        with torch.no_grad():
            off = 0
            for p in shared:
                n = p.numel()
                p.sub_(d[off : off + n].view_as(p), alpha=lr)
                off += n
            wa.sub_(ga[4], alpha=lr)
            ba.sub_(ga[5], alpha=lr)
            wb.sub_(gb[4], alpha=lr)
            bb.sub_(gb[5], alpha=lr)
        return la, lb

    # the same net with ONE flat parameter tensor, like mtl_core's layout
    theta = torch.tensor(net.params).requires_grad_(True)
    ns = net.n_shared

    def views():
        return [theta[layout[n][0]].view(layout[n][1]) for n in names]

    def step_flat():
        W0, b0, W1, b1, wa, ba, wb, bb = views()
        h = F.relu(torch.addmm(b0, xt, W0))
        h = F.relu(torch.addmm(b1, h, W1))
        la = F.binary_cross_entropy_with_logits(torch.addmm(ba, h, wa).squeeze(1), ya)
        lb = F.binary_cross_entropy_with_logits(torch.addmm(bb, h, wb).squeeze(1), yb)
        (ga,) = torch.autograd.grad(la, theta, retain_graph=True)
        (gb,) = torch.autograd.grad(lb, theta)
        with torch.no_grad():
            d = torch.empty_like(theta)
            d[:ns] = pcgrad(ga[:ns], gb[:ns])
            torch.add(ga[ns:], gb[ns:], out=d[ns:])
            theta.sub_(d, alpha=lr)
        return la, lb

    def flat_params_separate():
        return np.concatenate([p.detach().numpy().ravel() for p in ps])

    return step_separate, step_flat, flat_params_separate, (lambda: theta.detach().numpy().copy())


# ---------------------------------------------------------------- timing


def time_interleaved(variants, *, reps, warmup, block, budget_s):
    """Per-step times (us) of every variant, run in alternating blocks of ``block`` steps.

    The machine may be shared: alternating short blocks exposes every variant to the same
    background load, so the medians stay comparable even when the load changes.
    """
    clock = time.perf_counter_ns
    for fn in variants.values():
        for _ in range(warmup):
            fn()
    times = {name: [] for name in variants}
    done = 0
    start = time.perf_counter()
    # on an overloaded machine steps can take 100x longer: stop after a wall-clock budget
    while done < reps and time.perf_counter() - start < budget_s:
        k = min(block, reps - done)
        for name, fn in variants.items():
            out = times[name]
            for _ in range(k):
                t0 = clock()
                fn()
                out.append(clock() - t0)
        done += k
    return {name: np.asarray(v) / 1e3 for name, v in times.items()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=4000, help="timed steps per variant")
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--block", type=int, default=100, help="steps per variant before switching to the next")
    ap.add_argument("--budget", type=float, default=120.0, help="stop timing after this many seconds")
    ap.add_argument(
        "--threads", type=int, default=0, help="BLAS / torch threads for both sides (0 = NumPy's BLAS default)"
    )
    args = ap.parse_args(argv)

    import torch

    if args.threads > 0 and not set_blas_threads(args.threads):
        raise SystemExit("cannot set NumPy's BLAS thread count here")
    n_threads = blas_threads()
    torch.set_num_threads(n_threads)

    try:
        from mtl_core.combine import make_combiner

        pc = make_combiner("pcgrad")
        registry_combine = lambda G, rng: pc.combine(G, rng=rng).direction
        combine_source = "mtl_core.combine.make_combiner('pcgrad')"
    except ImportError:
        registry_combine = None
        combine_source = "inline pcgrad2 (mtl_core.combine not importable)"

    # --- correctness: one step on both sides from the same weights gives the same weights
    net, x, targets = make_problem()
    ref_net = net.copy()
    numpy_step_factory(net, x, targets, pcgrad2, unchecked=False)()
    s_sep, s_flat, p_sep, p_flat = torch_steps(ref_net, x, targets, torch)
    s_sep()
    s_flat()
    for label, theirs in (("separate", p_sep()), ("flat", p_flat())):
        err = float(np.max(np.abs(theirs - net.params)))
        print(f"check one step vs torch ({label} params): max |diff| = {err:.2e}")
        if err > 1e-5:
            raise SystemExit(f"numpy and torch steps disagree ({label}): {err}")

    variants = {}
    net, x, targets = make_problem()
    if registry_combine is not None:
        variants["numpy public API + registry PCGrad"] = numpy_step_factory(
            net.copy(), x, targets, registry_combine, unchecked=False
        )
        variants["numpy unchecked + registry PCGrad"] = numpy_step_factory(
            net.copy(), x, targets, registry_combine, unchecked=True
        )
    variants["numpy public API + inline PCGrad"] = numpy_step_factory(net.copy(), x, targets, pcgrad2, unchecked=False)
    variants["numpy unchecked + inline PCGrad"] = numpy_step_factory(net.copy(), x, targets, pcgrad2, unchecked=True)
    s_sep, s_flat, _, _ = torch_steps(net.copy(), x, targets, torch)
    variants["torch separate params + cat"] = s_sep
    variants["torch flat params"] = s_flat

    times = time_interleaved(variants, reps=args.reps, warmup=args.warmup, block=args.block, budget_s=args.budget)
    n_done = len(next(iter(times.values())))
    print(
        f"\nPCGrad step, 2 tasks, D={D}, trunk 2x{H} relu, batch {N}, float32, P={net.n_params} "
        f"(n_shared={net.n_shared})"
    )
    print(
        f"numpy {np.__version__} BLAS threads = {n_threads}; torch {torch.__version__} "
        f"set_num_threads({n_threads}) -> get_num_threads() = {torch.get_num_threads()}"
    )
    print(f"numpy combiner: {combine_source}")
    print(
        f"{n_done} timed steps per variant in alternating blocks of {args.block} (after {args.warmup} "
        f"warm-up); median [25th-75th percentile]:"
    )
    med = {k: float(np.median(v)) for k, v in times.items()}
    for k, v in times.items():
        q1, q3 = np.percentile(v, [25, 75])
        print(f"  {k:40s} {med[k]:8.1f} us   [{q1:.1f} - {q3:.1f}]")
    torch_best = min(med["torch separate params + cat"], med["torch flat params"])
    print(f"\nratio numpy / torch (median / median of the faster torch variant, {torch_best:.1f} us; goal <= 0.8):")
    for k, v in med.items():
        if k.startswith("numpy"):
            print(f"  {k:40s} {v / torch_best:6.3f}")


if __name__ == "__main__":
    main()

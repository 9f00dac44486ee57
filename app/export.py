"""Export a page's run: its history as CSV, its trained weights as ``.npz`` and a Python script that reproduces it.

One function per format, each pure: it reads the page's state object (its trainers, its plot sources, its settings)
and returns an :class:`Export` (file name, bytes, a plain-text note for the reader) or raises :class:`ExportError`
with a message to show instead (no steps yet, nothing to export). app/share.py puts them behind the page's Download
buttons; the plots as PNG are drawn by BokehJS in the browser (share.py) and need nothing from Python.

What the functions read, so that a page needs no code of its own (issue 14):

* the trainers: ``state.trainers`` or ``state.runs`` ({model: Trainer}) or ``state.trainer`` (one Trainer);
* the recorded curves: every ColumnDataSource in ``state.sources`` with a ``step`` column;
* the learning-rate changes during the run: ``state.lr_changes()`` (common.TrainingClock);
* the settings: the page's state attributes, and for the script its module's constants (N_TEST, BATCH, ...).

The scripts mirror each page's ``reset()`` line for line (tests/test_export.py runs every one in a fresh CPython
and checks that it ends with the page's losses): a page whose run is built differently must change its script here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import zipfile  # noqa: F401 - np.savez writes a zip: imported here so that the site's snapshot already holds it
from dataclasses import dataclass

import numpy as np

# the state classes whose runs "Copy as Python" can write out (name -> script builder, filled in below)
_SCRIPTS: dict = {}


class ExportError(ValueError):
    """Nothing to export in this state (no steps yet, no run); the message says so in plain words."""


@dataclass(frozen=True)
class Export:
    """One exported file: its name, its bytes and a plain-text note for the reader (what is in it, what is not)."""

    filename: str
    data: bytes
    note: str


# ---------------------------------------------------------------------------------------------------------------
# reading a page's state
# ---------------------------------------------------------------------------------------------------------------


def trainers(state) -> dict:
    """{model: Trainer} of a page: ``state.trainers``, ``state.runs`` or ``state.trainer`` (model "net").

    Values that are not ``mtl_core.trainer.Trainer`` (the arena's descent paths) are left out.
    """
    from mtl_core.trainer import Trainer

    for attr in ("trainers", "runs"):
        found = getattr(state, attr, None)
        if isinstance(found, dict) and found and all(isinstance(t, Trainer) for t in found.values()):
            return dict(found)
    one = getattr(state, "trainer", None)
    return {"net": one} if isinstance(one, Trainer) else {}


def steps_done(state) -> int:
    """Training steps recorded by the page's trainers (the longest history; 0 without trainers)."""
    return max((len(t.history) for t in trainers(state).values()), default=0)


def formats(state) -> tuple[str, ...]:
    """What a page can export: "png" always (its plots, drawn in the browser); "csv" for a run's history or the
    arena's descent paths; "npz" and "py" (weights, the script) for a page whose run "Copy as Python" can
    rebuild."""
    if type(state).__name__ in _SCRIPTS or trainers(state):
        return ("png", "csv", "npz", "py")
    if any(key.startswith("traj_") for key in getattr(state, "sources", None) or {}):
        return ("png", "csv")
    return ("png",)


def page_name(state) -> str:
    """A file-name stem for the page: its module's SLUG-like name, e.g. ``shared_separate``."""
    module = type(state).__module__.rsplit(".", 1)[-1]
    return module[: -len("_state")] if module.endswith("_state") else module


def _cell(value) -> str:
    """A CSV cell: full-precision floats (repr), empty for missing or non-finite values (spreadsheets read an
    empty cell as missing; 'nan' would be text)."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(int(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        return repr(v) if math.isfinite(v) else ""
    return str(value)


# ---------------------------------------------------------------------------------------------------------------
# history -> CSV
# ---------------------------------------------------------------------------------------------------------------


def _trainer_columns(prefix: str, tr) -> dict[str, dict[int, object]]:
    """{column: {step: value}} of one trainer's StepRecords (step = steps done after it, 1-based)."""
    names = tr.task_names
    cols: dict[str, dict[int, object]] = {}

    def put(col, step, value):
        cols.setdefault(prefix + col, {})[step] = value

    for rec in tr.history:
        s = rec.step + 1
        for k, t in enumerate(names):
            put(f"loss_{t}", s, rec.losses[k])
        for k, t in enumerate(names):
            put(f"weight_{t}", s, rec.weights[k])
        for i in range(len(names)):
            for j in range(i + 1, len(names)):
                pair = "" if len(names) == 2 else f"_{names[i]}_{names[j]}"
                put(f"cosine{pair}", s, rec.cosine[i, j])
        for k, t in enumerate(names):
            put(f"grad_norm_{t}", s, rec.norms[k])
        put("total_loss", s, rec.total)
        for key, value in sorted((rec.combine_info or {}).items()):
            if isinstance(value, (int, float, np.integer, np.floating)):
                put(key, s, value)
        for task, scores in sorted((rec.metrics or {}).items()):
            for metric, value in sorted(scores.items()):
                put(f"{metric}_{task}", s, value)
        put("diverged", s, rec.diverged or "")
    return cols


def _source_columns(state) -> dict[str, dict[int, object]]:
    """{source_column: {step: value}} of every plot source with a ``step`` column (what the page recorded, e.g.
    test accuracy every tick); the last row of a step wins."""
    cols: dict[str, dict[int, object]] = {}
    for key, src in (getattr(state, "sources", None) or {}).items():
        data = src.data
        if "step" not in data or not len(data["step"]):
            continue
        try:
            steps = [int(s) for s in data["step"]]
        except (TypeError, ValueError):  # not a step count (a gap drawn as NaN): not a history to join on
            continue
        for col, values in data.items():
            if col == "step" or len(values) != len(steps):
                continue
            values = list(values)
            if not all(v is None or isinstance(v, (int, float, np.integer, np.floating)) for v in values):
                continue  # text columns (labels, colours) are the page's drawing, not its history
            cols[f"{key}_{col}"] = dict(zip(steps, values))
    return cols


def history_csv(state) -> Export:
    """The run's history as CSV: one row per training step (``step`` = steps done, 1 to N).

    Per model (columns prefixed ``<model>_`` when the page trains several): each task's batch loss, loss weight
    and shared-gradient norm, the tasks' gradient cosine, the weighted total loss, what the combiner logged (e.g.
    PCGrad's projections) and why a step diverged; then every curve the page recorded, named ``<source>_<column>``
    (held-out accuracies, losses, ...: empty at the steps where the page did not record). Non-finite values (a run
    that diverged) are empty cells.

    Raises
    ------
    ExportError
        When no step has been trained yet (or the page has no run).
    """
    found = trainers(state)
    if not found:
        if any(key.startswith("traj_") for key in getattr(state, "sources", None) or {}):
            return _paths_csv(state)
        raise ExportError("Nothing to export: no model is training (pick at least one, then train).")
    n = steps_done(state)
    if n == 0:
        raise ExportError("No training steps yet: press Train or Step first, then download the history.")
    cols: dict[str, dict[int, object]] = {}
    for model, tr in found.items():
        cols.update(_trainer_columns(f"{model}_" if len(found) > 1 else "", tr))
    cols.update(_source_columns(state))
    if not any(col.endswith("diverged") and any(v for v in vals.values()) for col, vals in cols.items()):
        cols = {c: v for c, v in cols.items() if not c.endswith("diverged")}  # an empty column says nothing
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", *cols])
    for step in range(1, n + 1):
        writer.writerow([step, *(_cell(vals.get(step)) for vals in cols.values())])
    note = f"History: {n} steps, {len(cols)} columns."
    bad = [
        (m, tr.diverged, len(tr.history))
        for m, tr in found.items()
        if tr.diverged or any(not np.all(np.isfinite(r.losses)) for r in tr.history)
    ]
    if bad:
        m, why, at = bad[0]
        who = f"{m} " if len(found) > 1 else ""
        note += (
            f" Row {at}: the {who}run diverged ({why or 'non-finite losses'}; mtl_core counts steps from 0)."
            " Non-finite values are empty cells."
        )
    elif getattr(state, "error", ""):
        note += f" {state.error}"  # a run the page stopped itself (e.g. its test loss blew up)
    return Export(f"{page_name(state)}-history.csv", out.getvalue().encode("utf-8"), note)


def _paths_csv(state) -> Export:
    """The arena: its descent paths, one row per step, ``<method>_x`` and ``<method>_y`` (empty after a path
    ended)."""
    paths = {}
    for key, src in (getattr(state, "sources", None) or {}).items():
        if key.startswith("traj_") and len(src.data.get("x", [])):
            paths[key[len("traj_") :]] = (np.asarray(src.data["x"], float), np.asarray(src.data["y"], float))
    if not paths:
        raise ExportError("Nothing to export yet: this page has no run (press Run to draw the descent paths).")
    n = max(len(x) for x, _ in paths.values())
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", *(f"{m}_{c}" for m in paths for c in ("x", "y"))])
    for i in range(n):
        row = [i]
        for x, y in paths.values():
            row += [_cell(x[i]), _cell(y[i])] if i < len(x) else ["", ""]
        writer.writerow(row)
    note = f"Descent paths: {len(paths)} methods, up to {n - 1} steps (step 0 = the clicked point)."
    return Export(f"{page_name(state)}-paths.csv", out.getvalue().encode("utf-8"), note)


# ---------------------------------------------------------------------------------------------------------------
# weights -> npz
# ---------------------------------------------------------------------------------------------------------------


def weights_npz(state) -> Export:
    """The trained weights of every model as one ``.npz`` (``np.load(path)``, no pickle needed).

    Keys: ``models`` and ``task_names`` (string arrays), ``settings`` (JSON text of the page's settings), and per
    model ``<model>/params`` (the flat (P,) vector, net.params), ``<model>/steps`` (steps trained),
    ``<model>/layer_names``, ``<model>/layer_slices`` ((L, 2) start/stop into params) and one array per layer in
    its own shape (``<model>/trunk.0.W`` ...).

    Raises
    ------
    ExportError
        When the page has no trained model (the arena).
    """
    found = trainers(state)
    if not found:
        raise ExportError("This page has no network to export (it draws descent paths on a 2-D surface).")
    arrays: dict[str, np.ndarray] = {
        "models": np.array(list(found)),
        "task_names": np.array(list(next(iter(found.values())).task_names)),
        "settings": np.array(json.dumps(settings_of(state), sort_keys=True)),
    }
    for model, tr in found.items():
        net = tr.net
        arrays[f"{model}/params"] = np.array(net.params, copy=True)
        arrays[f"{model}/steps"] = np.array(tr.step_count)
        layout = list(getattr(net, "layout", []))
        arrays[f"{model}/layer_names"] = np.array([name for name, _, _ in layout])
        arrays[f"{model}/layer_slices"] = np.array([[sl.start, sl.stop] for _, sl, _ in layout], dtype=np.int64)
        for name, sl, shape in layout:
            arrays[f"{model}/{name}"] = np.array(net.params[sl]).reshape(shape)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    n = steps_done(state)
    note = f"Weights of {len(found)} model{'s' if len(found) > 1 else ''} after {n} steps"
    note += " (untrained: no step yet)." if n == 0 else "."
    return Export(f"{page_name(state)}-weights.npz", buf.getvalue(), note)


def settings_of(state) -> dict:
    """The page's settings as plain values ({name: value}; the Setting table of its module when it has one)."""
    module = _module_of(state)
    names = [s.name for s in getattr(module, "SETTINGS", ())] or [
        p for p in state.param if p not in ("name", "running", "steps", "status", "error")
    ]
    out = {}
    for name in names:
        value = getattr(state, name, None)
        out[name] = list(value) if isinstance(value, (tuple, list)) else value
    return out


def _module_of(state):
    import sys

    return sys.modules[type(state).__module__]


# ---------------------------------------------------------------------------------------------------------------
# run -> Python script
# ---------------------------------------------------------------------------------------------------------------


def python_script(state) -> Export:
    """A short script (numpy + mtl_core only) that rebuilds this run and trains it as far as the page did.

    Same data generator, seeds and settings, the same number of steps per model, and the learning rate changed at
    the steps where the reader moved its slider; run as printed it prints each model's final per-task losses,
    the same as the page's to the last bit on the same machine.

    Raises
    ------
    ExportError
        When the page has no run that a script can rebuild (the arena, or data the script cannot generate).
    """
    builder = _SCRIPTS.get(type(state).__name__)
    if builder is None or not trainers(state):
        raise ExportError("This page has no training run to write out as Python.")
    found = trainers(state)
    steps = {m: len(tr.history) for m, tr in found.items()}
    first_lr, changes = _lr_schedule(state)
    body = builder(state, first_lr)
    title = _module_of(state).__doc__.split('"')[1] if '"' in (_module_of(state).__doc__ or "") else page_name(state)
    n = max(steps.values(), default=0)
    script = "\n".join(
        [
            f'"""Reproduce a run of the MTL Playground page "{title}": the same data, seeds and settings, {n} steps.',
            "",
            "Needs only numpy and mtl_core. It prints each model's per-task loss at its last step, which the page",
            'shows in its history (Download > History CSV)."""',
            "",
            body.strip("\n"),
            "",
            f"STEPS = {steps!r}  # steps each model trained on the page",
            f"LR_CHANGES = {changes!r}  # (after this many steps, the new learning rate): the page's slider",
            "",
            _TRAIN_TAIL.strip("\n"),
            "",
        ]
    )
    note = f"A Python script that rebuilds this run and trains it {n} steps."
    if _custom(state):
        note += " Your own data is written into it, as numbers."
    if n == 0:
        note += " No steps yet: it builds the run and stops there."
    return Export(f"{page_name(state)}_run.py", script.encode("utf-8"), note)


_TRAIN_TAIL = """
for model, trainer in trainers.items():
    for step in range(STEPS[model]):
        for at, lr in LR_CHANGES:
            if at == step:
                trainer.optimizer.lr = lr
        if trainer.step().diverged:
            break
    if trainer.history:
        last = trainer.history[-1]
        losses = ", ".join(f"{t} loss {float(v)!r}" for t, v in zip(trainer.task_names, last.losses))
        print(f"{model} after {len(trainer.history)} steps: {losses}")
    else:
        print(f"{model}: no steps trained")
"""


def _lr_schedule(state) -> tuple[float | None, list]:
    """(learning rate the run started with, [(steps done, new rate), ...]) from ``state.lr_changes()``."""
    lr = getattr(state, "lr", None)
    changes = list(state.lr_changes()) if hasattr(state, "lr_changes") else []
    if not changes:
        return lr, []
    first = changes[0][1]  # (steps, old, new): the rate before the first change is the one the run began with
    return first, [(int(at), float(new)) for at, _old, new in changes]


def _r(value) -> str:
    """A literal for the script: floats to the last bit (repr), the rest as Python writes them."""
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return repr(int(value))
    if isinstance(value, (list, tuple)):
        return repr(tuple(value))
    return repr(value)


def _custom(state) -> bool:
    """True when the page trains on the reader's own data (``data = "custom"``, app/custom_data.py)."""
    return str(getattr(state, "data", "")) == "custom"


def _numbers(values, *, indent: str = "    ") -> str:
    """A flat list literal of ``values`` (repr floats, ints or 0/1), wrapped at ~110 characters."""
    import textwrap

    items = ", ".join(_r(v) if not isinstance(v, (bool, np.bool_)) else str(int(v)) for v in values)
    return "[\n" + textwrap.fill(items, 110, initial_indent=indent, subsequent_indent=indent) + "\n]"


def _task_literal(spec) -> str:
    """``TaskSpec(...)`` with the fields that differ from their defaults: the call that made ``spec``."""
    import dataclasses

    args = [repr(spec.name)]
    for f in dataclasses.fields(spec)[1:]:
        value = getattr(spec, f.name)
        if f.default is dataclasses.MISSING or value != f.default:
            args.append(f"{f.name}={_r(value) if not isinstance(value, tuple) else repr(value)}")
    return f"TaskSpec({', '.join(args)})"


def _embedded_dataset(data) -> str:
    """Script lines that rebuild the MultiTaskDataset ``data`` as ``train`` from literals (the reader's own data,
    which no generator can draw again): inputs, each task's targets and which rows are labelled."""
    x = np.asarray(data.x, dtype=float)
    lines = [
        f"# your own data: {x.shape[0]} training rows of {x.shape[1]} inputs, as the page trained on them",
        f"x = np.array({_numbers(x.ravel())}).reshape({x.shape[0]}, {x.shape[1]})",
        "targets, masks = {}, {}",
    ]
    for spec in data.tasks:
        t = spec.name
        y = np.asarray(data.targets[t])
        dtype = "int" if y.dtype.kind in "iu" else "float"
        lines.append(f"targets[{t!r}] = np.array({_numbers(y.tolist())}, dtype={dtype})")
        lines.append(f"masks[{t!r}] = np.array({_numbers(np.asarray(data.masks[t], bool))}, dtype=bool)")
    tasks = ", ".join(_task_literal(spec) for spec in data.tasks)
    lines.append(f"train = MultiTaskDataset(x, targets, masks, [{tasks}])")
    return "\n".join(lines) + "\n"


def _shared_data(state) -> str:
    """The one training set every trainer of the page holds (the reader's own data)."""
    data = {id(tr.data): tr.data for tr in trainers(state).values()}
    if len(data) != 1 or None in data.values():
        raise ExportError("Copy as Python cannot write out this page's data.")
    return _embedded_dataset(next(iter(data.values())))


def _weighting_kwargs(name: str) -> str:
    from app import common

    return _r(common.WEIGHTING_KWARGS.get(name))


def _script(state_class_name: str):
    def register(fn):
        _SCRIPTS[state_class_name] = fn
        return fn

    return register


@_script("SharedSeparateState")
def _shared_separate(state, lr) -> str:
    m = _module_of(state)
    if _custom(state):
        imports = "from mtl_core.data import MultiTaskDataset"
        settings = f"SEED, HIDDEN, LR, BATCH = {_r(state.seed)}, {_r(state.hidden)}, {_r(lr)}, {_r(m.BATCH)}"
        data = _shared_data(state)
    else:
        imports = "from mtl_core.data import make_related_classification"
        settings = f"""SEED, RELATEDNESS, NOISE, HIDDEN, N_SAMPLES, LR = {_r(state.seed)}, {_r(state.relatedness)}, \
{_r(state.noise)}, {_r(state.hidden)}, {_r(state.n_samples)}, {_r(lr)}
N_TEST, BATCH = {_r(m.N_TEST)}, {_r(m.BATCH)}"""
        data = """data = make_related_classification(
    N_SAMPLES + N_TEST, rng=np.random.default_rng(data_ss), relatedness=RELATEDNESS, noise=NOISE
)
train = data.subset(np.arange(N_SAMPLES))  # rows N_SAMPLES.. are the page's test points
"""
    return f"""
import numpy as np

{imports}
from mtl_core.nets import MultiTaskNet, SeparateNets
from mtl_core.optim import Adam
from mtl_core.trainer import Trainer
{"from mtl_core.tasks import TaskSpec" if _custom(state) else ""}
{settings}

data_ss, net_ss, train_ss = np.random.SeedSequence(SEED).spawn(3)
{data}# both models start from the same seed: the comparison is about sharing, not a lucky start
trunk = (HIDDEN, HIDDEN)
nets = {{
    "shared": MultiTaskNet(2, train.tasks, trunk=trunk, activation="tanh", rng=np.random.default_rng(net_ss)),
    "separate": SeparateNets(2, train.tasks, trunk=trunk, activation="tanh", rng=np.random.default_rng(net_ss)),
}}
train_seed = int(train_ss.generate_state(1)[0])
trainers = {{
    name: Trainer(
        net, train, weighting="equal", combiner="sum", optimizer=Adam(lr=LR), batch_size=BATCH, seed=train_seed
    )
    for name, net in nets.items()
}}
"""


@_script("ArchitecturesState")
def _architectures(state, lr) -> str:
    m = _module_of(state)
    if _custom(state):
        imports = "from mtl_core.data import MultiTaskDataset\nfrom mtl_core.tasks import TaskSpec"
        settings = f"SEED, HIDDEN, LR = {_r(state.seed)}, {_r(state.hidden)}, {_r(lr)}"
        data = _shared_data(state)  # the training rows only: the held-out ones score, they never train
    else:
        imports = "from mtl_core.data import make_related_classification"
        settings = f"""SEED, RELATEDNESS, NOISE, HIDDEN, N_SAMPLES, LR = {_r(state.seed)}, {_r(state.relatedness)}, \
{_r(state.noise)}, {_r(state.hidden)}, {_r(state.n_samples)}, {_r(lr)}"""
        data = """rng = np.random.default_rng(data_ss)
train = make_related_classification(N_SAMPLES, rng=rng, relatedness=RELATEDNESS, noise=NOISE)
"""
    return f"""
import numpy as np

{imports}
from mtl_core.nets import CrossStitchNet, SeparateNets, branched_net
from mtl_core.optim import Adam
from mtl_core.trainer import Trainer

{settings}
BRANCH, DEPTH, BATCH = {_r(state.branch)}, {_r(m.DEPTH)}, {_r(m.BATCH)}

data_ss, net_ss, train_ss = np.random.SeedSequence(SEED).spawn(3)
{data}widths = (HIDDEN,) * DEPTH
# every model from the same seed: the comparison is about the wiring, not a lucky start
tasks = train.tasks
nets = {{
    "separate": SeparateNets(2, tasks, trunk=widths, activation="tanh", rng=np.random.default_rng(net_ss)),
    "hard": branched_net(2, tasks, widths=widths, branch=BRANCH, activation="tanh", rng=np.random.default_rng(net_ss)),
    "stitch": CrossStitchNet(2, tasks, trunk=widths, activation="tanh", rng=np.random.default_rng(net_ss)),
}}
train_seed = int(train_ss.generate_state(1)[0])  # the same batches for every model
trainers = {{
    name: Trainer(net, train, optimizer=Adam(lr=LR), batch_size=BATCH, seed=train_seed) for name, net in nets.items()
}}
"""


@_script("TrainingLoopState")
def _training_loop(state, lr) -> str:
    m = _module_of(state)
    if state.problem == "related":
        make = "make_related_classification(N_TRAIN + N_TEST, rng=rng, relatedness=RELATEDNESS, noise=0.1)"
        gen, extra = "make_related_classification", f"RELATEDNESS = {_r(state.relatedness)}\n"
    else:
        make = "make_scale_mismatch(N_TRAIN + N_TEST, rng=rng, scale=100.0, noise=0.1)"
        gen, extra = "make_scale_mismatch", ""
    return f"""
import numpy as np

from mtl_core.data import {gen}
from mtl_core.nets import MultiTaskNet
from mtl_core.optim import Adam
from mtl_core.trainer import Trainer

SEED, HIDDEN, LR = {_r(state.seed)}, {_r(state.hidden)}, {_r(lr)}
WEIGHTING, COMBINER = {_r(state.weighting)}, {_r(state.combiner)}
{extra}N_TRAIN, N_TEST, BATCH = {_r(m.N_TRAIN)}, {_r(m.N_TEST)}, {_r(m.BATCH)}

data_ss, net_ss, train_ss = np.random.SeedSequence(SEED).spawn(3)
rng = np.random.default_rng(data_ss)
data = {make}
train = data.subset(np.arange(N_TRAIN))  # the rest are the page's test rows
net = MultiTaskNet(
    data.in_dim, data.tasks, trunk=(HIDDEN, HIDDEN), activation="tanh", rng=np.random.default_rng(net_ss)
)
trainer = Trainer(
    net,
    train,
    weighting=WEIGHTING,
    combiner=COMBINER,
    weighting_kwargs={_weighting_kwargs(state.weighting)},
    optimizer=Adam(lr=LR),
    batch_size=BATCH,
    seed=int(train_ss.generate_state(1)[0]),
)
trainers = {{"net": trainer}}
"""


@_script("WeightingLabState")
def _weighting_lab(state, lr) -> str:
    m = _module_of(state)
    if state.data not in ("scale", "unequal", "custom"):
        raise ExportError(f"Copy as Python cannot rebuild the data {state.data!r}.")
    opt = "Adam" if state.optimizer == "adam" else "SGD"
    in_dim = next(iter(trainers(state).values())).net.in_dim
    kwargs = {name: _weighting_kwargs(name) for name in state.runs if _weighting_kwargs(name) != "None"}
    if _custom(state):
        # the trainers hold the training rows after the page's split and hidden labels: written out as they are
        imports = "from mtl_core.data import MultiTaskDataset\n"
        data = _shared_data(state) + "tasks = list(train.tasks)\n"
        make_sampler = "None"
    elif state.data == "scale":
        imports = "from mtl_core.data import make_scale_mismatch\n"
        data = f"""SCALE_LOG10, N_SCALE, TEST_FRACTION = {_r(state.scale_log10)}, {_r(m.N_SCALE)}, {_r(m.TEST_FRACTION)}
full = make_scale_mismatch(N_SCALE, rng=data_rng, scale=10.0**SCALE_LOG10)
train, _test = full.split(TEST_FRACTION, rng=split_rng)
if MISSING > 0:  # labels go missing in training only
    train = train.with_missing(MISSING, rng=miss_rng)
tasks = list(full.tasks)
"""
        make_sampler = "None"
    else:
        imports = "from mtl_core.data import make_unequal_tasks\nfrom mtl_core.sampling import TaskSampler\n"
        data = f"""SIZES = {{"big": {_r(m.N_BIG)}, "small": {_r(state.n_small)}}}
TEST_FRACTION, ALPHA = {_r(m.TEST_FRACTION)}, {_r(state.alpha)}
parts = make_unequal_tasks(SIZES, rng=data_rng)
train = {{}}
for name, ds in parts.items():
    tr, _test = ds.split(TEST_FRACTION, rng=split_rng)
    train[name] = tr.with_missing(MISSING, rng=miss_rng) if MISSING > 0 else tr
tasks = [parts[name].tasks[0] for name in parts]
train_rows = {{name: d.n_samples for name, d in train.items()}}
"""
        make_sampler = 'TaskSampler(train_rows, method="temperature", alpha=ALPHA)'
    return f"""
import numpy as np

{imports}from mtl_core.nets import MultiTaskNet
from mtl_core.optim import {opt}
from mtl_core.trainer import Trainer
{"from mtl_core.tasks import TaskSpec" if _custom(state) else ""}
SEED, MISSING, LR = {_r(state.seed)}, {_r(state.missing)}, {_r(lr)}
METHODS, TRUNK, BATCH, IN_DIM = {_r(list(state.runs))}, {_r(m.TRUNK)}, {_r(m.BATCH)}, {_r(in_dim)}
WEIGHTING_KWARGS = {{{", ".join(f"{k!r}: {v}" for k, v in kwargs.items())}}}

data_ss, split_ss, miss_ss = np.random.SeedSequence(SEED).spawn(3)
data_rng, split_rng, miss_rng = (np.random.default_rng(s) for s in (data_ss, split_ss, miss_ss))
{data}
net_seed, train_seed = np.random.SeedSequence(SEED).spawn(5)[3:5]
train_seed = int(train_seed.generate_state(1)[0])
trainers = {{}}
for method in METHODS:
    # the same start for every method: differences come from the weighting alone
    net = MultiTaskNet(IN_DIM, tasks, trunk=TRUNK, activation="tanh", rng=np.random.default_rng(net_seed))
    trainers[method] = Trainer(
        net,
        train,
        weighting=method,
        combiner="sum",
        weighting_kwargs=WEIGHTING_KWARGS.get(method),
        optimizer={opt}(lr=LR),
        batch_size=BATCH,
        sampler={make_sampler},
        seed=train_seed,
    )
"""


@_script("AuxiliaryState")
def _auxiliary(state, _lr) -> str:
    m = _module_of(state)
    curriculum = (
        f'{{"weighting": "curriculum", "weighting_kwargs": {{"order": (1, 0), "interval": {_r(state.main_from)}, '
        f'"ramp": 0}}}}'
        if state.main_from
        else '{"weighting": "equal"}'
    )
    if _custom(state):
        imports = "from mtl_core.data import MultiTaskDataset\nfrom mtl_core.tasks import TaskSpec"
        settings = f"""SEED, DEEP, L2, DROPOUT = {_r(state.seed)}, {_r(bool(state.deep))}, {_r(state.l2)}, \
{_r(state.dropout)}
N_TRAIN, TRUNK, LR = {_r(m.N_TRAIN)}, {_r(m.TRUNK)}, {_r(m.LR)}  # N_TRAIN: the page's batch size"""
        # the training rows only (the held-out ones score, they never train), wired as the page wired them
        data = _embedded_dataset(state.train_data)
    else:
        imports = "from mtl_core.data import MultiTaskDataset, make_main_and_auxiliary"
        settings = f"""SEED, RELATEDNESS, MAIN_LABELS, AUX_KIND = {_r(state.seed)}, {_r(state.relatedness)}, \
{_r(state.main_labels)}, {_r(state.aux_kind)}
DEEP, L2, DROPOUT = {_r(bool(state.deep))}, {_r(state.l2)}, {_r(state.dropout)}
N_TRAIN, TRUNK, LR, NOISE, TWIST = {_r(m.N_TRAIN)}, {_r(m.TRUNK)}, {_r(m.LR)}, {_r(m.NOISE)}, {_r(m.TWIST)}"""
        data = """train_rng = np.random.default_rng(np.random.SeedSequence(SEED).spawn(2)[0])
kw = dict(relatedness=RELATEDNESS, noise=NOISE, aux_kind=AUX_KIND, twist=TWIST)
train = make_main_and_auxiliary(N_TRAIN, rng=train_rng, main_labels=MAIN_LABELS, **kw)
if DEEP:  # the auxiliary head reads hidden layer 1 (index 0) instead of the last
    tasks = [train.tasks[0], dataclasses.replace(train.tasks[1], attach_at=0)]
    train = MultiTaskDataset(train.x, train.targets, train.masks, tasks)
"""
    return f"""
import dataclasses

import numpy as np

{imports}
from mtl_core.nets import MultiTaskNet
from mtl_core.optim import Adam
from mtl_core.trainer import Trainer

{settings}


def only(data, task):
    \"\"\"``data`` restricted to one task and the rows labelled for it (a single-task baseline).\"\"\"
    spec = next(t for t in data.tasks if t.name == task)
    x, targets, masks = data.batch(data.masks[task])
    spec = dataclasses.replace(spec, auxiliary=False, attach_at=None)
    return MultiTaskDataset(x, {{task: targets[task]}}, {{task: masks[task]}}, [spec])


{data}runs = {{"with_aux": train, "alone": only(train, "main"), "aux_alone": only(train, "aux")}}
weighting = {{"with_aux": {curriculum}}}  # the curriculum (if any) of the run with the auxiliary task
net_seed = int(np.random.SeedSequence(SEED).spawn(3)[2].generate_state(1)[0])
trainers = {{}}
for name, data in runs.items():
    # the same trunk start in every run: only the tasks differ
    rng = np.random.default_rng(net_seed)
    net = MultiTaskNet(2, data.tasks, trunk=TRUNK, activation="tanh", dropout=DROPOUT, rng=rng)
    how = weighting.get(name, {{"weighting": "equal"}})
    trainers[name] = Trainer(net, data, optimizer=Adam(lr=LR), batch_size=N_TRAIN, l2=L2, seed=net_seed, **how)
"""

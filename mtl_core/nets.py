"""Multi-task networks with exact per-task gradients.

Three models share one interface (see docs/architecture.md, "Parameters and per-task
gradients"):

* :class:`MultiTaskNet` — hard parameter sharing: one trunk, one head per task.
* :class:`SeparateNets` — one independent network per task (nothing shared).
* :class:`CrossStitchNet` — one trunk column per task, mixed after every layer by a
  learned T x T cross-stitch matrix (Misra et al., 2016).

All parameters live in ONE flat vector ``net.params``; every weight is a view into it.
``losses_and_grads`` runs one forward pass, then backpropagates every task's loss
separately and returns the (T, P) matrix of per-task gradients. The T backward passes
through the shared trunk are done together: their upstream gradients are stacked into a
(T, N, H) array so each trunk layer costs a few batched matmuls instead of T Python loops.
"""

from __future__ import annotations

import copy as _copy
from dataclasses import dataclass
from dataclasses import replace as _dataclass_replace

import numpy as np

from . import losses as _losses
from ._checks import finite_array, generator, integer, real
from .layers import ACTIVATIONS, DERIVATIVES, dropout_forward
from .tasks import TaskSpec, check_unique


@dataclass
class TaskGrads:
    """Result of ``losses_and_grads``.

    Attributes
    ----------
    losses : (T,) float64, mean loss of each task over its labelled rows (0.0 if none)
    grads : (T, P) row k = d losses[k] / d params (zeros in other tasks' own parameters)
    preds : {task: prediction} regression (N,), binary logits (N,), multiclass logits (N, C)
    n_shared : number of leading entries of ``params`` that are shared
    """

    losses: np.ndarray
    grads: np.ndarray
    preds: dict
    n_shared: int


# ---------------------------------------------------------------- helpers


def _check_dtype(dtype):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError(f"dtype must be float32 or float64, got {dtype!r}") from None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _check_widths(trunk, *, allow_empty: bool):
    if isinstance(trunk, (int, np.integer)) or trunk is None:
        raise ValueError(f"trunk must be a sequence of positive ints, got {trunk!r}")
    try:
        widths = tuple(trunk)
    except TypeError:
        raise ValueError(f"trunk must be a sequence of positive ints, got {trunk!r}") from None
    for w in widths:
        if isinstance(w, bool) or not isinstance(w, (int, np.integer)) or w < 1:
            raise ValueError(f"trunk must be a sequence of positive ints, got {trunk!r}")
    if not widths and not allow_empty:
        raise ValueError("trunk must have at least one layer")
    return tuple(int(w) for w in widths)


def _init_std(fan_in: int, activation: str) -> float:
    # He for ReLU keeps the forward variance; LeCun for the saturating / linear ones
    return float(np.sqrt((2.0 if activation == "relu" else 1.0) / fan_in))


class _Layout:
    """Collects named parameter blocks, then packs them into one flat vector."""

    def __init__(self):
        self.entries = []  # (name, offset, shape, is_weight, init values float64)
        self.size = 0

    def add(self, name, values, *, is_weight):
        values = np.asarray(values, dtype=np.float64)
        self.entries.append((name, self.size, values.shape, is_weight, values))
        self.size += values.size
        return self.size - values.size

    def pack(self, dtype):
        params = np.empty(self.size, dtype=dtype)
        wmask = np.zeros(self.size, dtype=bool)
        for _, off, shape, is_weight, values in self.entries:
            n = values.size
            params[off : off + n] = values.ravel()
            wmask[off : off + n] = is_weight
        layout = [
            (name, slice(off, off + int(np.prod(shape, dtype=np.int64))), shape)
            for name, off, shape, _, _ in self.entries
        ]
        return params, wmask, layout


def _dense_init(layout, name, fan_in, fan_out, activation, rng):
    std = _init_std(fan_in, activation)
    w_off = layout.add(f"{name}.W", rng.standard_normal((fan_in, fan_out)) * std, is_weight=True)
    b_off = layout.add(f"{name}.b", np.zeros(fan_out), is_weight=False)
    return (w_off, fan_in, fan_out, b_off)


class _Head:
    """A task's own layers: optional hidden branch layers, then the output layer.

    Stores only offsets; the net builds views into its current params (so copies work).
    """

    def __init__(self, spec: TaskSpec, attach: int, in_dim: int, activation: str, layout, rng):
        self.spec = spec
        self.name = spec.name
        self.attach = attach  # index of the trunk layer read, -1 = the input x
        self.kernel_name = _losses.loss_name(spec)
        self.kernel = _losses.KERNELS[self.kernel_name]
        self.out_dim = spec.out_dim
        start = layout.size
        self.dense = []
        fan_in = in_dim
        for j, width in enumerate(spec.hidden):
            self.dense.append(_dense_init(layout, f"task.{spec.name}.hidden.{j}", fan_in, width, activation, rng))
            fan_in = width
        self.dense.append(_dense_init(layout, f"task.{spec.name}.out", fan_in, self.out_dim, "linear", rng))
        self.slice = slice(start, layout.size)


_ONES: dict = {}


def _ones(n: int, dtype) -> np.ndarray:
    """A cached read-only ones vector (N,): bias gradients are ``ones @ D``."""
    key = (n, np.dtype(dtype).str)
    v = _ONES.get(key)
    if v is None:
        if len(_ONES) > 64:
            _ONES.clear()
        v = np.ones(n, dtype=dtype)
        v.flags.writeable = False
        _ONES[key] = v
    return v


def _views(params, dense):
    return [(params[w : w + i * o].reshape(i, o), params[b : b + o]) for (w, i, o, b) in dense]


def _head_forward(h, views, act):
    """Branch layers then output; returns (pred, inputs of every dense layer)."""
    inputs = []
    for W, b in views[:-1]:
        inputs.append(h)
        z = h @ W
        z += b
        h = act(z, out=z)
    inputs.append(h)
    W, b = views[-1]
    if W.shape[1] == 1:  # matrix-vector product straight to (N,): cheaper than an (N, 1) GEMM
        out = h @ W[:, 0]
        out += b[0]
        return out, inputs
    out = h @ W
    out += b
    return out, inputs


def _head_backward(g, inputs, views, dense, grow, deriv, dh_out=None):
    """Backprop a head. ``g`` is dL/dpred; writes into the task's grads row ``grow`` (P,).

    Returns dL/d(head input), written into ``dh_out`` when given and the head has no branch.
    """
    n_layers = len(views)
    for j in range(n_layers - 1, -1, -1):
        w_off, i, o, b_off = dense[j]
        W = views[j][0]
        x_in = inputs[j]
        if g.ndim == 1:  # single-output layer: g (N,)
            np.matmul(g, x_in, out=grow[w_off : w_off + i])
            grow[b_off] = g.sum()
            if j == 0 and dh_out is not None:
                np.multiply(g[:, None], W[:, 0], out=dh_out)
                return dh_out
            dx = np.multiply.outer(g, W[:, 0])
        else:
            np.matmul(x_in.T, g, out=grow[w_off : w_off + i * o].reshape(i, o))
            np.sum(g, axis=0, out=grow[b_off : b_off + o])
            if j == 0 and dh_out is not None:
                np.matmul(g, W.T, out=dh_out)
                return dh_out
            dx = g @ W.T
        if j > 0:
            d = deriv(x_in)
            if d is not None:
                dx *= d
        g = dx
    return g


class _NetBase:
    """Flat-parameter plumbing shared by the three models."""

    # subclasses set: params, dtype, in_dim, tasks, task_names, n_shared, task_slices, last_shared,
    #                 _wmask, layout, _heads

    @property
    def n_params(self) -> int:
        """Total number of parameters P."""
        return int(self.params.size)

    @property
    def eval_task_names(self) -> list[str]:
        """Task names that count in evaluation (auxiliary tasks left out)."""
        return [t.name for t in self.tasks if not t.auxiliary]

    def regularization(self, l2):
        """L2 penalty ``0.5 * l2 * ||W||^2`` over weight matrices (biases and stitch units excluded).

        Returns
        -------
        value : float
        grad : (P,) same dtype as params
        """
        l2 = real("l2", l2, low=0.0)
        w = self.params * self._wmask
        return 0.5 * l2 * float(w @ w), w * self.dtype.type(l2)

    def get_state(self) -> dict:
        """A copy of the parameters, ``{"params": (P,) array}``."""
        return {"params": self.params.copy()}

    def set_state(self, state) -> None:
        """Copy parameters in place (views stay valid)."""
        if not isinstance(state, dict) or "params" not in state:
            raise ValueError("state must be a dict with key 'params'")
        p = np.asarray(state["params"])
        if p.shape != self.params.shape:
            raise ValueError(f"state['params'] must have shape {self.params.shape}, got {p.shape}")
        p = finite_array("state['params']", p)
        self.params[...] = p

    def copy(self):
        """An independent copy (own parameter vector)."""
        new = _copy.copy(self)
        new._rebind(self.params.copy())
        return new

    # ------------------------------------------------ argument checks

    def _check_x(self, x) -> np.ndarray:
        x = finite_array("x", x, ndim=2)
        if x.shape[1] != self.in_dim:
            raise ValueError(f"x must have {self.in_dim} columns (in_dim), got shape {x.shape}")
        if x.shape[0] < 1:
            raise ValueError("x must have at least one row")
        return np.ascontiguousarray(x, dtype=self.dtype)

    def _prepare(self, x, targets, masks):
        """Validate one batch; returns (x, [(y, w) per task]) ready for the unchecked path."""
        x = self._check_x(x)
        n = x.shape[0]
        if not isinstance(targets, dict):
            raise ValueError(f"targets must be a dict {{task: array}}, got {type(targets).__name__}")
        if masks is None:
            masks = {}
        if not isinstance(masks, dict):
            raise ValueError(f"masks must be a dict {{task: bool array}} or None, got {type(masks).__name__}")
        for key in targets:
            if key not in self._index:
                raise ValueError(f"targets: unknown task {key!r}; tasks are {self.task_names}")
        for key in masks:
            if key not in self._index:
                raise ValueError(f"masks: unknown task {key!r}; tasks are {self.task_names}")
        prepared = []
        for spec in self.tasks:
            if spec.name not in targets:
                # no target array for this task in this batch: it is unlabelled everywhere
                prepared.append(
                    (
                        np.zeros(n, dtype=np.intp if spec.kind == "multiclass" else self.dtype),
                        np.zeros(n, dtype=self.dtype),
                    )
                )
                continue
            prepared.append(
                _losses.prepare_target(
                    _losses.loss_name(spec),
                    targets[spec.name],
                    masks.get(spec.name),
                    n,
                    dtype=self.dtype,
                    n_classes=spec.n_classes,
                    name=f"targets[{spec.name!r}]",
                    mask_name=f"masks[{spec.name!r}]",
                )
            )
        return x, prepared

    def _check_mode(self, train, rng):
        if not isinstance(train, (bool, np.bool_)):
            raise ValueError(f"train must be a bool, got {train!r}")
        if train and getattr(self, "dropout", 0.0) > 0.0:
            generator("rng", rng)

    # ------------------------------------------------ public API

    def forward(self, x, *, train: bool = False, rng: np.random.Generator | None = None) -> dict:
        """Predictions for every task.

        Parameters
        ----------
        x : (N, in_dim)
        train : apply dropout (needs ``rng`` when the net has dropout)

        Returns
        -------
        {task: (N,) or (N, C)}
        """
        self._check_mode(train, rng)
        x = self._check_x(x)
        return self._predict(x, bool(train), rng)

    def losses_and_grads(
        self, x, targets: dict, masks: dict | None = None, *, rng: np.random.Generator | None = None, train: bool = True
    ) -> TaskGrads:
        """Per-task losses and the exact (T, P) per-task gradient matrix from one forward pass.

        Parameters
        ----------
        x : (N, in_dim) finite
        targets : {task: (N,) or (N, 1)}; a task missing here counts as unlabelled in this batch
        masks : {task: bool (N,)}, True = labelled; a missing key means every row is labelled
        rng : needed when ``train`` and the net has dropout
        train : dropout on (if any)

        Returns
        -------
        TaskGrads
        """
        self._check_mode(train, rng)
        x, prepared = self._prepare(x, targets, masks)
        return self._losses_and_grads_unchecked(x, prepared, rng=rng, train=bool(train))

    def _losses_and_grads_unchecked(self, x, prepared, *, rng=None, train=True) -> TaskGrads:
        """Hot path after :meth:`_prepare`: x (N, in_dim) in ``self.dtype``, prepared [(y, w)]."""
        grads = np.zeros((len(self.tasks), self.params.size), dtype=self.dtype)
        losses, preds = self._run(x, prepared, rng, train, grads)
        return TaskGrads(losses, grads, preds, self.n_shared)

    def _setup_tasks(self, tasks):
        self.tasks = check_unique(tasks)
        self.task_names = [t.name for t in self.tasks]
        self._index = {name: k for k, name in enumerate(self.task_names)}

    def _setup(self, in_dim, tasks, trunk, activation, *, allow_empty: bool):
        """Check and store the arguments every trunk-and-heads net shares (in this order, as before)."""
        self.in_dim = integer("in_dim", in_dim, low=1)
        self._setup_tasks(tasks)
        self.trunk_widths = _check_widths(trunk, allow_empty=allow_empty)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {tuple(ACTIVATIONS)}, got {activation!r}")
        self.activation = activation


def _check_attach(spec: TaskSpec, depth: int) -> int:
    if spec.attach_at is None:
        return depth - 1
    if spec.attach_at >= depth:
        raise ValueError(f"tasks: task {spec.name!r} has attach_at={spec.attach_at} but the trunk has {depth} layer(s)")
    return spec.attach_at


# ---------------------------------------------------------------- hard sharing


class MultiTaskNet(_NetBase):
    """Hard parameter sharing: a shared trunk of dense layers, one head per task.

    Parameters
    ----------
    in_dim : int, number of input features D
    tasks : sequence of TaskSpec
    trunk : widths of the shared layers (may be empty: heads then read x directly)
    activation : "relu", "tanh", "sigmoid" or "linear" (trunk and branch layers; outputs are linear)
    dropout : inverted-dropout probability after every trunk layer, only when ``train=True``
    rng : draws the initial weights
    dtype : float64 (default) or float32

    Layout of ``params``: trunk layers (W, b) first (the shared part), then each task's branch
    layers and output layer in task order.
    """

    def __init__(self, in_dim, tasks, *, trunk=(64, 64), activation="relu", dropout=0.0, rng, dtype=np.float64):
        self._setup(in_dim, tasks, trunk, activation, allow_empty=True)
        self.dropout = real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        generator("rng", rng)
        self.dtype = _check_dtype(dtype)
        depth = len(self.trunk_widths)
        attaches = [_check_attach(t, depth) for t in self.tasks]

        layout = _Layout()
        self._trunk_dense = []
        fan_in = self.in_dim
        for l, width in enumerate(self.trunk_widths):
            self._trunk_dense.append(_dense_init(layout, f"trunk.{l}", fan_in, width, activation, rng))
            fan_in = width
        self.n_shared = layout.size
        self._heads = []
        for spec, att in zip(self.tasks, attaches):
            width = self.in_dim if att < 0 else self.trunk_widths[att]
            self._heads.append(_Head(spec, att, width, activation, layout, rng))
        params, self._wmask, self.layout = layout.pack(self.dtype)
        self.task_slices = {h.name: h.slice for h in self._heads}
        if depth:
            w_off, i, o, _ = self._trunk_dense[-1]
            self.last_shared = slice(w_off, w_off + i * o)
        else:
            self.last_shared = slice(0, 0)
        self._rebind(params)

    def _rebind(self, params):
        self.params = params
        self._trunk = _views(params, self._trunk_dense)
        self._head_views = [_views(params, h.dense) for h in self._heads]

    # ------------------------------------------------ forward

    def _trunk_forward(self, x, train, rng):
        act = ACTIVATIONS[self.activation][0]
        drop = train and self.dropout > 0.0
        outs, pre, masks = [], [], []
        a = x
        for W, b in self._trunk:
            z = a @ W
            z += b
            a = act(z, out=z)
            if drop:
                pre.append(a)
                a, m = dropout_forward(a, self.dropout, rng=rng)
                masks.append(m)
            outs.append(a)
        # outs: what the next layer reads; pre: activations before dropout (for the derivative)
        return outs, (pre if drop else outs), (masks if drop else None)

    def _predict(self, x, train, rng):
        outs, _, _ = self._trunk_forward(x, train, rng)
        act = ACTIVATIONS[self.activation][0]
        preds = {}
        for head, views in zip(self._heads, self._head_views):
            h = x if head.attach < 0 else outs[head.attach]
            preds[head.name], _ = _head_forward(h, views, act)
        return preds

    # ------------------------------------------------ forward + per-task backward

    def _run(self, x, prepared, rng, train, grads):
        act = ACTIVATIONS[self.activation][0]
        deriv = DERIVATIVES[self.activation]
        outs, acts, masks = self._trunk_forward(x, train, rng)
        n = x.shape[0]
        n_tasks = len(self._heads)
        depth = len(self._trunk)
        losses = np.empty(n_tasks)
        preds = {}
        top = depth - 1
        # stacked upstream gradients of every task at the top trunk layer
        D = np.zeros((n_tasks, n, self.trunk_widths[top]), dtype=self.dtype) if depth else None
        late = []  # (layer, task, dh) for deep-supervision heads below the top
        for k, (head, views) in enumerate(zip(self._heads, self._head_views)):
            h = x if head.attach < 0 else outs[head.attach]
            pred, inputs = _head_forward(h, views, act)
            preds[head.name] = pred
            y, w = prepared[k]
            losses[k], g = head.kernel(pred, y, w)
            if head.attach < 0:
                _head_backward(g, inputs, views, head.dense, grads[k], deriv)
            elif head.attach == top:
                _head_backward(g, inputs, views, head.dense, grads[k], deriv, dh_out=D[k])
            else:
                late.append((head.attach, k, _head_backward(g, inputs, views, head.dense, grads[k], deriv)))
        if depth:
            self._trunk_backward(x, D, late, outs, acts, masks, grads, deriv)
        return losses, preds

    def _trunk_backward(self, x, D, late, outs, acts, masks, grads, deriv):
        n_tasks = D.shape[0]
        ones = _ones(x.shape[0], self.dtype)
        for l in range(len(self._trunk) - 1, -1, -1):
            for layer, k, dh in late:
                if layer == l:
                    D[k] += dh
            if masks is not None:
                D *= masks[l]
            d = deriv(acts[l])
            if d is not None:
                D *= d
            w_off, i, o, b_off = self._trunk_dense[l]
            prev = x if l == 0 else outs[l - 1]
            # dW_k = prev^T D_k for all tasks at once: (I, N) @ (T, N, O) -> (T, I, O)
            np.matmul(prev.T, D, out=grads[:, w_off : w_off + i * o].reshape(n_tasks, i, o))
            # db_k = 1^T D_k as a matmul: much faster than a sum over the middle axis
            np.matmul(ones, D, out=grads[:, b_off : b_off + o])
            if l > 0:
                # one big GEMM: (T*N, O) @ (O, I)
                D = (D.reshape(-1, o) @ self._trunk[l][0].T).reshape(n_tasks, -1, i)


def branched_net(in_dim, tasks, *, widths=(64, 64), branch, activation="relu", rng, dtype=np.float64) -> MultiTaskNet:
    """Hard sharing with a chosen branch point: the first ``branch`` layers of ``widths`` are shared, the rest
    are copied into every task's own branch (before the task's own ``TaskSpec.hidden`` layers).

    ``branch == 0`` shares nothing (each task gets the whole stack, as in :class:`SeparateNets`);
    ``branch == len(widths)`` is a plain :class:`MultiTaskNet` with ``trunk=widths``.

    Parameters
    ----------
    in_dim : int, number of input features D
    tasks : sequence of TaskSpec (none with ``attach_at``: every head reads the branch point)
    widths : widths of the whole stack of hidden layers, shared and task-specific (non-empty)
    branch : int in [0, len(widths)], number of shared layers
    activation, rng, dtype : as :class:`MultiTaskNet`
    """
    widths = _check_widths(widths, allow_empty=False)
    branch = integer("branch", branch, low=0, high=len(widths))
    tasks = check_unique(tasks)
    for t in tasks:
        if t.attach_at is not None:
            raise ValueError(f"tasks: task {t.name!r} has attach_at; branched_net heads read the branch point")
    own = widths[branch:]
    specs = [_dataclass_replace(t, hidden=own + t.hidden) for t in tasks]
    return MultiTaskNet(in_dim, specs, trunk=widths[:branch], activation=activation, rng=rng, dtype=dtype)


# ---------------------------------------------------------------- no sharing


class SeparateNets(_NetBase):
    """One independent :class:`MultiTaskNet` per task; nothing is shared (``n_shared == 0``).

    Same arguments as :class:`MultiTaskNet`. Task k's whole network (its own trunk and head)
    is ``params[task_slices[name]]``; sub-network weights are views into the one flat vector.
    """

    def __init__(self, in_dim, tasks, *, trunk=(64, 64), activation="relu", dropout=0.0, rng, dtype=np.float64):
        self.in_dim = integer("in_dim", in_dim, low=1)
        self._setup_tasks(tasks)
        self.trunk_widths = _check_widths(trunk, allow_empty=True)
        generator("rng", rng)
        self.dtype = _check_dtype(dtype)
        self.activation = activation
        self.dropout = real("dropout", dropout, low=0.0, high=1.0, high_open=True)
        self.nets = [
            MultiTaskNet(
                self.in_dim,
                [spec],
                trunk=self.trunk_widths,
                activation=activation,
                dropout=self.dropout,
                rng=rng,
                dtype=self.dtype,
            )
            for spec in self.tasks
        ]
        self.n_shared = 0
        self.last_shared = slice(0, 0)
        self.task_slices = {}
        self.layout = []
        wmasks = []
        off = 0
        for spec, net in zip(self.tasks, self.nets):
            self.task_slices[spec.name] = slice(off, off + net.n_params)
            for name, sl, shape in net.layout:
                self.layout.append((f"net.{spec.name}.{name}", slice(sl.start + off, sl.stop + off), shape))
            wmasks.append(net._wmask)
            off += net.n_params
        self._wmask = np.concatenate(wmasks)
        self._rebind(np.concatenate([net.params for net in self.nets]))

    def _rebind(self, params):
        self.params = params
        self.nets = [_copy.copy(net) for net in self.nets]
        for spec, net in zip(self.tasks, self.nets):
            net._rebind(params[self.task_slices[spec.name]])

    def _predict(self, x, train, rng):
        preds = {}
        for net in self.nets:
            preds.update(net._predict(x, train, rng))
        return preds

    def _run(self, x, prepared, rng, train, grads):
        losses = np.empty(len(self.nets))
        preds = {}
        for k, (spec, net) in enumerate(zip(self.tasks, self.nets)):
            sl = self.task_slices[spec.name]
            loss, p = net._run(x, [prepared[k]], rng, train, grads[k : k + 1, sl])
            losses[k] = loss[0]
            preds.update(p)
        return losses, preds


# ---------------------------------------------------------------- cross-stitch


class CrossStitchNet(_NetBase):
    """Cross-stitch networks (Misra et al., 2016).

    Every task has its own trunk column of the given widths. After trunk layer l, the T
    column outputs a_l (T, N, H) are mixed by a learned T x T matrix A_l:
    ``s_l[t] = sum_u A_l[t, u] a_l[u]``; column t's next layer (and task t's head, if it
    attaches there) reads s_l[t]. A_l starts near the identity (0.9 on the diagonal,
    0.1/(T-1) elsewhere), so columns start almost separate and learn how much to share.

    Every task's loss reaches every column through the stitches, so all trunk and stitch
    parameters are "shared"; the heads are task-specific.

    Parameters
    ----------
    in_dim, tasks, trunk, activation, rng, dtype : as :class:`MultiTaskNet` (trunk non-empty)

    Layout: for each layer l, ``trunk.l.W`` (T, I, O), ``trunk.l.b`` (T, O), ``stitch.l`` (T, T);
    then the heads. ``regularization`` covers column and head weights, not the stitch units.
    """

    dropout = 0.0

    def __init__(self, in_dim, tasks, *, trunk=(64, 64), activation="relu", rng, dtype=np.float64):
        self._setup(in_dim, tasks, trunk, activation, allow_empty=False)
        generator("rng", rng)
        self.dtype = _check_dtype(dtype)
        n_tasks = len(self.tasks)
        depth = len(self.trunk_widths)
        attaches = [_check_attach(t, depth) for t in self.tasks]

        layout = _Layout()
        if n_tasks == 1:
            stitch0 = np.ones((1, 1))
        else:
            stitch0 = np.full((n_tasks, n_tasks), 0.1 / (n_tasks - 1))
            np.fill_diagonal(stitch0, 0.9)
        self._layers = []  # (w_off, I, O, b_off, s_off)
        fan_in = self.in_dim
        for l, width in enumerate(self.trunk_widths):
            std = _init_std(fan_in, activation)
            w_off = layout.add(f"trunk.{l}.W", rng.standard_normal((n_tasks, fan_in, width)) * std, is_weight=True)
            b_off = layout.add(f"trunk.{l}.b", np.zeros((n_tasks, width)), is_weight=False)
            s_off = layout.add(f"stitch.{l}", stitch0, is_weight=False)
            self._layers.append((w_off, fan_in, width, b_off, s_off))
            fan_in = width
        self.n_shared = layout.size
        self._heads = [
            _Head(spec, att, self.trunk_widths[att], activation, layout, rng) for spec, att in zip(self.tasks, attaches)
        ]
        params, self._wmask, self.layout = layout.pack(self.dtype)
        self.task_slices = {h.name: h.slice for h in self._heads}
        w_off, i, o, _, _ = self._layers[-1]
        self.last_shared = slice(w_off, w_off + n_tasks * i * o)
        self._rebind(params)

    def _rebind(self, params):
        self.params = params
        t = len(self.tasks)
        self._trunk = [
            (
                params[w : w + t * i * o].reshape(t, i, o),
                params[b : b + t * o].reshape(t, 1, o),
                params[s : s + t * t].reshape(t, t),
            )
            for (w, i, o, b, s) in self._layers
        ]
        self._head_views = [_views(params, h.dense) for h in self._heads]

    def stitch_matrices(self) -> np.ndarray:
        """A copy of the learned cross-stitch matrices, one per trunk layer.

        Returns
        -------
        (L, T, T) array, L = number of trunk layers: ``A[l, t, u]`` is how much column t's input to the next layer
        (or to task t's head) takes from column u's output at layer l.
        """
        return np.stack([A.copy() for _, _, A in self._trunk])

    def _trunk_forward(self, x):
        act = ACTIVATIONS[self.activation][0]
        n_tasks = len(self.tasks)
        acts, stitched = [], []
        s = x
        for W, b, A in self._trunk:
            z = np.matmul(s, W)  # (N, I) or (T, N, I) @ (T, I, O) -> (T, N, O)
            z += b
            a = act(z, out=z)
            acts.append(a)
            s = (A @ a.reshape(n_tasks, -1)).reshape(a.shape)
            stitched.append(s)
        return acts, stitched

    def _predict(self, x, train, rng):
        _, stitched = self._trunk_forward(x)
        act = ACTIVATIONS[self.activation][0]
        return {
            head.name: _head_forward(stitched[head.attach][k], views, act)[0]
            for k, (head, views) in enumerate(zip(self._heads, self._head_views))
        }

    def _run(self, x, prepared, rng, train, grads):
        act = ACTIVATIONS[self.activation][0]
        deriv = DERIVATIVES[self.activation]
        acts, stitched = self._trunk_forward(x)
        n = x.shape[0]
        n_tasks = len(self.tasks)
        losses = np.empty(n_tasks)
        preds = {}
        # D[k, t] = d loss_k / d s_l[t]: every task's gradient against every column
        D = np.zeros((n_tasks, n_tasks, n, self.trunk_widths[-1]), dtype=self.dtype)
        late = []
        top = len(self._trunk) - 1
        for k, (head, views) in enumerate(zip(self._heads, self._head_views)):
            pred, inputs = _head_forward(stitched[head.attach][k], views, act)
            preds[head.name] = pred
            y, w = prepared[k]
            losses[k], g = head.kernel(pred, y, w)
            if head.attach == top:
                _head_backward(g, inputs, views, head.dense, grads[k], deriv, dh_out=D[k, k])
            else:
                late.append((head.attach, k, _head_backward(g, inputs, views, head.dense, grads[k], deriv)))

        for l in range(top, -1, -1):
            for layer, k, dh in late:
                if layer == l:
                    D[k, k] += dh
            W, _, A = self._trunk[l]
            w_off, i, o, b_off, s_off = self._layers[l]
            a = acts[l]
            a2 = a.reshape(n_tasks, -1)
            D2 = D.reshape(n_tasks, n_tasks, -1)
            # stitch s = A a: dA_k = D_k a^T, da_k = A^T D_k
            np.matmul(D2, a2.T, out=grads[:, s_off : s_off + n_tasks * n_tasks].reshape(n_tasks, n_tasks, n_tasks))
            Da = np.matmul(A.T, D2).reshape(D.shape)
            d = deriv(a)
            if d is not None:
                Da *= d
            # column t: z[t] = prev[t] @ W[t] + b[t]
            prev = x if l == 0 else stitched[l - 1]
            prev_t = prev.T if l == 0 else prev.transpose(0, 2, 1)
            np.matmul(prev_t, Da, out=grads[:, w_off : w_off + n_tasks * i * o].reshape(n_tasks, n_tasks, i, o))
            np.matmul(_ones(n, self.dtype), Da, out=grads[:, b_off : b_off + n_tasks * o].reshape(n_tasks, n_tasks, o))
            if l > 0:
                D = np.matmul(Da, W.transpose(0, 2, 1))
        return losses, preds

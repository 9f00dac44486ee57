"""The Gradient Conflict Arena: two-task objectives over a 2-D parameter vector.

Every objective has ``.losses(theta) -> (2,)``, ``.grads(theta) -> (2, 2)`` (analytic; row k = dL_k/dtheta),
``.grid(xs, ys) -> (2, len(ys), len(xs))`` for contour plots, ``.bounds``, ``.starts``, ``.name`` and
``.pareto_set(n) -> (n, 2)`` (row 0 = task 1's optimum, row n-1 = task 2's optimum).
:func:`trajectory` runs gradient descent where each step hands the (2, 2) gradient matrix -- the same (T, P)
matrix a network produces -- to a gradient combiner from :mod:`mtl_core.combine`; :class:`TrajectoryRun` is the
same descent advanced a few steps at a time. :func:`pareto_distance` measures how far a point ended from the
Pareto set, and :func:`iso_segments`, :func:`iso_levels` and :func:`rank_values` turn a gridded loss into
contour lines and heat-map shades.
"""

from __future__ import annotations

import numpy as np

from . import _checks
from .optim import SGD, Adam


def _theta(theta) -> np.ndarray:
    arr = _checks.finite_array("theta", theta, ndim=1, dtype=np.float64)
    if arr.shape != (2,):
        raise ValueError(f"theta must have shape (2,), got {arr.shape}")
    return arr


def _axis(name: str, values) -> np.ndarray:
    arr = _checks.finite_array(name, values, ndim=1, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"{name} must not be empty")
    return arr


class _Objective:
    name = "objective"
    bounds: tuple[tuple[float, float], tuple[float, float]]
    starts: np.ndarray

    def losses(self, theta) -> np.ndarray:
        """Both task losses at one point. theta (2,) -> (2,)."""
        t = _theta(theta)
        return self._losses(t[0], t[1]).astype(np.float64)

    def grads(self, theta) -> np.ndarray:
        """Analytic gradients. theta (2,) -> (2, 2), row k = dL_k/dtheta."""
        t = _theta(theta)
        return np.asarray(self._grads(t[0], t[1]), dtype=np.float64)

    def grid(self, xs, ys) -> np.ndarray:
        """Both losses on the grid ``xs`` x ``ys``. xs (nx,), ys (ny,) -> (2, ny, nx), [k, i, j] = L_k(xs[j], ys[i])."""
        x, y = np.meshgrid(_axis("xs", xs), _axis("ys", ys))  # (ny, nx), the contour-plot layout
        return np.asarray(self._losses(x, y), dtype=np.float64)

    def __repr__(self):
        return f"{type(self).__name__}()"


# ---------------------------------------------------------------------------------------------------------------
# CAGrad toy (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning"), also used by Nash-MTL
# ---------------------------------------------------------------------------------------------------------------

LOWER = 5e-6  # the paper's floor on |.| inside the log: keeps the log finite at the valleys' kinks


def _sech2(z):
    return 1.0 - np.tanh(z) ** 2


class CAGradToy(_Objective):
    """The two-task toy problem of the CAGrad paper (the same function as the paper's toy script).

    For y > 0 each loss is a log-valley ``log(max(|u_k|, LOWER)) + 6`` gated by ``c1 = max(tanh(y/2), 0)``; for
    y < 0 it is a shallow quadratic bowl gated by ``c2 = max(tanh(-y/2), 0)``::

        u1 = 0.5 (-x - 7) - tanh(-y)          q1 = ((7 - x)^2 + 0.1 (y + 8)^2) / 10 - 20
        u2 = 0.5 (-x + 3) + tanh(-y) + 2      q2 = ((x + 7)^2 + 0.1 (y + 8)^2) / 10 - 20
        L_k = c1 (log(max(|u_k|, LOWER)) + 6) + c2 q_k

    Task 1's optimum is near (7, -8.36), task 2's near (-7, -8.36); the Pareto set is a slightly bowed curve
    between them. Gradients are exact; where the clamp is active the log term's (sub)gradient is taken as 0, and at
    y == 0 the one-sided gates' gradients are taken as 0 (both kinks are sets of measure zero).
    """

    name = "cagrad_toy"
    bounds = ((-10.0, 10.0), (-10.0, 10.0))

    def __init__(self):
        # the paper's three initial points
        self.starts = np.array([[-8.5, 7.5], [-8.5, -5.0], [9.0, 9.0]])

    @staticmethod
    def _parts(x, y):
        u1 = 0.5 * (-x - 7.0) - np.tanh(-y)
        u2 = 0.5 * (-x + 3.0) + np.tanh(-y) + 2.0
        c1 = np.maximum(np.tanh(0.5 * y), 0.0)
        c2 = np.maximum(np.tanh(-0.5 * y), 0.0)
        q1 = ((7.0 - x) ** 2 + 0.1 * (y + 8.0) ** 2) / 10.0 - 20.0
        q2 = ((x + 7.0) ** 2 + 0.1 * (y + 8.0) ** 2) / 10.0 - 20.0
        return u1, u2, c1, c2, q1, q2

    def _losses(self, x, y):
        u1, u2, c1, c2, q1, q2 = self._parts(x, y)
        v1 = np.log(np.maximum(np.abs(u1), LOWER)) + 6.0
        v2 = np.log(np.maximum(np.abs(u2), LOWER)) + 6.0
        return np.stack([c1 * v1 + c2 * q1, c1 * v2 + c2 * q2])

    def _grads(self, x, y):
        u1, u2, c1, c2, q1, q2 = self._parts(x, y)
        v1 = np.log(max(abs(u1), LOWER)) + 6.0
        v2 = np.log(max(abs(u2), LOWER)) + 6.0
        # d log|u| / du = 1/u while |u| is above the floor, 0 where the clamp holds it constant
        dv1 = 1.0 / u1 if abs(u1) > LOWER else 0.0
        dv2 = 1.0 / u2 if abs(u2) > LOWER else 0.0
        s = _sech2(y)  # d tanh(y) / dy
        du1 = (-0.5, s)  # u1 = -x/2 - 7/2 + tanh(y)
        du2 = (-0.5, -s)  # u2 = -x/2 + 7/2 - tanh(y)
        dc1 = 0.5 * _sech2(0.5 * y) if y > 0 else 0.0
        dc2 = -0.5 * _sech2(0.5 * y) if y < 0 else 0.0
        dq_dy = 0.02 * (y + 8.0)
        g1 = (c1 * dv1 * du1[0] + c2 * (x - 7.0) / 5.0, c1 * dv1 * du1[1] + dc1 * v1 + c2 * dq_dy + dc2 * q1)
        g2 = (c1 * dv2 * du2[0] + c2 * (x + 7.0) / 5.0, c1 * dv2 * du2[1] + dc1 * v2 + c2 * dq_dy + dc2 * q2)
        return [g1, g2]

    def pareto_set(self, n: int = 50) -> np.ndarray:
        """Pareto-optimal points, from task 1's optimum (w = 1) to task 2's (w = 0).

        For y < 0 the weighted loss w L1 + (1 - w) L2 is ``c2(y) (w q1 + (1 - w) q2)``, minimised in x at
        x = 14 w - 7, which leaves ``h(y) = c2(y) (19.6 w (1 - w) + 0.01 (y + 8)^2 - 20)`` to minimise in y; we
        solve h'(y) = 0 by bisection (h' < 0 at y = -12, > 0 at y = -4 for every w).

        Returns
        -------
        (n, 2) array
        """
        n = _checks.integer("n", n, low=2)
        w = np.linspace(1.0, 0.0, n)
        k = 19.6 * w * (1.0 - w)

        def dh(y):
            c2 = np.tanh(-0.5 * y)
            return -0.5 * _sech2(0.5 * y) * (k + 0.01 * (y + 8.0) ** 2 - 20.0) + c2 * 0.02 * (y + 8.0)

        lo, hi = np.full(n, -12.0), np.full(n, -4.0)
        for _ in range(80):  # 8 / 2**80: far below float precision
            mid = 0.5 * (lo + hi)
            neg = dh(mid) < 0
            lo = np.where(neg, mid, lo)
            hi = np.where(neg, hi, mid)
        return np.column_stack([14.0 * w - 7.0, 0.5 * (lo + hi)])


# ---------------------------------------------------------------------------------------------------------------
# Rotated quadratics: the conflict angle is the knob
# ---------------------------------------------------------------------------------------------------------------


class RotatedQuadratics(_Objective):
    """Two convex quadratics whose gradients meet at ``angle_deg`` at the reference point (the origin).

    ``L_k(theta) = 0.5 s_k (theta - m_k)^T A (theta - m_k)`` with A = diag(1, condition), s_1 = 1, s_2 = scale.
    The minima are ``m_k = radius * A^{-1} u_k`` with unit vectors u_k at ``direction_deg +- angle_deg / 2``,
    so at the origin ``grad L_k = -s_k radius u_k``: the two gradients make exactly ``angle_deg`` there
    (0 = aligned, 90 = orthogonal, 180 = opposite), whatever the condition number or scale.
    Because both share A, the Pareto set is exactly the segment between the minima.

    Parameters
    ----------
    angle_deg : float in [0, 180]
    radius : float > 0
        Gradient norm of task 1 at the origin (and the minima's distance when condition == 1).
    condition : float >= 1
        Curvature ratio along y vs x (1 = round bowls).
    scale : float > 0
        Multiplies task 2's loss: a knob for gradient-magnitude imbalance.
    direction_deg : float
        Direction from the origin to the midpoint of the minima.
    """

    name = "rotated_quadratics"

    def __init__(
        self,
        angle_deg: float = 90.0,
        *,
        radius: float = 3.0,
        condition: float = 1.0,
        scale: float = 1.0,
        direction_deg: float = 90.0,
    ):
        self.angle_deg = _checks.real("angle_deg", angle_deg, low=0.0, high=180.0)
        self.radius = _checks.real("radius", radius, low=0.0, low_open=True)
        self.condition = _checks.real("condition", condition, low=1.0)
        self.scale = _checks.real("scale", scale, low=0.0, low_open=True)
        self.direction_deg = _checks.real("direction_deg", direction_deg)
        self.reference = np.zeros(2)
        self._a = np.array([1.0, self.condition])  # diagonal of A
        self._s = np.array([1.0, self.scale])
        half = np.deg2rad(self.angle_deg) / 2.0
        phi = np.deg2rad(self.direction_deg)
        u = np.array(
            [[np.cos(phi + half), np.sin(phi + half)], [np.cos(phi - half), np.sin(phi - half)]]
        )  # (2 tasks, 2 coords)
        self.minima = self.radius * u / self._a  # (2, 2), row k = m_k
        r = 1.6 * self.radius
        self.bounds = ((-r, r), (-r, r))
        # the reference point itself plus two points on the far side of it
        back, side = -0.9 * r * np.array([np.cos(phi), np.sin(phi)]), 0.5 * r * np.array([np.sin(phi), -np.cos(phi)])
        self.starts = np.array([[0.0, 0.0], back + side, back - side])

    def _losses(self, x, y):
        out = []
        for k in range(2):
            dx, dy = x - self.minima[k, 0], y - self.minima[k, 1]
            out.append(0.5 * self._s[k] * (self._a[0] * dx**2 + self._a[1] * dy**2))
        return np.stack(out)

    def _grads(self, x, y):
        d = np.array([x, y]) - self.minima  # (2 tasks, 2 coords)
        return self._s[:, None] * self._a[None, :] * d

    def pareto_set(self, n: int = 50) -> np.ndarray:
        """The segment from task 1's minimum to task 2's (exact: w A s_1 (theta - m_1) + ... = 0 is linear).

        Returns
        -------
        (n, 2) array
        """
        n = _checks.integer("n", n, low=2)
        t = np.linspace(0.0, 1.0, n)[:, None]
        return (1.0 - t) * self.minima[0] + t * self.minima[1]

    def __repr__(self):
        return (
            f"RotatedQuadratics(angle_deg={self.angle_deg}, radius={self.radius}, condition={self.condition}, "
            f"scale={self.scale}, direction_deg={self.direction_deg})"
        )


OBJECTIVES = {"cagrad_toy": CAGradToy, "rotated_quadratics": RotatedQuadratics}


# ---------------------------------------------------------------------------------------------------------------
# Trajectories, and how far they end from the Pareto set
# ---------------------------------------------------------------------------------------------------------------


def _resolve_combiner(combiner):
    if isinstance(combiner, str):
        from .combine import make_combiner  # lazy: the arena works without the combine package loaded

        return make_combiner(combiner)
    if not callable(getattr(combiner, "combine", None)):
        raise ValueError(
            f"combiner must be a registered name or an object with .combine(G, rng=...), got {type(combiner).__name__}"
        )
    return combiner


class TrajectoryRun:
    """Descent on a two-task objective that can be advanced a few steps at a time.

    Each step: ``G = objective.grads(theta)`` (2, 2) -> ``d = combiner.combine(G, rng=rng).direction`` (2,) ->
    ``theta -= lr * d`` (``optimizer="gd"``, :class:`mtl_core.optim.SGD`), or an Adam step on ``d``
    (``optimizer="adam"``, :class:`mtl_core.optim.Adam`, as in the CAGrad paper's toy runs; useful on the CAGrad
    toy whose log valleys have very steep walls). :func:`trajectory` is one run advanced to its end; a page
    advances it a chunk per tick to draw the path while it grows.

    Parameters
    ----------
    objective : CAGradToy, RotatedQuadratics or any object with ``.grads(theta) -> (2, 2)``
    start : (2,) array-like
    combiner : str or object
        A registered name resolved with ``mtl_core.combine.make_combiner(name)``, or an object with
        ``.combine(G, *, rng)`` returning something with ``.direction`` (P,).
    lr : float > 0
    steps : int >= 0
        Length of the whole run.
    rng : np.random.Generator
        Passed to every ``combine`` call (PCGrad draws its projection order from it).
    optimizer : {"gd", "adam"}
    betas, eps
        Adam's moment decay rates and denominator offset.

    Attributes
    ----------
    points : list of (2,) arrays
        The finite points so far, ``start`` first.
    t : int
        Steps taken, the one that turned non-finite included.
    diverged : bool
        True once a step met non-finite gradients, a non-finite direction or a non-finite point; the run then
        stops there.
    """

    def __init__(
        self,
        objective,
        start,
        combiner,
        *,
        lr: float,
        steps: int,
        rng: np.random.Generator,
        optimizer: str = "gd",
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
    ):
        theta = _checks.finite_array("start", start, ndim=1, dtype=np.float64).copy()
        if theta.shape != (2,):
            raise ValueError(f"start must have shape (2,), got {theta.shape}")
        if not callable(getattr(objective, "grads", None)):
            raise ValueError(f"objective must have .grads(theta), got {type(objective).__name__}")
        self.objective = objective
        self.combiner = _resolve_combiner(combiner)
        self.steps = _checks.integer("steps", steps, low=0)
        self.rng = _checks.generator("rng", rng)
        if optimizer not in ("gd", "adam"):
            raise ValueError(f"optimizer must be 'gd' or 'adam', got {optimizer!r}")
        self.optimizer = optimizer
        self._opt = Adam(lr=lr, betas=betas, eps=eps) if optimizer == "adam" else SGD(lr)
        self.theta = theta
        self.points = [theta.copy()]
        self.t = 0
        self.diverged = False

    @property
    def lr(self) -> float:
        return self._opt.lr

    @property
    def done(self) -> bool:
        return self.diverged or self.t >= self.steps

    def advance(self, n: int) -> None:
        """Take up to ``n`` more steps (fewer at the end of the run or when a step turns non-finite)."""
        n = _checks.integer("n", n, low=0)
        for _ in range(min(n, self.steps - self.t)):
            if self.diverged:
                return
            self.t += 1
            self.diverged = not self._step()

    def _step(self) -> bool:
        """One step from ``theta``; False (and theta unchanged) if anything in it is not finite."""
        g = np.asarray(self.objective.grads(self.theta), dtype=np.float64)
        if not np.all(np.isfinite(g)):
            return False
        with np.errstate(over="ignore", invalid="ignore"):  # a non-finite direction is caught just below
            d = np.asarray(self.combiner.combine(g, rng=self.rng).direction, dtype=np.float64).reshape(-1)
        if d.shape != (2,):
            raise ValueError(f"combiner returned a direction of shape {d.shape}, expected (2,)")
        if not np.all(np.isfinite(d)):
            return False
        new = self.theta.copy()
        with np.errstate(over="ignore", invalid="ignore"):
            self._opt.step(new, d)
        if not np.all(np.isfinite(new)):
            return False
        self.theta = new
        self.points.append(new.copy())
        return True

    def path(self) -> np.ndarray:
        """(n_points, 2) points so far, the start first."""
        return np.array(self.points)


def trajectory(
    objective,
    start,
    combiner,
    *,
    lr: float = 0.05,
    steps: int = 200,
    rng: np.random.Generator,
    optimizer: str = "gd",
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> np.ndarray:
    """Descend ``objective`` from ``start`` using ``combiner`` to merge the two task gradients at every step.

    The whole :class:`TrajectoryRun` at once (same parameters).

    Returns
    -------
    (steps + 1, 2) array
        Row 0 is ``start``. If a step meets non-finite gradients, a non-finite direction or a non-finite point,
        the run stops there and the array holds only the finite points so far (fewer than steps + 1 rows means
        "diverged").
    """
    run = TrajectoryRun(
        objective, start, combiner, lr=lr, steps=steps, rng=rng, optimizer=optimizer, betas=betas, eps=eps
    )
    run.advance(run.steps)
    return run.path()


def pareto_distance(points, pareto) -> np.ndarray:
    """Euclidean distance of each point to the polyline through the Pareto-set samples.

    Parameters
    ----------
    points : (M, 2) array-like
    pareto : (K, 2) array-like, K >= 2
        Consecutive rows are joined by straight segments (``objective.pareto_set(K)``).

    Returns
    -------
    (M,) array
    """
    p = _checks.finite_array("points", points, ndim=2, dtype=np.float64)
    poly = _checks.finite_array("pareto", pareto, ndim=2, dtype=np.float64)
    if p.shape[1] != 2:
        raise ValueError(f"points must have shape (M, 2), got {p.shape}")
    if poly.shape[1] != 2 or poly.shape[0] < 2:
        raise ValueError(f"pareto must have shape (K, 2) with K >= 2, got {poly.shape}")
    a, b = poly[:-1], poly[1:]  # (K-1, 2) segment ends
    ab = b - a
    ab2 = np.maximum(np.einsum("ij,ij->i", ab, ab), 1e-300)
    ap = p[:, None, :] - a[None]  # (M, K-1, 2)
    t = np.clip(np.einsum("mki,ki->mk", ap, ab) / ab2, 0.0, 1.0)
    closest = a[None] + t[..., None] * ab[None]
    return np.min(np.linalg.norm(p[:, None, :] - closest, axis=2), axis=1)


# ---------------------------------------------------------------------------------------------------------------
# Maps: contour lines and heat-map shades of a gridded loss (a small marching squares: no contourpy, which would
# cost the browser its load time)
# ---------------------------------------------------------------------------------------------------------------


def iso_segments(z, xs, ys, levels) -> tuple[np.ndarray, ...]:
    """Line segments of the level sets of a gridded function (marching squares with linear interpolation).

    Parameters
    ----------
    z : (ny, nx) array-like, ``z[i, j] = f(xs[j], ys[i])`` (the layout of ``objective.grid``), ny, nx >= 2
    xs : (nx,) increasing
    ys : (ny,) increasing
    levels : (L,) sequence of float

    Returns
    -------
    x0, y0, x1, y1 : (S,) arrays, one segment per row
    level : (S,) int array, index into ``levels`` of each segment
    """
    z, xs, ys, levels = _grid_args(z, xs, ys, levels)
    parts = []
    with np.errstate(invalid="ignore", divide="ignore"):
        for k, lev in enumerate(levels):
            parts.extend(_level_segments(z, xs, ys, lev, k))
    if not parts:
        empty = np.zeros(0)
        return empty, empty, empty, empty, np.zeros(0, dtype=int)
    return tuple(np.concatenate([p[n] for p in parts]) for n in range(5))


def _grid_args(z, xs, ys, levels):
    z = _checks.finite_array("z", z, ndim=2, dtype=np.float64)
    xs = _checks.finite_array("xs", xs, ndim=1, dtype=np.float64)
    ys = _checks.finite_array("ys", ys, ndim=1, dtype=np.float64)
    levels = _checks.finite_array("levels", levels, ndim=1, dtype=np.float64)
    if z.shape[0] < 2 or z.shape[1] < 2:
        raise ValueError(f"z must be at least 2 x 2, got shape {z.shape}")
    if xs.shape != (z.shape[1],):
        raise ValueError(f"xs must have shape ({z.shape[1]},) to match z {z.shape}, got {xs.shape}")
    if ys.shape != (z.shape[0],):
        raise ValueError(f"ys must have shape ({z.shape[0]},) to match z {z.shape}, got {ys.shape}")
    return z, xs, ys, levels


def _level_segments(z, xs, ys, lev: float, k: int) -> list[tuple[np.ndarray, ...]]:
    """The segments of one level ``lev`` (index ``k``) as (x0, y0, x1, y1, level) tuples."""
    low = z < lev
    sa, sb, sc, sd = low[:-1, :-1], low[:-1, 1:], low[1:, 1:], low[1:, :-1]  # corners bl, br, tr, tl
    i, j = np.nonzero((sa != sb) | (sb != sc) | (sd != sc) | (sa != sd))  # only cells the line crosses
    if i.size == 0:
        return []
    a, b, c, d = z[i, j], z[i, j + 1], z[i + 1, j + 1], z[i + 1, j]
    la, lb, lc, ld = a < lev, b < lev, c < lev, d < lev
    x0, x1, y0, y1 = xs[j], xs[j + 1], ys[i], ys[i + 1]
    # edges in the order bottom (a-b), right (b-c), top (d-c), left (a-d): crossing flag and point
    cross = np.stack([la != lb, lb != lc, ld != lc, la != ld])  # (4, S)
    ta, tb, tc, td = (lev - a) / (b - a), (lev - b) / (c - b), (lev - d) / (c - d), (lev - a) / (d - a)
    px = np.stack([x0 + ta * (x1 - x0), x1, x0 + tc * (x1 - x0), x0])
    py = np.stack([y0, y0 + tb * (y1 - y0), y1, y0 + td * (y1 - y0)])
    count = cross.sum(axis=0)
    parts = []
    # two crossings: one segment between them
    two = np.flatnonzero(count == 2)
    if two.size:
        flags = cross[:, two]
        first = np.argmax(flags, axis=0)
        last = 3 - np.argmax(flags[::-1], axis=0)
        parts.append((px[first, two], py[first, two], px[last, two], py[last, two], np.full(two.size, k)))
    # four crossings (a saddle): the centre value decides which corners are cut off
    four = np.flatnonzero(count == 4)
    if four.size:
        centre_low = (a[four] + b[four] + c[four] + d[four]) / 4.0 < lev
        joined = centre_low == la[four]  # a and c connect through the centre: cut off b and d
        # joined: segments bottom-right (cuts off b) and top-left (cuts off d);
        # else: bottom-left (cuts off a) and right-top (cuts off c). Edge ids as in ``cross``.
        for e1, e2 in (
            (np.zeros(four.size, dtype=int), np.where(joined, 1, 3)),
            (np.where(joined, 2, 1), np.where(joined, 3, 2)),
        ):
            parts.append((px[e1, four], py[e1, four], px[e2, four], py[e2, four], np.full(four.size, k)))
    return parts


def iso_levels(values, n: int) -> np.ndarray:
    """``n`` contour levels at evenly spaced quantiles of ``values``, so the lines spread over the whole map.

    Parameters
    ----------
    values : array-like of any shape (a gridded loss)
    n : int >= 1

    Returns
    -------
    (L,) increasing array, L <= n (equal quantiles are merged)
    """
    values = _checks.finite_array("values", values, dtype=np.float64)
    n = _checks.integer("n", n, low=1)
    if values.size == 0:
        raise ValueError("values must not be empty")
    return np.unique(np.quantile(values, np.linspace(0.0, 1.0, n + 2)[1:-1]))


def rank_values(values) -> np.ndarray:
    """Rank of each value scaled to [0, 1] (histogram equalisation), for heat-map shades.

    The two surfaces span very different ranges (the CAGrad toy has log valleys next to a wide quadratic bowl),
    so a linear or log colour scale leaves most of the square one colour; by rank every shade covers the same
    area. The ordering, which is what the eye reads, is unchanged.

    Parameters
    ----------
    values : array-like of any shape

    Returns
    -------
    array of the same shape; the smallest value gives 0, the largest 1 (ties in their order of appearance)
    """
    arr = np.asarray(values, dtype=np.float64)
    flat = arr.ravel()
    ranks = np.empty(flat.size)
    ranks[np.argsort(flat, kind="stable")] = np.arange(flat.size)
    return (ranks / max(flat.size - 1, 1)).reshape(arr.shape)

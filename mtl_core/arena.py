"""The Gradient Conflict Arena: two-task objectives over a 2-D parameter vector.

Every objective has ``.losses(theta) -> (2,)``, ``.grads(theta) -> (2, 2)`` (analytic; row k = dL_k/dtheta),
``.grid(xs, ys) -> (2, len(ys), len(xs))`` for contour plots, ``.bounds``, ``.starts``, ``.name`` and
``.pareto_set(n) -> (n, 2)`` (row 0 = task 1's optimum, row n-1 = task 2's optimum).
:func:`trajectory` runs gradient descent where each step hands the (2, 2) gradient matrix -- the same (T, P)
matrix a network produces -- to a gradient combiner from :mod:`mtl_core.combine`.
"""
from __future__ import annotations

import numpy as np

from . import _checks


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
        x, y = np.meshgrid(_axis("xs", xs), _axis("ys", ys))   # (ny, nx), the contour-plot layout
        return np.asarray(self._losses(x, y), dtype=np.float64)

    def __repr__(self):
        return f"{type(self).__name__}()"


# ---------------------------------------------------------------------------------------------------------------
# CAGrad toy (Liu et al. 2021, "Conflict-Averse Gradient Descent for Multi-task Learning"), also used by Nash-MTL
# ---------------------------------------------------------------------------------------------------------------

LOWER = 5e-6   # the paper's floor on |.| inside the log: keeps the log finite at the valleys' kinks


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
        s = _sech2(y)                                  # d tanh(y) / dy
        du1 = (-0.5, s)                                # u1 = -x/2 - 7/2 + tanh(y)
        du2 = (-0.5, -s)                               # u2 = -x/2 + 7/2 - tanh(y)
        dc1 = 0.5 * _sech2(0.5 * y) if y > 0 else 0.0
        dc2 = -0.5 * _sech2(0.5 * y) if y < 0 else 0.0
        dq_dy = 0.02 * (y + 8.0)
        g1 = (c1 * dv1 * du1[0] + c2 * (x - 7.0) / 5.0,
              c1 * dv1 * du1[1] + dc1 * v1 + c2 * dq_dy + dc2 * q1)
        g2 = (c1 * dv2 * du2[0] + c2 * (x + 7.0) / 5.0,
              c1 * dv2 * du2[1] + dc1 * v2 + c2 * dq_dy + dc2 * q2)
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
        for _ in range(80):                           # 8 / 2**80: far below float precision
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

    def __init__(self, angle_deg: float = 90.0, *, radius: float = 3.0, condition: float = 1.0,
                 scale: float = 1.0, direction_deg: float = 90.0):
        self.angle_deg = _checks.real("angle_deg", angle_deg, low=0.0, high=180.0)
        self.radius = _checks.real("radius", radius, low=0.0, low_open=True)
        self.condition = _checks.real("condition", condition, low=1.0)
        self.scale = _checks.real("scale", scale, low=0.0, low_open=True)
        self.direction_deg = _checks.real("direction_deg", direction_deg)
        self.reference = np.zeros(2)
        self._a = np.array([1.0, self.condition])                 # diagonal of A
        self._s = np.array([1.0, self.scale])
        half = np.deg2rad(self.angle_deg) / 2.0
        phi = np.deg2rad(self.direction_deg)
        u = np.array([[np.cos(phi + half), np.sin(phi + half)],
                      [np.cos(phi - half), np.sin(phi - half)]])  # (2 tasks, 2 coords)
        self.minima = self.radius * u / self._a                    # (2, 2), row k = m_k
        r = 1.6 * self.radius
        self.bounds = ((-r, r), (-r, r))
        # the reference point itself plus two points on the far side of it
        self.starts = np.array([[0.0, 0.0],
                                [-0.9 * r * np.cos(phi) + 0.5 * r * np.sin(phi), -0.9 * r * np.sin(phi) - 0.5 * r * np.cos(phi)],
                                [-0.9 * r * np.cos(phi) - 0.5 * r * np.sin(phi), -0.9 * r * np.sin(phi) + 0.5 * r * np.cos(phi)]])

    def _losses(self, x, y):
        out = []
        for k in range(2):
            dx, dy = x - self.minima[k, 0], y - self.minima[k, 1]
            out.append(0.5 * self._s[k] * (self._a[0] * dx ** 2 + self._a[1] * dy ** 2))
        return np.stack(out)

    def _grads(self, x, y):
        d = np.array([x, y]) - self.minima                          # (2 tasks, 2 coords)
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
        return (f"RotatedQuadratics(angle_deg={self.angle_deg}, radius={self.radius}, condition={self.condition}, "
                f"scale={self.scale}, direction_deg={self.direction_deg})")


OBJECTIVES = {"cagrad_toy": CAGradToy, "rotated_quadratics": RotatedQuadratics}


# ---------------------------------------------------------------------------------------------------------------
# Trajectories
# ---------------------------------------------------------------------------------------------------------------

def _resolve_combiner(combiner):
    if isinstance(combiner, str):
        from .combine import make_combiner   # lazy: the arena works without the combine package loaded
        return make_combiner(combiner)
    if not callable(getattr(combiner, "combine", None)):
        raise ValueError(f"combiner must be a registered name or an object with .combine(G, rng=...), "
                         f"got {type(combiner).__name__}")
    return combiner


def trajectory(objective, start, combiner, *, lr: float = 0.05, steps: int = 200, rng: np.random.Generator,
               optimizer: str = "gd", betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> np.ndarray:
    """Descend ``objective`` from ``start`` using ``combiner`` to merge the two task gradients at every step.

    Each step: ``G = objective.grads(theta)`` (2, 2) -> ``d = combiner.combine(G, rng=rng).direction`` (2,) ->
    ``theta -= lr * d`` (``optimizer="gd"``), or an Adam step on ``d`` (``optimizer="adam"``, as in the CAGrad
    paper's toy runs; useful on the CAGrad toy whose log valleys have very steep walls).

    Parameters
    ----------
    objective : CAGradToy, RotatedQuadratics or any object with ``.grads(theta) -> (2, 2)``
    start : (2,) array-like
    combiner : str or object
        A registered name resolved with ``mtl_core.combine.make_combiner(name)``, or an object with
        ``.combine(G, *, rng)`` returning something with ``.direction`` (P,).
    lr : float > 0
    steps : int >= 0
    rng : np.random.Generator
        Passed to every ``combine`` call (PCGrad draws its projection order from it).

    Returns
    -------
    (steps + 1, 2) array
        Row 0 is ``start``. If a step meets non-finite gradients, a non-finite direction or a non-finite point,
        the run stops there and the array holds only the finite points so far (fewer than steps + 1 rows means
        "diverged").
    """
    theta = _checks.finite_array("start", start, ndim=1, dtype=np.float64).copy()
    if theta.shape != (2,):
        raise ValueError(f"start must have shape (2,), got {theta.shape}")
    if not callable(getattr(objective, "grads", None)):
        raise ValueError(f"objective must have .grads(theta), got {type(objective).__name__}")
    comb = _resolve_combiner(combiner)
    lr = _checks.real("lr", lr, low=0.0, low_open=True)
    steps = _checks.integer("steps", steps, low=0)
    rng = _checks.generator("rng", rng)
    if optimizer not in ("gd", "adam"):
        raise ValueError(f"optimizer must be 'gd' or 'adam', got {optimizer!r}")
    b1 = _checks.real("betas[0]", betas[0], low=0.0, high=1.0, high_open=True)
    b2 = _checks.real("betas[1]", betas[1], low=0.0, high=1.0, high_open=True)
    eps = _checks.real("eps", eps, low=0.0, low_open=True)

    points = [theta.copy()]
    m = np.zeros(2)
    v = np.zeros(2)
    for t in range(1, steps + 1):
        g = np.asarray(objective.grads(theta), dtype=np.float64)
        if not np.all(np.isfinite(g)):
            break
        d = np.asarray(comb.combine(g, rng=rng).direction, dtype=np.float64).reshape(-1)
        if d.shape != (2,):
            raise ValueError(f"combiner returned a direction of shape {d.shape}, expected (2,)")
        if not np.all(np.isfinite(d)):
            break
        if optimizer == "adam":
            m = b1 * m + (1.0 - b1) * d
            v = b2 * v + (1.0 - b2) * d * d
            step = (m / (1.0 - b1 ** t)) / (np.sqrt(v / (1.0 - b2 ** t)) + eps)
        else:
            step = d
        new = theta - lr * step
        if not np.all(np.isfinite(new)):
            break
        theta = new
        points.append(theta.copy())
    return np.array(points)

"""GradNorm (Chen et al. 2018): balance the tasks' gradient magnitudes at the last shared layer.

With ``g_k`` the UNWEIGHTED gradient of task k's loss w.r.t. the last shared layer's weights W:

    G_k = w_k * ||g_k||                    (norm of the weighted gradient)
    r_k = (L_k / L_k(0)) / mean_j(L_j / L_j(0))   (relative inverse training rate: > 1 = lagging behind)

(L_k(0) = the first positive loss of task k; ratio 1 until there is one)
    target_k = mean(G) * r_k ** alpha      (held constant, as in the paper)
    L_grad = sum_k |G_k - target_k|

The weights take one gradient step on L_grad, ``d L_grad / d w_k = sign(G_k - target_k) * ||g_k||``, then are
clipped positive and renormalised to sum to T. A task that trains slower than average gets its gradient pushed
up; ``alpha`` sets how hard (0 = equalise gradient norms only).

The step is made scale-free, so that ``lr`` means the same for gradient norms of 1e-3 and of 1e3:

    w_k <- w_k - sign(G_k - target_k) * min(lr * ||g_k|| / mean_j ||g_j||,  |G_k - target_k| / ||g_k||)

The first term is the plain gradient step divided by the mean norm (a plain step of lr = 0.025 moves a weight by
~0.25 when the norms are ~10, more than its balanced value, and the weights then bounce between the floor and
their maximum forever). The second is the step that puts task k's term of L_grad exactly at 0 (its target held
constant): a sign-gradient step larger than that only overshoots, and without the cap the weights would keep
oscillating by ~lr around the balance instead of converging to it.
"""

from __future__ import annotations

import numpy as np

from .._checks import real
from .base import Weighting, register_weighting, relative_to_initial, update_initial


@register_weighting
class GradNorm(Weighting):
    """GradNorm loss weighting.

    Parameters
    ----------
    n_tasks : int
        T.
    alpha : float
        Restoring-force strength (>= 0), paper default 1.5.
    lr : float
        Learning rate of the weights (> 0), relative: a step moves w_k by at most ``lr * ||g_k|| / mean ||g||``.
    min_weight : float
        Floor applied before renormalising, keeps every weight positive (> 0).
    """

    name = "gradnorm"
    needs_grads = True

    def __init__(self, n_tasks: int, *, alpha: float = 1.5, lr: float = 0.025, min_weight: float = 1e-3):
        super().__init__(n_tasks)
        self.alpha = real("alpha", alpha, low=0.0)
        self.lr = real("lr", lr, low=0.0, low_open=True)
        self.min_weight = real("min_weight", min_weight, low=0.0, low_open=True)
        self.reset()

    def reset(self):
        super().reset()
        self.w = np.ones(self.n_tasks)
        self.initial_losses = None
        self.last = {}

    def _weights(self, losses, step, grads_last, metrics):
        self.initial_losses = update_initial(self.initial_losses, losses)
        weights = self.w.copy()  # used for THIS step; the update below is for the next one

        g_norm = np.linalg.norm(grads_last, axis=1)
        G = self.w * g_norm
        ratio = relative_to_initial(losses, self.initial_losses)
        mean_ratio = ratio.mean()
        r = ratio / mean_ratio if mean_ratio > 0 else np.ones(self.n_tasks)
        target = G.mean() * r**self.alpha
        mean_norm = g_norm.mean()
        if mean_norm > 0:
            # scale-free step (see the module docstring): lr relative to the mean norm, capped at the target
            to_target = np.abs(G - target) / np.where(g_norm > 0, g_norm, 1.0)
            step = np.minimum(self.lr * g_norm / mean_norm, to_target)
            w = np.maximum(self.w - np.sign(G - target) * step, self.min_weight)
        else:
            w = self.w.copy()  # no gradient at all: nothing to balance
        self.w = w * (self.n_tasks / w.sum())
        self.last = {
            "grad_norms": g_norm.tolist(),
            "target": target.tolist(),
            "gradnorm_loss": float(np.abs(G - target).sum()),
            "inverse_rate": r.tolist(),
        }
        return weights

    def state(self):
        return {"weights": self.w.tolist(), **self.last}

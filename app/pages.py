"""The playground's pages, in menu order (the landing pages number them so: a suggested order for a first visit).

Imports no panel: build.py and the landing page both read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    slug: str  # URL name: /app?page=<slug> under panel serve, <slug>.html in the static site
    title: str
    module: str  # importable module defining create_page()
    summary: str


PAGES = (
    PageInfo(
        "shared_separate",
        "Shared vs Separate",
        "app.shared_separate",
        "One trunk for two tasks, or two networks? Slide the task relatedness and watch who wins.",
    ),
    PageInfo(
        "architectures",
        "Sharing architectures",
        "app.architectures",
        "Separate nets, hard sharing with a branch point you choose, cross-stitch units: who gains, who pays.",
    ),
    PageInfo(
        "arena",
        "Gradient Conflict Arena",
        "app.arena",
        "Click a loss surface: see the two task gradients fight, and how PCGrad, MGDA, CAGrad, Nash-MTL and "
        "three newer methods settle it.",
    ),
    PageInfo(
        "weighting_lab",
        "Loss-Weighting Lab",
        "app.weighting_lab",
        "A regression loss 10,000x larger than a classification loss: compare equal, uncertainty, "
        "GradNorm and DWA weights.",
    ),
    PageInfo(
        "training_loop",
        "The Training Loop",
        "app.training_loop",
        "The whole loop, one step at a time: uncertainty weighting + PCGrad with a live step log.",
    ),
    PageInfo(
        "auxiliary",
        "Auxiliary tasks and evaluation",
        "app.auxiliary",
        "A main task with few labels and a cheap auxiliary one: the gain, every task scored on its own with Δm, "
        "more tasks vs over-fitting, and the two-head exercise.",
    ),
)

BY_SLUG = {p.slug: p for p in PAGES}

"""Task descriptions shared by models, losses, data generators and metrics.

A :class:`TaskSpec` says what a head predicts and how it is scored. It carries no
parameters; models read it to build heads, data generators return it beside the
arrays, and the trainer reads it to pick losses and metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

KINDS = ("regression", "binary", "multiclass")
REGRESSION_LOSSES = ("mse", "smooth_l1")


@dataclass(frozen=True)
class TaskSpec:
    """One task of a multi-task problem.

    Parameters
    ----------
    name : str
        Unique, non-empty task name; the key of every per-task dict.
    kind : {"regression", "binary", "multiclass"}
        regression -> prediction shape (N,), binary -> logits (N,),
        multiclass -> logits (N, n_classes).
    n_classes : int, optional
        Number of classes (>= 2); required for multiclass, ignored otherwise.
    loss : {"mse", "smooth_l1"}
        Regression loss. Binary always uses BCE-with-logits, multiclass softmax CE.
    hidden : tuple of int
        Widths of task-specific hidden layers between the trunk and the output.
    auxiliary : bool
        Trained to help the other tasks but left out of evaluation.
    attach_at : int, optional
        Index of the trunk layer the head reads (deep supervision); None = last.
    """

    name: str
    kind: str = "regression"
    n_classes: int | None = None
    loss: str = "mse"
    hidden: tuple[int, ...] = ()
    auxiliary: bool = False
    attach_at: int | None = None

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"TaskSpec name must be a non-empty string, got {self.name!r}")
        if self.kind not in KINDS:
            raise ValueError(f"TaskSpec {self.name!r}: kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "multiclass":
            if not isinstance(self.n_classes, int) or self.n_classes < 2:
                raise ValueError(f"TaskSpec {self.name!r}: multiclass needs n_classes >= 2, got {self.n_classes!r}")
        if self.kind == "regression" and self.loss not in REGRESSION_LOSSES:
            raise ValueError(f"TaskSpec {self.name!r}: loss must be one of {REGRESSION_LOSSES}, got {self.loss!r}")
        hidden = tuple(self.hidden)
        if any((not isinstance(h, int)) or h < 1 for h in hidden):
            raise ValueError(f"TaskSpec {self.name!r}: hidden widths must be positive ints, got {self.hidden!r}")
        object.__setattr__(self, "hidden", hidden)
        if self.attach_at is not None and (not isinstance(self.attach_at, int) or self.attach_at < 0):
            raise ValueError(f"TaskSpec {self.name!r}: attach_at must be a non-negative int or None")

    @property
    def out_dim(self) -> int:
        """Width of the head's output layer."""
        return self.n_classes if self.kind == "multiclass" else 1


def check_unique(tasks) -> list[TaskSpec]:
    """Return ``tasks`` as a list after checking types and name uniqueness."""
    tasks = list(tasks)
    if not tasks:
        raise ValueError("tasks: at least one TaskSpec is required")
    for t in tasks:
        if not isinstance(t, TaskSpec):
            raise ValueError(f"tasks: expected TaskSpec, got {type(t).__name__}")
    names = [t.name for t in tasks]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks: names must be unique, got {names}")
    return tasks

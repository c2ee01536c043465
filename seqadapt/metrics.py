"""Continual-learning metrics, all derived from one accuracy matrix.

``R[i][j]`` is the test accuracy on task j after training stage i (0-based);
entries for tasks not yet seen are ``None``. Every metric here reads R only.
"""

from __future__ import annotations

AccuracyMatrix = list[list[float | None]]


def _validate(matrix: AccuracyMatrix) -> int:
    stages = len(matrix)
    if stages == 0:
        raise ValueError("the accuracy matrix is empty")
    for i, row in enumerate(matrix):
        if len(row) != stages or any(row[j] is None for j in range(i + 1)):
            raise ValueError(f"row {i} of the accuracy matrix must have {stages} entries, the first {i + 1} filled")
    return stages


def average_accuracy(matrix: AccuracyMatrix) -> float:
    """ACC: mean accuracy over all tasks after the last stage."""
    last = _validate(matrix) - 1
    return sum(matrix[last][j] for j in range(last + 1)) / (last + 1)


def backward_transfer(matrix: AccuracyMatrix) -> float:
    """BWT: mean over earlier tasks of (final accuracy − accuracy right after learning it). 0.0 for one task."""
    last = _validate(matrix) - 1
    if last == 0:
        return 0.0
    return sum(matrix[last][j] - matrix[j][j] for j in range(last)) / last


def forgetting(matrix: AccuracyMatrix) -> float:
    """Mean over earlier tasks of the largest drop from any earlier stage's accuracy to the final one."""
    last = _validate(matrix) - 1
    if last == 0:
        return 0.0
    return sum(max(matrix[i][j] for i in range(j, last)) - matrix[last][j] for j in range(last)) / last


def learning_accuracy(matrix: AccuracyMatrix) -> float:
    """LA: mean accuracy on each task right after it was learned."""
    stages = _validate(matrix)
    return sum(matrix[j][j] for j in range(stages)) / stages


def forward_transfer(matrix: AccuracyMatrix, reference: list[float]) -> float:
    """FWT: mean over tasks of (accuracy right after learning it in the stream − its single-task reference).

    With per-task heads a task cannot be evaluated before its stage, so the
    reference row ``b`` holds each task's accuracy when trained alone.
    """
    stages = _validate(matrix)
    if len(reference) != stages:
        raise ValueError(f"the FWT reference has {len(reference)} entries for {stages} tasks")
    return sum(matrix[j][j] - reference[j] for j in range(stages)) / stages


def summary(matrix: AccuracyMatrix, reference: list[float] | None = None) -> dict[str, float | None]:
    """Every metric of a sequential run; FWT only when a single-task reference row is given."""
    return {
        "acc": average_accuracy(matrix),
        "bwt": backward_transfer(matrix),
        "forgetting": forgetting(matrix),
        "learning_accuracy": learning_accuracy(matrix),
        "fwt": None if reference is None else forward_transfer(matrix, reference),
    }


def joint_summary(row: list[float]) -> dict[str, float | None]:
    """A joint (multitask) run has one row and no order, so only ACC is defined."""
    if not row or any(value is None for value in row):
        raise ValueError("a joint run's accuracy row must hold every task")
    return {"acc": sum(row) / len(row), "bwt": None, "forgetting": None, "learning_accuracy": None, "fwt": None}

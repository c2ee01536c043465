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


def summary(matrix: AccuracyMatrix) -> dict[str, float]:
    return {
        "acc": average_accuracy(matrix),
        "bwt": backward_transfer(matrix),
        "forgetting": forgetting(matrix),
        "learning_accuracy": learning_accuracy(matrix),
    }

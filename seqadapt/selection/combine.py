"""Tasks' stored sums combined at inference: a shared-covariance Gaussian model and RanPAC's ridge regression.

Both score every class of every candidate task and give each task its best
class's score, so a row goes to the task owning the class it fits best. All
algebra is in float64 over sums that each task stored when it was learned.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from seqadapt.selection.statistics import TaskStatistics, unpacked

JITTER = 1e-6  # relative to the mean variance


@dataclass(frozen=True)
class ClassModel:
    """Per class column c of all candidates: ``owner[c]`` (its task's position), whether it was ``seen``, and
    what scores it: class means, the precision matrix P, P times each mean and each mean's m^T P m (Gaussian;
    computed once per model, not per batch), or ridge weights (RanPAC)."""

    owner: torch.Tensor
    seen: torch.Tensor
    means: torch.Tensor | None = None
    precision: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    weighted_means: torch.Tensor | None = None
    mean_norms: torch.Tensor | None = None


def _columns(stats: list[TaskStatistics]) -> tuple[torch.Tensor, torch.Tensor]:
    owner = torch.cat([torch.full((len(s.counts),), i, dtype=torch.long) for i, s in enumerate(stats)])
    return owner.to(stats[0].counts.device), torch.cat([s.seen for s in stats])


def best_per_task(scores: torch.Tensor, model: ClassModel, tasks: int) -> torch.Tensor:
    """[B, C] class scores -> [B, T]: each task's best seen class."""
    scores = scores.masked_fill(~model.seen, float("-inf"))
    return torch.stack([scores[:, model.owner == t].amax(dim=1) for t in range(tasks)], dim=1)


def summed(stats: list[TaskStatistics], buffer: str, total: torch.Tensor | None = None) -> torch.Tensor:
    """``total`` (float64; ``None``: nothing yet) plus each task's packed ``buffer`` (``scatter`` or ``gram``), in
    order: O(d^2) per task, and the same bits whether summed at once or a task at a time."""
    for s in stats:
        total = s.get_buffer(buffer).double() if total is None else total + s.get_buffer(buffer).double()
    if total is None:
        raise ValueError("no tasks to sum statistics over")
    return total


def pooled_covariance(stats: list[TaskStatistics], scatter: torch.Tensor | None = None) -> torch.Tensor:
    """The within-class covariance shared by every class of every task: their scatter summed (``scatter``: that
    sum, packed, where the caller keeps it), over the examples less one per class seen (float64)."""
    examples = sum(float(s.counts.sum()) for s in stats)
    classes = sum(int(s.seen.sum()) for s in stats)
    total = summed(stats, "scatter") if scatter is None else scatter
    return unpacked(total) / max(examples - classes, 1.0)


def shrink(covariance: torch.Tensor, shrinkage: float) -> torch.Tensor:
    """(1 - a) S + a (tr S / d) I (Ledoit-Wolf's target), plus a negligible jitter so that fewer examples than
    dimensions with no shrinkage still invert."""
    d = covariance.shape[0]
    identity = torch.eye(d, dtype=torch.float64, device=covariance.device)
    scale = float(covariance.trace()) / d or 1.0  # no spread at all (one example per class): Euclidean distance
    return (1 - shrinkage) * covariance + (shrinkage + JITTER) * scale * identity


def gaussian_model(stats: list[TaskStatistics], shrinkage: float, scatter: torch.Tensor | None = None) -> ClassModel:
    """Class means with one covariance shared by every class of every task (:func:`pooled_covariance`, from
    ``scatter`` where the caller keeps the sum), shrunk by ``shrinkage`` (:func:`shrink`)."""
    owner, seen = _columns(stats)
    precision = torch.cholesky_inverse(torch.linalg.cholesky(shrink(pooled_covariance(stats, scatter), shrinkage)))
    means = torch.cat([s.centroids.double() for s in stats])
    weighted = means @ precision
    return ClassModel(owner, seen, means=means, precision=precision, weighted_means=weighted,
                      mean_norms=(weighted * means).sum(dim=1))


def mahalanobis_scores(features: torch.Tensor, model: ClassModel, tasks: int) -> torch.Tensor:
    """[B, T]: minus the smallest squared Mahalanobis distance from each row to a class mean of each task:
    x^T P x - 2 x^T (P m) + m^T P m, one B x d x d product per batch whatever the number of classes."""
    x = features.double()
    distance = ((x @ model.precision) * x).sum(dim=1, keepdim=True) - 2 * (x @ model.weighted_means.T) + model.mean_norms
    return best_per_task(-distance, model, tasks)


def ridge_model(stats: list[TaskStatistics], ridge: float) -> ClassModel:
    """RanPAC's class weights (G + lambda I)^-1 Q over every candidate's classes, G and Q summed over tasks;
    lambda is ``ridge`` times G's mean diagonal, so it means the same whatever the features' scale."""
    owner, seen = _columns(stats)
    gram = unpacked(summed(stats, "gram"))
    targets = torch.cat([s.ridge_targets.double() for s in stats], dim=1)
    m = gram.shape[0]
    regulariser = ridge * gram.trace() / m * torch.eye(m, dtype=torch.float64, device=gram.device)
    weights = torch.cholesky_solve(targets, torch.linalg.cholesky(gram + regulariser))
    return ClassModel(owner, seen, weights=weights)


def ridge_scores(projected: torch.Tensor, model: ClassModel, tasks: int) -> torch.Tensor:
    """[B, T]: each task's best class output of the ridge regression on the projected features."""
    return best_per_task(projected.double() @ model.weights, model, tasks)

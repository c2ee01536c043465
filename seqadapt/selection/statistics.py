"""One task's selection statistics: sums over its training features, fixed once its stage ends.

Every selector that does not run adapters reads these, and nothing but these,
so that what a task stores never changes after its stage: a selector may
combine all tasks at inference (a shared covariance, one ridge regression over
every task's classes), but it combines stored sums, it never updates them.

Per class k of the task (one "class" for kinds without classes: regression,
tagging, QA, so each such task is one Gaussian), over the bare backbone's
pooled training features x and their random projection phi = relu(W x):

- ``counts[k]``, ``centroids[k]`` (the class mean): nearest-centroid and
  Mahalanobis means;
- ``scatter``: sum over the task's examples of (x - mean of its class)(...)^T,
  the within-class scatter a shared covariance is pooled from;
- ``gram``: sum of phi phi^T, and ``ridge_targets``: sum of phi y^T (y one-hot
  over the task's classes): RanPAC's G and Q;
- ``temperature``: the head's temperature, fitted on the task's validation
  split, for the calibrated entropy selector (1 where a kind has none).

They are buffers, not parameters: nothing trains them, but they belong to the
task like its adapters (its artefact, resume, the forgetting guard).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class TaskStatistics(nn.Module):
    """The sums above for one task with ``num_classes`` classes, features of ``hidden_size``, projection ``M``."""

    def __init__(self, hidden_size: int, num_classes: int, projection_dim: int) -> None:
        super().__init__()
        self.register_buffer("counts", torch.zeros(num_classes))
        self.register_buffer("centroids", torch.zeros(num_classes, hidden_size))
        self.register_buffer("scatter", torch.zeros(hidden_size, hidden_size))
        self.register_buffer("gram", torch.zeros(projection_dim, projection_dim))
        self.register_buffer("ridge_targets", torch.zeros(projection_dim, num_classes))
        self.register_buffer("temperature", torch.ones(()))

    @property
    def fitted(self) -> bool:
        return bool(self.counts.sum() > 0)

    @property
    def seen(self) -> torch.Tensor:
        """Which classes had training examples: the only ones a selector may match."""
        return self.counts > 0

    @torch.no_grad()
    def fit(self, features: torch.Tensor, labels: torch.Tensor, projected: torch.Tensor | None) -> None:
        """Replace the sums with those of ``features`` [N, d] under class ``labels`` [N] (``projected`` [N, M]:
        their random projection, ``None`` when M is 0). Accumulated in float64, stored in float32."""
        if len(features) == 0:
            raise ValueError("no examples to compute selection statistics from; the task's training split is empty")
        x = features.double()
        one_hot = F.one_hot(labels.long(), len(self.counts)).double()  # [N, K]
        counts = one_hot.sum(dim=0)
        means = (one_hot.T @ x) / counts.clamp(min=1.0).unsqueeze(-1)
        centred = x - one_hot @ means
        self.counts.copy_(counts)
        self.centroids.copy_(means)
        self.scatter.copy_(centred.T @ centred)
        if projected is not None:
            phi = projected.double()
            self.gram.copy_(phi.T @ phi)
            self.ridge_targets.copy_(phi.T @ one_hot)

    def set_temperature(self, temperature: float) -> None:
        with torch.no_grad():
            self.temperature.fill_(temperature)

    def similarity(self, features: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each feature row to its nearest class centroid [N]; classes never seen are skipped."""
        if not self.fitted:
            raise RuntimeError("selection statistics were never computed: fit() them on the task's training split first")
        cosine = F.normalize(features.float(), dim=-1) @ F.normalize(self.centroids.float(), dim=-1).T  # [N, K]
        return cosine.masked_fill(~self.seen, float("-inf")).amax(dim=-1)

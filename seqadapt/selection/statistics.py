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

  both symmetric, so stored :func:`packed`: their upper triangle, row by row,
  d(d+1)/2 numbers instead of d^2 (2.66 MB instead of 5.3 MB per task on MiniLM's
  3 x 384 features); :meth:`TaskStatistics.unpacked` gives the matrices back;
- ``temperature``: the head's temperature, fitted on the task's validation
  split, for the calibrated entropy selector (1 where a kind has none).

They are buffers, not parameters: nothing trains them, but they belong to the
task like its adapters (its artefact, resume, the forgetting guard).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import nn
from torch.nn import functional as F


SYMMETRIC = ("scatter", "gram")  # the buffers stored packed


@lru_cache(maxsize=8)
def _upper(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.triu_indices(size, size))  # type: ignore[return-value]


def packed(matrix: torch.Tensor) -> torch.Tensor:
    """The upper triangle of a square ``matrix``, diagonal included, row by row: [d(d+1)/2]."""
    rows, columns = _upper(matrix.shape[0])
    return matrix[rows.to(matrix.device), columns.to(matrix.device)]


def unpacked(triangle: torch.Tensor) -> torch.Tensor:
    """The symmetric matrix whose :func:`packed` upper triangle is ``triangle`` (exactly symmetric)."""
    size = int(((8 * triangle.numel() + 1) ** 0.5 - 1) / 2)
    if size * (size + 1) // 2 != triangle.numel():
        raise ValueError(f"{triangle.numel()} numbers are not the upper triangle of a square matrix")
    rows, columns = (i.to(triangle.device) for i in _upper(size))
    matrix = triangle.new_zeros(size, size)
    matrix[rows, columns] = triangle
    matrix[columns, rows] = triangle
    return matrix


def packed_statistics(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` (a task's, from an artefact of format 3, which stored the symmetric sums whole) with each
    ``scatter`` and ``gram`` :func:`packed`; one that is not exactly symmetric is refused (seqadapt wrote
    them symmetric), as packing it would silently change what selection reads."""
    upgraded = dict(tensors)
    for key, tensor in tensors.items():
        if key.rsplit(".", 1)[-1] in SYMMETRIC and tensor.dim() == 2:
            if tensor.shape[0] != tensor.shape[1] or not torch.equal(tensor, tensor.T):
                raise ValueError(f"'{key}' is not a symmetric matrix, as seqadapt stores it")
            upgraded[key] = packed(tensor)
    return upgraded


class TaskStatistics(nn.Module):
    """The sums above for one task with ``num_classes`` classes, features of ``hidden_size``, projection ``M``."""

    def __init__(self, hidden_size: int, num_classes: int, projection_dim: int) -> None:
        super().__init__()
        self.register_buffer("counts", torch.zeros(num_classes))
        self.register_buffer("centroids", torch.zeros(num_classes, hidden_size))
        self.register_buffer("scatter", torch.zeros(hidden_size * (hidden_size + 1) // 2))  # packed
        self.register_buffer("gram", torch.zeros(projection_dim * (projection_dim + 1) // 2))  # packed
        self.register_buffer("ridge_targets", torch.zeros(projection_dim, num_classes))
        self.register_buffer("temperature", torch.ones(()))

    @property
    def fitted(self) -> bool:
        return bool(self.counts.sum() > 0)

    def unpacked(self) -> dict[str, torch.Tensor]:
        """Every buffer by name, the symmetric ones as whole matrices: what the task's selection fingerprint
        hashes, the same for artefacts that stored them whole (format 3) and packed."""
        return {name: unpacked(t) if name in SYMMETRIC else t for name, t in self.named_buffers()}

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
        self.scatter.copy_(packed(centred.T @ centred))
        if projected is not None:
            phi = projected.double()
            self.gram.copy_(packed(phi.T @ phi))
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

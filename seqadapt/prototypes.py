"""Class prototypes of one task on the frozen backbone's pooled features: the data the prototype selector uses.

Each task keeps one centroid per class of the bare backbone's pooled features
(no adapter runs), computed from its training split right after its stage.
They are buffers, not parameters: nothing trains them, yet they belong to the
task like its adapters do, so they travel in its artefact and are covered by
the forgetting guard.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

if TYPE_CHECKING:
    from seqadapt.model import SeqAdaptModule


class TaskPrototypes(nn.Module):
    """``centroids[k]``: the mean feature of class k's training examples; ``counts[k]``: how many there were."""

    def __init__(self, hidden_size: int, num_labels: int) -> None:
        super().__init__()
        self.register_buffer("centroids", torch.zeros(num_labels, hidden_size))
        self.register_buffer("counts", torch.zeros(num_labels))

    @property
    def fitted(self) -> bool:
        return bool(self.counts.sum() > 0)

    @torch.no_grad()
    def fit(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        """Replace the centroids with the class means of ``features`` [N, d] under ``labels`` [N]."""
        if len(features) == 0:
            raise ValueError("no examples to compute class prototypes from; the task's training split is empty")
        one_hot = F.one_hot(labels.long(), len(self.counts)).to(features.dtype)  # [N, K]
        counts = one_hot.sum(dim=0)
        self.centroids.copy_((one_hot.T @ features) / counts.clamp(min=1.0).unsqueeze(-1))
        self.counts.copy_(counts)

    def similarity(self, features: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each feature row to its nearest class centroid [N]; classes never seen are skipped."""
        if not self.fitted:
            raise RuntimeError("prototypes were never computed: fit() them on the task's training split first")
        cosine = F.normalize(features.float(), dim=-1) @ F.normalize(self.centroids.float(), dim=-1).T  # [N, K]
        return cosine.masked_fill(self.counts == 0, float("-inf")).amax(dim=-1)


@torch.inference_mode()
def fit_prototypes(module: SeqAdaptModule, task: str, loader: DataLoader) -> None:
    """Compute ``task``'s centroids from ``loader`` (its training split) on the bare backbone: one per class,
    or one per task for kinds without classes (:meth:`~seqadapt.kinds.TaskKind.prototype_labels`)."""
    features, labels, kind = [], [], module.kind(task)
    with module.evaluating():
        for batch in loader:
            batch = {key: value.to(module.device) for key, value in batch.items()}
            features.append(module.backbone_features(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")))
            labels.append(kind.prototype_labels(batch["labels"]))
    module.prototypes[task].fit(torch.cat(features).float(), torch.cat(labels))

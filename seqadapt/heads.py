"""Per-task classification heads over the backbone's token states."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

Pooling = Literal["mean", "cls"]


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: Pooling) -> torch.Tensor:
    """One vector per sequence: the mean over real (unpadded) tokens, or the first ([CLS]) token."""
    if mode == "cls":
        return hidden[:, 0]
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    raise ValueError(f"unknown pooling '{mode}'; choose 'mean' or 'cls'")


class ClassificationHead(nn.Module):
    """Pooling, dropout and a linear layer to the task's labels."""

    def __init__(self, hidden_size: int, num_labels: int, pooling: Pooling = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"unknown pooling '{pooling}'; choose 'mean' or 'cls'")
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pool(hidden, attention_mask, self.pooling)))

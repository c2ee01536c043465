"""Per-task classification heads over the backbone's token states."""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from seqadapt.families.states import last_real

Pooling = Literal["mean", "cls", "last"]
POOLINGS = ("mean", "cls", "last")


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, mode: Pooling) -> torch.Tensor:
    """One vector per sequence: the mean over real (unpadded) tokens, the first ([CLS]) token, or the last real
    token (what a causal decoder has read the whole input at; found from the mask, so left padding works too)."""
    if mode == "cls":
        return hidden[:, 0]
    if mode == "last":
        return hidden[torch.arange(len(hidden), device=hidden.device), last_real(attention_mask)]
    if mode == "mean":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    raise ValueError(f"unknown pooling '{mode}'; choose one of {POOLINGS}")


def check_pooling(pooling: str) -> None:
    """Refuse an unknown pooling when a head is built rather than at its first batch."""
    if pooling not in POOLINGS:
        raise ValueError(f"unknown pooling '{pooling}'; choose one of {POOLINGS}")


class ClassificationHead(nn.Module):
    """Pooling, dropout and a linear layer to the task's labels."""

    def __init__(self, hidden_size: int, num_labels: int, pooling: Pooling = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        check_pooling(pooling)
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(pool(hidden, attention_mask, self.pooling)))

"""LoRA (Hu et al. 2022): a task adds a low-rank update ``(alpha / r) B A x`` to chosen projections.

``A`` (r x in) starts Kaiming-uniform and ``B`` (out x r) at zero, as in the paper and PEFT, so a fresh task
leaves the backbone's outputs exactly unchanged. Targets name projections of the families table (``query``,
``key``, ``value``, ``attention``, ``ffn``); PEFT's default for BERT-like models is ``query`` and ``value``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn

from seqadapt.adapters.layer import SideSlot, TaskRouter, in_out_features, wrap
from seqadapt.families import TARGETS, Stack


@dataclass(frozen=True)
class LoraConfig:
    """``rank`` (r) and ``alpha`` set the update's size and scale (``alpha / rank``); ``targets`` where it goes."""

    method: Literal["lora"] = "lora"
    rank: int = 8
    alpha: float = 16.0
    targets: tuple[str, ...] = ("query", "value")

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))  # a manifest's JSON list reads back as a tuple
        if isinstance(self.rank, bool) or not isinstance(self.rank, int) or self.rank < 1:
            raise ValueError(f"adapter.rank (LoRA) must be a whole number >= 1, got {self.rank!r}")
        if not self.alpha > 0:
            raise ValueError(f"adapter.alpha (LoRA) must be > 0, got {self.alpha!r}")
        unknown = sorted(set(self.targets) - set(TARGETS))
        if unknown or not self.targets:
            raise ValueError(f"adapter.targets (LoRA) must be a non-empty list from {TARGETS}, got {list(self.targets)}")


class LoraUpdate(nn.Module):
    """``x -> (alpha / r) B A x``: what one task adds to one projection's output."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float) -> None:
        super().__init__()
        self.down = nn.Linear(in_features, rank, bias=False)  # A
        self.up = nn.Linear(rank, out_features, bias=False)  # B
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        nn.init.zeros_(self.up.weight)
        self.scaling = alpha / rank

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(inputs)) * self.scaling

    def delta_weight(self) -> torch.Tensor:
        """``(alpha / r) B A`` (out x in): merged into a ``nn.Linear``'s weight it gives the same outputs."""
        return self.scaling * self.up.weight @ self.down.weight


def place(config: LoraConfig, layer: nn.Module, stack: Stack, router: TaskRouter, hidden: int) -> list[nn.Module]:
    """A :class:`SideSlot` on each target projection of ``layer`` (a fused projection once)."""
    paths = dict.fromkeys(stack.projection(target) for target in config.targets)
    return [wrap(layer, path, lambda m: SideSlot(m, router, partial(LoraUpdate, *in_out_features(m), config.rank,
                                                                     config.alpha))) for path in paths]

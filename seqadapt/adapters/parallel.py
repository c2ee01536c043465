"""Parallel adapters (He et al. 2022, "Towards a Unified View of Parameter-Efficient Transfer Learning"): a
bottleneck beside the feed-forward block, ``FFN(x) + s * up(act(down(x)))``, reading the block's input ``x``.

The down-projection starts Kaiming-uniform and the up-projection at zero (as LoRA, and AdapterHub's
``mam_adapter`` init), so a fresh task leaves the backbone's outputs exactly unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn

from seqadapt.adapters.config import check_non_linearity
from seqadapt.adapters.layer import ACTIVATIONS, InputTap, SideSlot, TaskRouter, wrap
from seqadapt.families import Stack


@dataclass(frozen=True)
class ParallelConfig:
    """``bottleneck`` (m) wide, output scaled by ``scaling`` (s; He et al. use 4)."""

    method: Literal["parallel"] = "parallel"
    bottleneck: int = 64
    scaling: float = 4.0
    non_linearity: str = "relu"

    def __post_init__(self) -> None:
        if isinstance(self.bottleneck, bool) or not isinstance(self.bottleneck, int) or self.bottleneck < 1:
            raise ValueError(f"adapter.bottleneck (parallel) must be a whole number >= 1, got {self.bottleneck!r}")
        if not self.scaling > 0:
            raise ValueError(f"adapter.scaling (parallel) must be > 0, got {self.scaling!r}")
        check_non_linearity(self.non_linearity)


class ParallelAdapter(nn.Module):
    """``x -> s * up(act(down(x)))``, added to the feed-forward block's output."""

    def __init__(self, hidden_size: int, bottleneck: int, scaling: float, non_linearity: str) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = ACTIVATIONS[non_linearity]()
        self.up = nn.Linear(bottleneck, hidden_size)
        nn.init.kaiming_uniform_(self.down.weight, a=math.sqrt(5))
        for tensor in (self.down.bias, self.up.weight, self.up.bias):
            nn.init.zeros_(tensor)
        self.scaling = scaling

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.up(self.act(self.down(inputs))) * self.scaling


def place(config: ParallelConfig, layer: nn.Module, stack: Stack, router: TaskRouter, hidden: int) -> list[nn.Module]:
    """A :class:`SideSlot` on the feed-forward output projection reading what an :class:`InputTap` on the
    block's first module saw (the output projection is wrapped first: it may sit inside that module)."""
    make = partial(ParallelAdapter, hidden, config.bottleneck, config.scaling, config.non_linearity)
    slot = wrap(layer, stack.ffn, lambda m: SideSlot(m, router, make))
    slot.read_from(wrap(layer, stack.ffn_input, InputTap))
    return [slot]

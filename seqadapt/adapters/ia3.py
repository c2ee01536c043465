"""(IA)^3 (Liu et al. 2022, T-Few): a task learns vectors that rescale the keys, the values and the feed-forward
block's inner activations, ``l_k * K``, ``l_v * V``, ``l_ff * act(W_1 x)``; all start at one (the identity).

Where a family fuses query, key and value into one projection (GPT-2's ``c_attn``, Phi-3's ``qkv_proj``) the
whole fused output is rescaled, as PEFT does.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Literal

import torch
from torch import nn

from seqadapt.adapters.layer import AdapterSlot, TaskRouter, TaskSlot, in_out_features, wrap
from seqadapt.families import Stack

IA3_TARGETS = ("key", "value", "ffn")


@dataclass(frozen=True)
class IA3Config:
    """``targets``: which of keys, values and the feed-forward activations a task rescales."""

    method: Literal["ia3"] = "ia3"
    targets: tuple[str, ...] = IA3_TARGETS

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(self.targets))
        unknown = sorted(set(self.targets) - set(IA3_TARGETS))
        if unknown or not self.targets:
            raise ValueError(f"adapter.targets ((IA)^3) must be a non-empty list from {IA3_TARGETS}, got {list(self.targets)}")


class Scale(nn.Module):
    """``h -> l * h`` with a learned vector ``l``, starting at ones."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.ones(size))

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden * self.scale


class InputSlot(TaskSlot):
    """Applies the active task's module to the wrapped projection's input: ``W (l * h)`` rescales ``h``."""

    def forward(self, inputs: torch.Tensor, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.base_layer(self.apply(inputs), *args, **kwargs)


def place(config: IA3Config, layer: nn.Module, stack: Stack, router: TaskRouter, hidden: int) -> list[nn.Module]:
    """Rescale the key and value projections' outputs and the feed-forward output projection's input."""
    paths = dict.fromkeys(stack.projection(target) for target in config.targets if target != "ffn")
    slots = [wrap(layer, path, lambda m: AdapterSlot(m, router, partial(Scale, in_out_features(m)[1]))) for path in paths]
    if "ffn" in config.targets:
        slots.append(wrap(layer, stack.ffn, lambda m: InputSlot(m, router, partial(Scale, in_out_features(m)[0]))))
    return slots

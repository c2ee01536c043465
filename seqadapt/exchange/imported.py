"""A folder's task as seqadapt holds it once read, and how its settings compare with the run it joins."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from seqadapt.adapters import AdapterConfig, MethodConfig, method_of
from seqadapt.exchange.layout import HEADS


@dataclass(frozen=True)
class Imported:
    """The method and the settings its folder fixes (``method`` holds ``method`` plus e.g. ``rank``), the adapter
    tensors by seqadapt's names, the head's tensors by their names inside the head (empty: the folder holds
    none), and the pooling a head of that library reads (``None``: any, or no head)."""

    method: dict[str, Any]
    tensors: dict[str, torch.Tensor]
    head: dict[str, torch.Tensor] = field(default_factory=dict)
    pooling: str | None = None

    def named(self, task: str) -> dict[str, torch.Tensor]:
        """The adapter and head tensors under the names task ``task``'s own have in a module."""
        return {**self.tensors, **{f"{HEADS}{task}.{key}": value for key, value in self.head.items()}}


def setting_differences(run: MethodConfig, imported: dict[str, Any], hidden: int) -> list[str]:
    """The settings in which the folder's adapter differs from the run's ``adapter`` config, as ``key: run has
    X, the folder Y`` (a bottleneck's width compared as ``bottleneck``, whichever way the run sizes it)."""
    if method_of(run) != imported["method"]:
        return [f"method: the run has {method_of(run)!r}, the folder {imported['method']!r}"]
    differences = []
    for key, value in imported.items():
        if key == "method":
            continue
        have = run.bottleneck_size(hidden) if key == "bottleneck" and isinstance(run, AdapterConfig) else getattr(run, key)
        if have != value:
            differences.append(f"adapter.{key}: the run has {have!r}, the folder {value!r}")
    return differences

"""The per-task methods, table-driven: ``adapter.method`` -> its config dataclass and where it places modules.

A method is one file (``bottleneck``, ``lora``, ``parallel``, ``ia3``) with a config and a ``place`` function
that wraps one transformer layer's modules in :class:`~seqadapt.adapters.layer.TaskSlot` s; everything else
(routing, guard, artefacts, serving, the parameter ledger) works on slots and does not know the method.
A config without ``method`` is a bottleneck adapter: every run and artefact saved before methods existed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from torch import nn

from seqadapt.adapters import bottleneck, ia3, lora, parallel
from seqadapt.adapters.config import AdapterConfig
from seqadapt.adapters.ia3 import IA3Config
from seqadapt.adapters.layer import TaskRouter
from seqadapt.adapters.lora import LoraConfig
from seqadapt.adapters.parallel import ParallelConfig
from seqadapt.families import Stack

MethodConfig = AdapterConfig | LoraConfig | ParallelConfig | IA3Config
Place = Callable[[Any, nn.Module, Stack, TaskRouter, int], list[nn.Module]]


@dataclass(frozen=True)
class Method:
    """A method's config dataclass and the function that wraps one layer's modules for it."""

    config: type
    place: Place


METHODS: dict[str, Method] = {
    "bottleneck": Method(AdapterConfig, bottleneck.place),
    "lora": Method(LoraConfig, lora.place),
    "parallel": Method(ParallelConfig, parallel.place),
    "ia3": Method(IA3Config, ia3.place),
}


def method_of(config: MethodConfig) -> str:
    return getattr(config, "method", "bottleneck")


def adapter_config(settings: Mapping[str, Any]) -> MethodConfig:
    """The config of ``settings`` (the ``adapter`` group, or a manifest's ``adapter``), or an error naming the
    key and what the method takes."""
    settings = dict(settings)
    name = settings.get("method", "bottleneck")
    if name not in METHODS:
        raise ValueError(f"unknown adapter.method '{name}'; choose one of {sorted(METHODS)} (adapter=houlsby, "
                         "adapter=pfeiffer, adapter=lora, adapter=parallel, adapter=ia3)")
    config = METHODS[name].config
    if name == "bottleneck":
        settings.pop("method", None)
    known = {f.name for f in fields(config)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ValueError(f"adapter.{unknown[0]} is not a setting of adapter method '{name}'; it takes "
                         f"{', '.join(sorted(known - {'method'}))}. Remove it, or pick the method it belongs to")
    return config(**settings)


def place(config: MethodConfig, layer: nn.Module, stack: Stack, router: TaskRouter, hidden: int) -> list[nn.Module]:
    """Wrap ``layer``'s modules for ``config``'s method; returns the wrappers that hold per-task modules."""
    return METHODS[method_of(config)].place(config, layer, stack, router, hidden)

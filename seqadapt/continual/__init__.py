"""Continual-learning methods that share weights and try not to forget, each a plugin over one loop.

The table maps a strategy's ``continual`` name to its config dataclass (the ``strategy.*`` keys it takes, with
their documented defaults) and its plugin class; :func:`make_plugin` builds one from the ``strategy`` config
group and refuses keys the method does not take, naming them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from seqadapt.continual.agem import AGEM, AGEMConfig
from seqadapt.continual.ewc import EWC, EWCConfig
from seqadapt.continual.lwf import LwF, LwFConfig
from seqadapt.continual.olora import OLoRA, OLoRAConfig
from seqadapt.continual.plugin import ContinualPlugin
from seqadapt.continual.replay import Replay, ReplayConfig


@dataclass(frozen=True)
class Method:
    config: type
    plugin: type[ContinualPlugin]
    adapter_method: str | None = None  # the adapter.method it needs, if any


METHODS: dict[str, Method] = {
    "ewc": Method(EWCConfig, EWC),
    "lwf": Method(LwFConfig, LwF),
    "replay": Method(ReplayConfig, Replay),
    "agem": Method(AGEMConfig, AGEM),
    "olora": Method(OLoRAConfig, OLoRA, adapter_method="lora"),
}
STRATEGY_KEYS = ("name", "top_k")  # the strategy group's own keys, not a method's settings


def make_plugin(name: str | None, settings: Mapping[str, Any], adapter_method: str) -> ContinualPlugin | None:
    """The plugin of continual method ``name`` (``None``: a strategy without one) configured from ``settings``
    (the ``strategy`` group); an unknown key, a bad value or the wrong ``adapter.method`` is refused by name."""
    values = {key: value for key, value in settings.items() if key not in STRATEGY_KEYS}
    if name is None:
        if values:
            raise ValueError(f"strategy.{sorted(values)[0]} is not a setting of strategy "
                             f"'{settings.get('name')}'; remove it")
        return None
    method = METHODS[name]
    known = {f.name for f in fields(method.config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"strategy.{unknown[0]} is not a setting of strategy '{name}'; it takes "
                         f"{', '.join(sorted(known))}")
    if method.adapter_method is not None and adapter_method != method.adapter_method:
        raise ValueError(f"strategy={name} trains a {method.adapter_method} per task, but adapter.method is "
                         f"'{adapter_method}': add adapter={method.adapter_method}")
    return method.plugin(method.config(**values))


__all__ = ["METHODS", "ContinualPlugin", "make_plugin"]

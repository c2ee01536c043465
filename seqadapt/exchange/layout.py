"""Where a task's tensors sit in a Hugging Face model, in terms every library shares: module paths, layers, targets.

seqadapt names a task's adapter tensors ``backbone.<module path>.adapters.<task>.<leaf>``, the module path
being the one in the class seqadapt loads (``AutoModel`` for encoders, ``AutoModelForCausalLM`` for decoders:
``encoder.layer.0.attention.self.query``, ``model.layers.0.self_attn.q_proj``). PEFT and AdapterHub name the
same modules by their path in whichever class their user loads (``BertForTokenClassification`` puts the encoder
under ``bert.``, ``LlamaForQuestionAnswering`` under ``transformer.``), so every translation goes through the
path *inside the base model* and the class's own prefix, read from the class itself on the meta device (no
weights are read or allocated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PretrainedConfig

from seqadapt.backbone import auto_class
from seqadapt.families import Family, Stack, family_of

ADAPTERS = ".adapters."  # the hop a TaskSlot adds between a wrapped module and its tasks' modules
BACKBONE = "backbone."  # where SeqAdaptModule keeps its backbone
HEADS = "heads."  # and its tasks' heads


class LayoutError(ValueError):
    """A tensor name or module path that does not fit the backbone's layout."""


@dataclass(frozen=True)
class Slot:
    """One adapted module: the stack it is in, its layer, its path inside the layer and what it is for seqadapt
    (``query``, ``key``, ``value``, ``attention``, ``ffn``: the families table's names)."""

    stack: Stack
    layer: int
    inner: str
    target: str


def meta_model(config: PretrainedConfig, model_class: type | None = None) -> nn.Module:
    """An instance of ``model_class`` (default: the class seqadapt loads the family with) built from ``config`` on
    the meta device: its module tree and shapes, no memory."""
    with torch.device("meta"):
        return (model_class or auto_class(config.model_type)).from_config(config)


def base_prefix(model: nn.Module) -> str:
    """The path of ``model``'s base model inside it, with a trailing dot ("" where it is its own base)."""
    if model.base_model is model:
        return ""
    return next(f"{name}." for name, module in model.named_modules() if module is model.base_model)


@dataclass(frozen=True)
class ModelLayout:
    """The backbone seqadapt loads for ``config``: its family, and where its base model sits in it."""

    config: PretrainedConfig
    family: Family
    prefix: str
    class_name: str  # e.g. BertModel, LlamaForCausalLM

    @classmethod
    def of(cls, config: PretrainedConfig) -> ModelLayout:
        family = family_of(config.model_type)
        if not family.stacks:
            raise LayoutError(f"seqadapt places no adapters in model_type {config.model_type!r}")
        model = meta_model(config)
        return cls(config, family, base_prefix(model), type(model).__name__)

    @property
    def model_type(self) -> str:
        return str(self.config.model_type)

    def slot(self, path: str) -> Slot:
        """The :class:`Slot` at ``path`` (a module path in seqadapt's backbone class)."""
        if not path.startswith(self.prefix):
            raise LayoutError(f"{path!r} is not inside the base model ({self.prefix.rstrip('.')!r})")
        inside = path[len(self.prefix):]
        for stack in self.family.stacks:
            head = f"{stack.layers}."
            number, _, inner = inside.removeprefix(head).partition(".")
            if inside.startswith(head) and number.isdigit():
                for target in ("query", "key", "value", "attention", "ffn"):
                    if getattr(stack, target) == inner:
                        return Slot(stack, int(number), inner, target)
        raise LayoutError(f"{path!r} is not a module seqadapt adapts in a {self.model_type} model")

    def path(self, slot: Slot, prefix: str | None = None) -> str:
        """The module path of ``slot`` in a class whose base model sits at ``prefix`` (default: seqadapt's)."""
        return f"{self.prefix if prefix is None else prefix}{slot.stack.layers}.{slot.layer}.{slot.inner}"


def exchanged(tensors: dict[str, Any], task: str) -> dict[str, Any]:
    """``task``'s adapter and head tensors among its own: what travels between libraries (its selection statistics
    stay behind; an import refits them from the task's data)."""
    return {key: value for key, value in tensors.items() if key.startswith((BACKBONE, f"{HEADS}{task}."))}


def split_adapter_key(key: str, task: str) -> tuple[str, str]:
    """``backbone.<path>.adapters.<task>.<leaf>`` -> ``(path, leaf)``."""
    marker = f"{ADAPTERS}{task}."
    if not key.startswith(BACKBONE) or marker not in key:
        raise LayoutError(f"{key!r} is not an adapter tensor of task {task!r}")
    path, _, leaf = key[len(BACKBONE):].partition(marker)
    return path, leaf


def adapter_key(path: str, task: str, leaf: str) -> str:
    """The seqadapt name of a task's adapter tensor (the inverse of :func:`split_adapter_key`)."""
    return f"{BACKBONE}{path}{ADAPTERS}{task}.{leaf}"

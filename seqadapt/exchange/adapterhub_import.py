"""Reading an AdapterHub ``adapters`` folder as a seqadapt task: the inverse of
:mod:`seqadapt.exchange.adapterhub_format`, refusing every setting with which ``adapters`` computes something else."""

from __future__ import annotations

from typing import Any

import torch

from seqadapt.data.tasks import TaskSpec
from seqadapt.exchange.adapterhub_format import (
    ACTIVATIONS,
    BN_EXACT,
    BOTTLENECK_LEAVES,
    HEAD_TYPES,
    LORA_EXACT,
    LORA_LEAVES,
    MATRICES,
    QA_LABELS,
    WEIGHTS,
    HubLayout,
    hub_layout,
)
from seqadapt.exchange.errors import ExchangeError, refused
from seqadapt.exchange.heads import head_form, linear_head
from seqadapt.exchange.imported import Imported
from seqadapt.exchange.layout import LayoutError, ModelLayout, Slot, adapter_key


def import_adapterhub(config: dict[str, Any], tensors: dict[str, torch.Tensor], layout: ModelLayout, spec: TaskSpec,
                      where: str, head: tuple[dict[str, Any], dict[str, torch.Tensor]] | None = None) -> Imported:
    """An ``adapters`` folder (``config``: its adapter_config.json; ``head``: its head_config.json and head
    weights, if any) as task ``spec``'s tensors on ``layout``'s backbone; ``where`` names the folder in errors."""
    what = f"cannot import {where}"
    hub = hub_layout(str(config.get("model_type")), what)
    if config.get("model_type") != layout.model_type or config.get("hidden_size") != layout.config.hidden_size:
        raise refused(what, f"it is an adapter of a {config.get('model_type')!r} model of hidden size "
                      f"{config.get('hidden_size')!r}, and the run's backbone is a {layout.model_type!r} model of "
                      f"hidden size {layout.config.hidden_size}", "Import it into a run of the backbone it was trained on")
    section = config.get("config")
    if not isinstance(section, dict):
        raise refused(what, "its adapter_config.json has no 'config' object", "Save it with model.save_adapter")
    settings = _settings(section, layout.config.hidden_size, hub, what)
    hop = ".adapters." if settings["method"] in ("bottleneck", "parallel") else ".loras."
    names = sorted({key.partition(hop)[2].split(".", 1)[0] for key in tensors})
    if names != [config.get("name")]:
        raise refused(what, f"its weights hold adapter(s) {names} and its adapter_config.json names "
                      f"{config.get('name')!r}: a folder holds one adapter", "Save one adapter per folder with "
                      "model.save_adapter(folder, name)")
    own = {_seqadapt_key(key, layout, hub, spec.name, settings["method"], what): _shape(settings["method"], value)
           for key, value in tensors.items()}
    imported_head, pooling = _head(head, spec, layout, what) if head is not None else ({}, None)
    return Imported(settings, own, imported_head, pooling)


def _settings(section: dict[str, Any], hidden: int, hub: HubLayout, what: str) -> dict[str, Any]:
    """The seqadapt method and settings an ``adapters`` config section computes exactly, or a refusal naming the
    key that makes it compute something else."""
    architecture = section.get("architecture")
    exact = BN_EXACT if architecture in (None, "bottleneck") else LORA_EXACT if architecture == "lora" else None
    if exact is None:
        raise refused(what, f"its architecture is {architecture!r}; seqadapt imports bottleneck, parallel, LoRA and "
                      "(IA)^3 adapters", "Import one of those")
    for key, value in exact.items():
        if section.get(key, value) != value:
            raise refused(what, f"its config sets {key}={section[key]!r}, with which adapters computes something "
                          f"seqadapt does not", f"Train it with {key}={value!r}")
    if architecture == "lora":
        return _lora_settings(section, hub, what)
    return _bottleneck_settings(section, hidden, what)


def _bottleneck_settings(section: dict[str, Any], hidden: int, what: str) -> dict[str, Any]:
    placement = {(True, True): "houlsby", (False, True): "pfeiffer"}.get(
        (section.get("mh_adapter"), section.get("output_adapter")))
    activation = str(section.get("non_linearity", "")).lower()
    factor = section.get("reduction_factor")
    if activation not in ACTIVATIONS or not isinstance(factor, (int, float)) or isinstance(factor, bool) or factor <= 0:
        raise refused(what, f"its non_linearity {section.get('non_linearity')!r} or reduction_factor {factor!r} is "
                      f"not one seqadapt computes (activations {ACTIVATIONS}, one number)", "Train it with those")
    width, scaling = int(hidden // factor), section.get("scaling", 1.0)
    if section.get("is_parallel"):
        if section.get("mh_adapter") or not section.get("output_adapter") or not isinstance(scaling, (int, float)):
            raise refused(what, "its parallel adapter is not one feed-forward adapter with a numeric scaling",
                          "Train it with ParBnConfig's placement")
        return {"method": "parallel", "bottleneck": width, "scaling": float(scaling), "non_linearity": activation}
    if placement is None or scaling != 1.0:
        raise refused(what, f"mh_adapter={section.get('mh_adapter')!r}, output_adapter="
                      f"{section.get('output_adapter')!r}, scaling={scaling!r}: seqadapt places adapters after both "
                      "sublayers (houlsby) or after the feed-forward one (pfeiffer), unscaled", "Train it so")
    return {"method": "bottleneck", "bottleneck": width, "non_linearity": activation, "placement": placement,
            "train_layer_norm": False}


def _lora_settings(section: dict[str, Any], hub: HubLayout, what: str) -> dict[str, Any]:
    mode, other = section.get("composition_mode"), ({"intermediate_lora", "output_lora"} - {hub.ffn_lora}).pop()
    matrices = list(section.get("attn_matrices") or []) if section.get("selfattn_lora") else []
    targets = [target for target, short in MATRICES.items() if short in matrices]
    if section.get(other) or (mode == "scale" and section.get(hub.ffn_lora)):
        raise refused(what, f"it sets {other if section.get(other) else hub.ffn_lora}=true: that projection's "
                      "output is adapted, where seqadapt adapts the feed-forward output projection (LoRA) or its "
                      "input ((IA)^3)", "Import an adapter without it")
    if mode == "scale":
        if section.get("alpha") != section.get("r"):
            raise refused(what, "its (IA)^3 vectors are scaled by alpha / r != 1", "Train it with alpha = r")
        return {"method": "ia3", "targets": tuple(targets)}
    if mode != "add":
        raise refused(what, f"its composition_mode is {mode!r}", "Import an adapter of composition_mode add or scale")
    targets += ["ffn"] if section.get(hub.ffn_lora) else []
    return {"method": "lora", "rank": section.get("r"), "alpha": section.get("alpha"), "targets": tuple(targets)}


def _seqadapt_key(key: str, layout: ModelLayout, hub: HubLayout, task: str, method: str, what: str) -> str:
    """The seqadapt name of an ``adapters`` weight, saved from the model class seqadapt loads or from its
    flexible-heads class (which keeps the base model under another attribute)."""
    if hub.head_prefix != layout.prefix and key.startswith(hub.head_prefix):
        key = layout.prefix + key[len(hub.head_prefix):]
    hop = ".adapters." if method in ("bottleneck", "parallel") else ".loras."  # as import_adapterhub splits
    path, _, rest = key.partition(hop)
    leaf = rest.split(".", 1)[1] if "." in rest else ""
    names = {saved: ours for ours, saved in (BOTTLENECK_LEAVES if hop == ".adapters." else LORA_LEAVES[method]).items()}
    try:
        if leaf not in names:
            raise LayoutError(f"{leaf!r} is not a {method} tensor (they are {sorted(names)})")
        if hop == ".loras.":
            return adapter_key(layout.path(layout.slot(path)), task, names[leaf])
        return adapter_key(layout.path(_container_slot(path, layout, hub)), task, names[leaf])
    except LayoutError as err:
        raise refused(what, f"its {WEIGHTS} holds {key!r}: {err}", "Import an adapter saved with save_adapter from a "
                      "model of the run's backbone") from None


def _container_slot(path: str, layout: ModelLayout, hub: HubLayout) -> Slot:
    """The slot a bottleneck container (``encoder.layer.0.attention.output``) belongs to."""
    inside = path.removeprefix(layout.prefix)
    for stack in layout.family.stacks:
        number, _, container = inside.removeprefix(f"{stack.layers}.").partition(".")
        targets = [target for target, name in hub.containers.items() if name == container]
        if inside.startswith(f"{stack.layers}.") and number.isdigit() and targets:
            return layout.slot(f"{layout.prefix}{stack.layers}.{number}.{getattr(stack, targets[0])}")
    raise LayoutError(f"{path!r} is not where adapters puts a bottleneck adapter in a {layout.model_type} model")


def _shape(method: str, value: torch.Tensor) -> torch.Tensor:
    return value.reshape(-1) if method == "ia3" else value


def _head(head: tuple[dict[str, Any], dict[str, torch.Tensor]], spec: TaskSpec, layout: ModelLayout, what: str
          ) -> tuple[dict[str, torch.Tensor], str | None]:
    """The head's tensors as seqadapt names them, and the pooling its head type reads (classification)."""
    config, tensors = head
    section = config.get("config") if isinstance(config.get("config"), dict) else {}
    form = head_form(spec)
    expected = HEAD_TYPES.get(form)
    labels = QA_LABELS if form == "spans" else list(spec.labels)
    problems = []
    if section.get("head_type") != expected:
        problems.append(f"head_type {section.get('head_type')!r} (a {spec.type} task needs {expected!r})")
    problems += [f"{key}={section.get(key)!r}" for key, value in (("layers", 1), ("use_pooler", False), ("bias", True))
                 if section.get(key, value) != value]
    order = section.get("label2id")
    if isinstance(order, dict) and sorted(order, key=lambda label: order[label]) != labels:
        problems.append(f"labels in the order {sorted(order, key=lambda label: order[label])} (the task's: {labels})")
    weights = [value for key, value in sorted(tensors.items()) if key.endswith((".1.bias", ".1.weight"))]
    if problems or len(weights) != 2 or len(tensors) != 2:
        raise refused(what, f"its head ({', '.join(problems) or f'tensors {sorted(tensors)}'}) is not one seqadapt "
                      "computes: one linear layer over the token states, in the task's label order",
                      "Import it without its head_config.json, with the head in seqadapt_head.safetensors")
    bias, weight = weights
    try:
        own = linear_head(spec, weight, bias)
    except ExchangeError as err:
        raise refused(what, str(err), "Import it with the head in seqadapt_head.safetensors") from None
    pooling = ("last" if layout.family.architecture == "decoder" else "cls") if form == "pooled" else None
    return own, pooling

"""Reading a PEFT LoRA or IA3 folder as a seqadapt task: the inverse of :mod:`seqadapt.exchange.peft_format`."""

from __future__ import annotations

from typing import Any

import torch

from seqadapt.data.tasks import TaskSpec
from seqadapt.exchange.errors import refused
from seqadapt.exchange.heads import head_form, linear_head
from seqadapt.exchange.imported import Imported
from seqadapt.exchange.layout import LayoutError, ModelLayout, adapter_key, base_prefix, meta_model
from seqadapt.exchange.peft_format import (
    BARE_TASK_TYPES,
    EXACT_OPTIONS,
    HEAD_TASK_TYPES,
    LEAVES,
    PEFT_TYPES,
    PREFIX,
    WEIGHTS,
    with_labels,
)
def import_peft(config: dict[str, Any], tensors: dict[str, torch.Tensor], layout: ModelLayout, spec: TaskSpec,
                where: str) -> Imported:
    """A PEFT LoRA or IA3 folder (``config``: its adapter_config.json, checked to be exactly expressible) as
    task ``spec``'s tensors on ``layout``'s backbone; ``where`` names the folder in errors."""
    method = {value: key for key, value in PEFT_TYPES.items()}.get(config.get("peft_type"))
    if method is None:
        raise refused(f"cannot import {where}", f"its peft_type is {config.get('peft_type')!r}; seqadapt imports "
                      "LORA and IA3", "Export a LoRA or IA3 adapter from PEFT")
    for key, value in EXACT_OPTIONS.items():
        if config.get(key) not in (None, value):
            raise refused(f"cannot import {where}", f"its adapter_config.json sets {key}={config[key]!r}, which "
                          "seqadapt's LoRA does not compute", f"Train it with {key}={value!r}")
    model_class = _import_class(config.get("task_type"), spec, where)
    model = meta_model(with_labels(layout.config, spec) if model_class else layout.config, model_class)
    prefix, head_name = base_prefix(model), (config.get("modules_to_save") or [None])[0]
    if head_name and model_class is None:
        raise refused(f"cannot import {where}", f"it saves {head_name!r} as a head, and its task_type "
                      f"{config.get('task_type')!r} does not say what that head computes", "Import an adapter of "
                      "task_type TOKEN_CLS or QUESTION_ANS with its head, or one without modules_to_save")
    leaves = {suffix: leaf for leaf, suffix in LEAVES[method].items()}
    own: dict[str, torch.Tensor] = {}
    head: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        rest = key.removeprefix(PREFIX)
        if head_name and rest in (f"{head_name}.weight", f"{head_name}.bias"):
            head[rest.rpartition(".")[2]] = value
            continue
        suffix = next((s for s in leaves if rest.endswith(f".{s}")), None)
        path = rest[: -len(suffix) - 1] if suffix else ""
        if not key.startswith(PREFIX) or suffix is None or not path.startswith(prefix):
            raise refused(f"cannot import {where}", f"its {WEIGHTS} holds {key!r}, which is not a {method} tensor "
                          f"of a {type(model).__name__} (they are {PREFIX}{prefix}<module>.{'|'.join(leaves)})",
                          "Import an adapter saved with PeftModel.save_pretrained on this backbone")
        try:
            slot = layout.slot(layout.prefix + path[len(prefix):])
        except LayoutError as err:
            raise refused(f"cannot import {where}", f"{key!r}: {err}", "seqadapt adapts the modules its families "
                          "table names (docs/concepts/model-families.md)") from None
        own[adapter_key(layout.path(slot), spec.name, leaves[suffix])] = value.reshape(-1) if method == "ia3" else value
    settings = {"method": method} if method == "ia3" else {"method": method, "rank": config.get("r"),
                                                           "alpha": config.get("lora_alpha")}
    if head_name and set(head) != {"weight", "bias"}:
        raise refused(f"cannot import {where}", f"modules_to_save names {head_name!r}, and its {WEIGHTS} holds "
                      f"{sorted(head)} of it, not a weight and a bias", "Save the head with the adapter")
    return Imported(settings, own, linear_head(spec, head["weight"], head["bias"]) if head else {})


def _import_class(task_type: Any, spec: TaskSpec, where: str) -> type | None:
    """The transformers class the folder's keys are named in: a head class for TOKEN_CLS and QUESTION_ANS, which
    must be the task's kind; seqadapt's own for the task types without a head."""
    heads = {value[0]: (form, value[1]) for form, value in HEAD_TASK_TYPES.items()}
    if task_type in heads:
        form, model_class = heads[task_type]
        if head_form(spec) != form:
            raise refused(f"cannot import {where} as task '{spec.name}'", f"its task_type {task_type} holds a "
                          f"{form} head and the task is {spec.type}", "Import it as a task whose head is of that form")
        return model_class
    if task_type in (*BARE_TASK_TYPES.values(), None):
        return None
    raise refused(f"cannot import {where}", f"its task_type {task_type!r} puts a head on the backbone that seqadapt's "
                  "heads do not compute", "Import an adapter saved with task_type FEATURE_EXTRACTION, CAUSAL_LM, "
                  "TOKEN_CLS or QUESTION_ANS (seqadapt-export --no-head writes one, the head beside it)")

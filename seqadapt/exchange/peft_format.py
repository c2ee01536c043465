"""PEFT's folder format for LoRA and (IA)^3, both ways: ``adapter_config.json`` and ``adapter_model.safetensors``.

A task's tensors are written under the names PEFT gives them in the class its ``task_type`` loads
(``base_model.model.<module path>.lora_A.weight``; IA3's ``.ia3_l``, ``(out, 1)`` where it rescales a
projection's output and ``(1, in)`` where it rescales a feed-forward projection's input), and its head as
``modules_to_save`` where that class's head computes exactly what seqadapt's does: token classification
(``TOKEN_CLS``: one linear layer per token) and extractive QA (``QUESTION_ANS``: start and end logits per
token). Sequence classification and regression have no such PEFT head (see :func:`refuse_head`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForQuestionAnswering, AutoModelForTokenClassification, PretrainedConfig

from seqadapt.data.tasks import TaskSpec
from seqadapt.exchange.errors import ExchangeError, refused
from seqadapt.exchange.heads import head_form, head_linear
from seqadapt.exchange.layout import Slot, base_prefix, meta_model
from seqadapt.exchange.package import CONFIG, Package
from seqadapt.exchange.task_state import TaskState

WEIGHTS = "adapter_model.safetensors"
PREFIX = "base_model.model."
LEAVES = {"lora": {"down.weight": "lora_A.weight", "up.weight": "lora_B.weight"}, "ia3": {"scale": "ia3_l"}}
PEFT_TYPES = {"lora": "LORA", "ia3": "IA3"}
BARE_TASK_TYPES = {"encoder": "FEATURE_EXTRACTION", "decoder": "CAUSAL_LM", "encoder_decoder": "SEQ_2_SEQ_LM"}
HEAD_TASK_TYPES = {"per_token": ("TOKEN_CLS", AutoModelForTokenClassification),  # by TaskKind.head_form
                   "spans": ("QUESTION_ANS", AutoModelForQuestionAnswering)}
AUTO_CLASS_NAMES = {"FEATURE_EXTRACTION": "AutoModel", "CAUSAL_LM": "AutoModelForCausalLM",
                    "SEQ_2_SEQ_LM": "AutoModelForSeq2SeqLM", "TOKEN_CLS": "AutoModelForTokenClassification",
                    "QUESTION_ANS": "AutoModelForQuestionAnswering"}
VLLM_MAX_LORA_RANKS = (8, 16, 32, 64, 128, 256, 320, 512)  # vLLM's LoRAConfig: --max-lora-rank takes one of these
# Settings that change what a PEFT adapter computes, with the value that computes what seqadapt does.
EXACT_OPTIONS = {"use_rslora": False, "use_dora": False, "bias": "none", "rank_pattern": {}, "alpha_pattern": {},
                 "layers_to_transform": None, "layer_replication": None, "lora_bias": False}


def export_peft(state: TaskState, with_head: bool) -> Package:
    """``state`` as a PEFT folder; its head inside where ``with_head`` and PEFT can hold it exactly, else refused."""
    method = state.method_name
    if method not in LEAVES:
        raise refused(f"cannot export task '{state.name}' ({method} adapters) to PEFT",
                      "PEFT has no bottleneck or parallel adapter (huggingface/peft#244 is still open)",
                      "Export it to AdapterHub instead (--to adapters), or train the task with adapter=lora or "
                      "adapter=ia3 to load it with PEFT")
    task_type, model_class = _target(state, with_head)
    config = with_labels(state.layout.config, state.spec) if model_class is not None else state.layout.config
    model = meta_model(config, model_class)
    prefix = base_prefix(model)
    if state.layout.prefix and prefix != state.layout.prefix:
        raise refused(f"cannot export the {state.spec.type} head of task '{state.name}' to PEFT",
                      f"transformers' {type(model).__name__} keeps the model under {prefix.rstrip('.')!r} and a "
                      f"{state.layout.class_name} checkpoint keeps it under {state.layout.prefix.rstrip('.')!r}, so "
                      "from_pretrained would leave the backbone's weights randomly initialised there",
                      f"Export with --no-head (task type {BARE_TASK_TYPES[state.layout.family.architecture]})")
    tensors: dict[str, torch.Tensor] = {}
    slots: dict[str, Slot] = {}
    for path, leaf, value in state.adapter_tensors():
        slot = state.layout.slot(path)
        full = state.layout.path(slot, prefix)
        slots[full] = slot
        tensors[f"{PREFIX}{full}.{LEAVES[method][leaf]}"] = _to_peft_shape(method, slot, value)
    saved = None
    if model_class is not None:
        saved = _head_module(model, state)
        weight, bias = head_linear(state.spec, state.head_tensors())
        tensors.update({f"{PREFIX}{saved}.weight": weight, f"{PREFIX}{saved}.bias": bias})
    conv = type(model.get_submodule(next(iter(slots)))).__name__ == "Conv1D"  # GPT-2 keeps weights in x out
    config_json = _config_json(state, task_type, _target_names(model, slots), saved, conv)
    load = [f"base = transformers.{AUTO_CLASS_NAMES[task_type]}.from_pretrained({state.from_pretrained_args()}"
            + (f", num_labels={len(state.spec.labels)}" if task_type == "TOKEN_CLS" else "") + ")",
            "model = peft.PeftModel.from_pretrained(base, OUT_DIR)"]
    head = (f"modules_to_save: {saved}" if saved else
            "none needed: the backbone's language-model head" if head_form(state.spec) is None else "")
    return Package("peft", {CONFIG: config_json}, {WEIGHTS: tensors}, head, load, _vllm_notes(state, task_type, saved))


def _target(state: TaskState, with_head: bool) -> tuple[str, type | None]:
    """The PEFT task type and, where the head goes in, the transformers class it loads (else seqadapt's own)."""
    form, architecture = head_form(state.spec), state.layout.family.architecture
    if not with_head or form is None:
        return BARE_TASK_TYPES[architecture], None
    if form not in HEAD_TASK_TYPES:
        raise refuse_head(state)
    if architecture == "encoder_decoder":
        raise refused(f"cannot export the {state.spec.type} head of task '{state.name}' to PEFT",
                      "seqadapt writes PEFT heads for encoder and decoder-only families only (where it has proved "
                      "them against PEFT)", "Export with --no-head (the head stays in seqadapt_head.safetensors)")
    return HEAD_TASK_TYPES[form]


def refuse_head(state: TaskState) -> ExchangeError:
    """Why PEFT cannot hold a sequence classification or regression head as seqadapt computes it."""
    rescaled = " and rescales by the training targets' mean and std" if head_form(state.spec) == "pooled_rescaled" else ""
    return refused(
        f"cannot export the {state.spec.type} head of task '{state.name}' to PEFT",
        "PEFT's SEQ_CLS puts transformers' AutoModelForSequenceClassification head on the backbone, which does not "
        f"compute what this head does (a linear layer with a bias over the {state.pooling}-pooled token states"
        f"{rescaled}): BERT-like classes read [CLS] through the pretrained pooler (dense + tanh), decoder classes "
        "score the last token without a bias",
        "Export with --no-head: the adapter alone (task type "
        f"{BARE_TASK_TYPES[state.layout.family.architecture]}) with the head beside it in seqadapt_head.safetensors, "
        "which seqadapt imports back and seqadapt_export.json describes; or --to adapters with a pooling it expresses",
    )


def with_labels(config: PretrainedConfig, spec: TaskSpec) -> PretrainedConfig:
    """``config`` with a token classification task's labels: what the class PEFT loads it into is built with."""
    config = copy.deepcopy(config)
    if head_form(spec) == "per_token":
        config.id2label = dict(enumerate(spec.labels))
        config.label2id = {label: index for index, label in enumerate(spec.labels)}
    return config


def _to_peft_shape(method: str, slot: Slot, value: torch.Tensor) -> torch.Tensor:
    """IA3's vector as PEFT shapes it: ``(1, in)`` on a feed-forward input, ``(out, 1)`` on an output."""
    if method != "ia3":
        return value
    return value.unsqueeze(0) if slot.target == "ffn" else value.unsqueeze(1)


def _head_module(model: nn.Module, state: TaskState) -> str:
    """The name of the head layer of ``model`` (a transformers task class), checked to have this head's shape."""
    heads = [(name, module) for name, module in model.named_children()
             if isinstance(module, nn.Linear) and module is not model.base_model]
    weight, bias = head_linear(state.spec, state.head_tensors())
    if len(heads) != 1 or heads[0][1].weight.shape != weight.shape or heads[0][1].bias is None:
        raise refused(f"cannot export the head of task '{state.name}' to PEFT",
                      f"{type(model).__name__}'s head layers {[(n, tuple(m.weight.shape)) for n, m in heads]} are not "
                      f"one linear layer of shape {tuple(weight.shape)} with a bias", "Export with --no-head")
    return heads[0][0]


def _target_names(model: nn.Module, slots: dict[str, Slot]) -> dict[str, str]:
    """``target_modules`` as PEFT matches them (a module name equal to an entry, or ending in ``.`` + it), each
    with what it adapts: a slot's path inside its layer where that matches exactly the adapted modules, else
    their full paths (BERT's ``output.dense`` also ends ``attention.output.dense``)."""
    names = [name for name, _ in model.named_modules()]
    chosen: dict[str, str] = {}
    for inner, target in dict.fromkeys((slot.inner, slot.target) for slot in slots.values()):
        wanted = {path for path, slot in slots.items() if slot.inner == inner}
        matched = {name for name in names if name == inner or name.endswith(f".{inner}")}
        chosen.update({name: target for name in ([inner] if matched == wanted else sorted(wanted))})
    return chosen


def _config_json(state: TaskState, task_type: str, targets: dict[str, str], saved: str | None, conv: bool
                 ) -> dict[str, Any]:
    method = state.method_name
    common = {"peft_type": PEFT_TYPES[method], "task_type": task_type, "inference_mode": True,
              "base_model_name_or_path": state.backbone.get("location"), "revision": None,
              "target_modules": list(targets), "fan_in_fan_out": conv, "modules_to_save": [saved] if saved else None}
    if method == "ia3":
        feedforward = [name for name, target in targets.items() if target == "ffn"]
        return {**common, "feedforward_modules": feedforward, "init_ia3_weights": True}
    return {**common, "r": state.method.rank, "lora_alpha": state.method.alpha, "lora_dropout": 0.0,
            "init_lora_weights": True, **EXACT_OPTIONS}


def _vllm_notes(state: TaskState, task_type: str, saved: str | None) -> list[str]:
    """Whether vLLM can serve the folder as it is, and with which --max-lora-rank."""
    if task_type != "CAUSAL_LM" or state.method_name != "lora" or saved:
        return ["vLLM serves LoRA adapters of decoder language models without modules_to_save: not this folder"]
    rank = state.method.rank
    fits = [size for size in VLLM_MAX_LORA_RANKS if size >= rank]
    if not fits:
        return [f"vLLM cannot serve rank {rank} (its largest --max-lora-rank is {VLLM_MAX_LORA_RANKS[-1]})"]
    return [f"vLLM: vllm serve {state.backbone.get('location')} --enable-lora --max-lora-rank {fits[0]} "
            "--lora-modules NAME=OUT_DIR"]

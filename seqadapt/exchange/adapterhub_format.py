"""AdapterHub ``adapters``' folder format, both ways: ``adapter_config.json`` + ``adapter.safetensors``, and a head
as ``head_config.json`` + ``model_head.safetensors``.

Each seqadapt method maps onto one ``adapters`` config whose computation is the same, term for term (read from
``adapters`` 1.3's ``methods/modeling.py`` and ``methods/lora.py``, and proved against it in CI):

- bottleneck: ``BnConfig`` with ``original_ln_before=False, original_ln_after=True, residual_before_ln=True``
  (the adapter reads the projection's output and adds its own residual; the block's residual and LayerNorm
  follow), ``mh_adapter`` for the attention adapter (Houlsby placement), ``output_adapter`` for the
  feed-forward one, ``scaling=1.0``;
- parallel: the same with ``is_parallel=True`` and seqadapt's ``scaling`` (post-LN families only, see below);
- LoRA: ``LoRAConfig`` with ``composition_mode="add"``, ``attn_matrices`` from query/key/value and the
  feed-forward output projection by the flag that reaches it in that family;
- (IA)^3: ``composition_mode="scale"`` on keys and values (``adapters`` rescales the feed-forward block's first
  projection's output, before the activation; seqadapt and PEFT rescale the input of its output projection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from seqadapt.exchange.errors import refused
from seqadapt.exchange.heads import head_form, head_linear
from seqadapt.exchange.package import CONFIG, Package
from seqadapt.exchange.task_state import TaskState

WEIGHTS = "adapter.safetensors"
HEAD_CONFIG = "head_config.json"
HEAD_WEIGHTS = "model_head.safetensors"
VERSION = "adapters.1.3.0"  # the format written: the release it is proved against


@dataclass(frozen=True)
class HubLayout:
    """Where ``adapters`` puts a family's modules: the module holding each bottleneck adapter (inside a layer),
    the LoRA flag reaching the feed-forward output projection, whether its parallel adapter reads what seqadapt's
    does (the feed-forward block's input: true in post-LN blocks, where that is the residual stream), and its
    flexible-heads class with the attribute that holds the base model there."""

    containers: dict[str, str]
    ffn_lora: str
    parallel_exact: bool
    head_class: str
    head_prefix: str


_BERT_LIKE = {"containers": {"attention": "attention.output", "ffn": "output"}, "ffn_lora": "output_lora",
              "parallel_exact": True}
_LLAMA_LIKE = {"containers": {"attention": "attention_adapters", "ffn": "output_adapters"},
               "ffn_lora": "intermediate_lora", "parallel_exact": False}  # adapters wraps down_proj as 'intermediate'
LAYOUTS = {
    "bert": HubLayout(**_BERT_LIKE, head_class="BertAdapterModel", head_prefix="bert."),
    "roberta": HubLayout(**_BERT_LIKE, head_class="RobertaAdapterModel", head_prefix="roberta."),
    "xlm-roberta": HubLayout(**_BERT_LIKE, head_class="XLMRobertaAdapterModel", head_prefix="roberta."),
    "electra": HubLayout(**_BERT_LIKE, head_class="ElectraAdapterModel", head_prefix="electra."),
    "llama": HubLayout(**_LLAMA_LIKE, head_class="LlamaAdapterModel", head_prefix="model."),
    "mistral": HubLayout(**_LLAMA_LIKE, head_class="MistralAdapterModel", head_prefix="model."),
}
ACTIVATIONS = ("gelu", "relu", "tanh", "swish")  # the same functions under the same names in both libraries
MATRICES = {"query": "q", "key": "k", "value": "v"}
BOTTLENECK_LEAVES = {"down.weight": "adapter_down.0.weight", "down.bias": "adapter_down.0.bias",
                     "up.weight": "adapter_up.weight", "up.bias": "adapter_up.bias"}
LORA_LEAVES = {"lora": {"down.weight": "lora_A", "up.weight": "lora_B"}, "ia3": {"scale": "lora_B"}}
# BnConfig values that make ``adapters`` compute what seqadapt does (besides placement, size, activation, scaling)
BN_EXACT = {"original_ln_before": False, "original_ln_after": True, "residual_before_ln": True,
            "adapter_residual_before_ln": False, "ln_before": False, "ln_after": False, "use_gating": False,
            "phm_layer": False, "leave_out": [], "stochastic_depth": 0.0, "inv_adapter": None, "cross_adapter": False,
            "dropout": 0.0}
LORA_EXACT = {"use_gating": False, "use_dora": False, "leave_out": [], "vera_d": None, "vera_b": None, "dtype": None,
              "dropout": 0.0}
BN_DEFAULTS = {"factorized_phm_W": True, "factorized_phm_rule": False, "hypercomplex_nonlinearity": "glorot-uniform",
               "inv_adapter_reduction_factor": None, "learn_phm": True, "phm_bias": True, "phm_c_init": "normal",
               "phm_dim": 4, "phm_init_range": 0.0001, "phm_rank": 1, "shared_W_phm": False, "shared_phm_rule": True,
               "init_weights_seed": None}  # written as adapters writes them; unused without phm_layer
HEAD_TYPES = {"pooled": "classification", "per_token": "tagging", "spans": "question_answering"}  # by head_form
QA_LABELS = ["LABEL_0", "LABEL_1"]  # what adapters names a QA head's start and end logits


def hub_layout(model_type: str, what: str) -> HubLayout:
    if model_type not in LAYOUTS:
        raise refused(what, f"seqadapt knows where adapters puts modules in {sorted(LAYOUTS)}, not in model_type "
                      f"{model_type!r}", "Use PEFT (--to peft) for a LoRA or IA3 task")
    return LAYOUTS[model_type]


def export_adapterhub(state: TaskState, with_head: bool) -> Package:
    """``state`` as an ``adapters`` folder; its head inside where ``with_head`` and a head type expresses it."""
    what = f"cannot export task '{state.name}' to AdapterHub"
    layout = hub_layout(state.layout.model_type, what)
    method, tensors = state.method_name, {}
    config = hub_config(state, layout, what)
    for path, leaf, value in state.adapter_tensors():
        slot = state.layout.slot(path)
        if method in ("bottleneck", "parallel"):
            container = f"{state.layout.prefix}{slot.stack.layers}.{slot.layer}.{layout.containers[slot.target]}"
            tensors[f"{container}.adapters.{state.name}.{BOTTLENECK_LEAVES[leaf]}"] = value
        else:
            tensors[f"{path}.loras.{state.name}.{LORA_LEAVES[method][leaf]}"] = value.unsqueeze(1) if method == "ia3" else value
    json_files = {CONFIG: _described(state, config, state.layout.class_name)}
    tensor_files = {WEIGHTS: tensors}
    form = head_form(state.spec)
    head, notes = ("none needed: the backbone's language-model head" if form is None else ""), []
    if with_head and form is not None:
        json_files[HEAD_CONFIG] = _described(state, _head_config(state, what), layout.head_class)
        weight, bias = head_linear(state.spec, state.head_tensors())
        tensor_files[HEAD_WEIGHTS] = {f"heads.{state.name}.1.weight": weight, f"heads.{state.name}.1.bias": bias}
        head = f"{HEAD_CONFIG}: a {json_files[HEAD_CONFIG]['config']['head_type']} head"
        if state.layout.family.architecture == "decoder" and form == "pooled":
            notes.append("the head reads each row's last token that is not config.pad_token_id: set it to the "
                         "tokenizer's pad token (seqadapt pads decoders with EOS) or pass rows without padding")
    if HEAD_CONFIG in json_files:
        load = [f"model = adapters.AutoAdapterModel.from_pretrained({state.from_pretrained_args()})",
                "model.load_adapter(OUT_DIR, set_active=True, use_safetensors=True)  # loads its head too"]
    else:
        load = [f"model = transformers.{state.layout.class_name}.from_pretrained({state.from_pretrained_args()}); adapters.init(model)",
                "model.set_active_adapters(model.load_adapter(OUT_DIR, use_safetensors=True))"]
    return Package("adapters", json_files, tensor_files, head, load, notes)


def hub_config(state: TaskState, layout: HubLayout, what: str) -> dict[str, Any]:
    """The ``config`` section of ``adapter_config.json`` that computes what ``state``'s method computes."""
    method, config, hidden = state.method_name, state.method, state.layout.config.hidden_size
    if method == "bottleneck":
        if config.train_layer_norm:
            raise refused(what, "adapter.train_layer_norm gives each task its own copy of the block's LayerNorms, "
                          "and adapters has no such copy (its ln_before/ln_after add new LayerNorms inside the "
                          "adapter)", "Train the task with adapter.train_layer_norm=false to export it")
        return {**BN_DEFAULTS, **BN_EXACT, "mh_adapter": config.placement == "houlsby", "output_adapter": True,
                "is_parallel": False, "scaling": 1.0, "non_linearity": config.non_linearity, "init_weights": "bert",
                "reduction_factor": reduction_factor(hidden, config.bottleneck_size(hidden), what)}
    if method == "parallel":
        if not layout.parallel_exact:
            raise refused(what, f"adapters' parallel adapter in a {state.layout.model_type} block reads the residual "
                          "stream before the feed-forward block's LayerNorm; seqadapt's reads the normalised input "
                          "of the feed-forward block", "Export a bottleneck or LoRA task of this backbone instead")
        return {**BN_DEFAULTS, **BN_EXACT, "mh_adapter": False, "output_adapter": True, "is_parallel": True,
                "scaling": float(config.scaling), "non_linearity": config.non_linearity, "init_weights": "mam_adapter",
                "reduction_factor": reduction_factor(hidden, config.bottleneck, what)}
    targets = set(config.targets)
    if method == "ia3" and "ffn" in targets:
        raise refused(what, "(IA)^3 here rescales the input of the feed-forward output projection (as PEFT does); "
                      "adapters' IA3 can only rescale the first feed-forward projection's output, before the activation",
                      "Export it to PEFT (--to peft), or train with adapter.targets=[key,value] to export to adapters")
    if "attention" in targets:
        raise refused(what, "adapters' LoRA reaches self-attention's query, key and value and the feed-forward "
                      "projections, not the attention output projection", "Export it to PEFT (--to peft)")
    matrices = [short for target, short in MATRICES.items() if target in targets]
    lora = {"architecture": "lora", "selfattn_lora": bool(matrices), "intermediate_lora": False, "output_lora": False,
            "attn_matrices": matrices, "init_weights_seed": None, **LORA_EXACT}
    if method == "ia3":
        return {**lora, "r": 1, "alpha": 1, "composition_mode": "scale", "init_weights": "ia3"}
    return {**lora, layout.ffn_lora: "ffn" in targets, "r": config.rank, "alpha": config.alpha,
            "composition_mode": "add", "init_weights": "lora"}


def reduction_factor(hidden: int, bottleneck: int, what: str) -> float:
    """The ``reduction_factor`` from which adapters computes ``int(hidden // factor) == bottleneck`` exactly."""
    factor = hidden / bottleneck
    for candidate in (factor, math.nextafter(factor, 0.0)):
        if int(hidden // candidate) == bottleneck:
            return candidate
    raise refused(what, f"adapters sizes a bottleneck as int(hidden_size // reduction_factor), and no factor gives "
                  f"{bottleneck} for hidden size {hidden}", "Train with a bottleneck that divides the hidden size")


def _head_config(state: TaskState, what: str) -> dict[str, Any]:
    form, labels = head_form(state.spec), list(state.spec.labels)
    if form not in HEAD_TYPES:
        raise refused(what, "adapters' heads have no regression head that rescales by the training targets' mean "
                      "and std, as seqadapt's does", "Export with --no-head (the head stays in "
                      "seqadapt_head.safetensors, which seqadapt imports back)")
    read = "last" if state.layout.family.architecture == "decoder" else "cls"
    if form == "pooled" and state.pooling != read:
        raise refused(what, f"adapters' classification head reads the {'last' if read == 'last' else 'first'} token "
                      f"of a {state.layout.model_type} model, and this task's head reads the {state.pooling}-pooled "
                      "token states", f"Export with --no-head, or train the task with pooling={read}")
    if form == "spans":
        labels = QA_LABELS
    head = {"head_type": HEAD_TYPES[form], "num_labels": len(labels), "layers": 1, "activation_function": "tanh",
            "label2id": {label: index for index, label in enumerate(labels)}, "dropout_prob": None}
    return {**head, "use_pooler": False, "bias": True} if form == "pooled" else head


def _described(state: TaskState, config: dict[str, Any], model_class: str) -> dict[str, Any]:
    """A config as ``adapters`` writes it: the section, with the model it belongs to and the format version."""
    return {"config": config, "hidden_size": state.layout.config.hidden_size, "model_class": model_class,
            "model_name": state.backbone.get("location") or state.backbone.get("name", ""),
            "model_type": state.layout.model_type, "name": state.name, "version": VERSION}

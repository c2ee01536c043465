"""Where each adapter method goes in each family, written out here from the reference libraries rather than
read from seqadapt's own families table, and compared with the modules the injector actually wrapped.

Sources (cited per family below):
- PEFT, ``huggingface/peft`` src/peft/utils/constants.py: ``TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING``
  (LoRA's default targets), ``..._IA3_TARGET_MODULES_MAPPING`` / ``..._IA3_FEEDFORWARD_MODULES_MAPPING`` ((IA)^3),
  ``..._ADALORA_TARGET_MODULES_MAPPING`` (every projection of a layer), ``..._LNTUNING_TARGET_MODULES_MAPPING``
  (the per-layer LayerNorms).
- AdapterHub, ``adapter-hub/adapters``: src/adapters/models/<family>/modeling_<family>.py (where the
  ``attention_adapters`` ("mh_adapter") and ``output_adapters`` ("output_adapter") bottlenecks run, and which
  LayerNorm follows them), src/adapters/wrappers/interfaces.py (``attn_o_proj``, ``layer_output_proj``,
  ``layer_pre_ffn`` per model) and src/adapters/configuration/adapter_config.py (``DoubleSeqBnConfig``, Houlsby:
  ``mh_adapter`` and ``output_adapter``; ``SeqBnConfig``, Pfeiffer: ``output_adapter`` only; ``ParBnConfig``:
  ``output_adapter``, parallel; ``cross_adapter`` off by default, so cross-attention is never adapted).

Where seqadapt deliberately differs from a reference, the family's comment says so. PEFT matches its names as
suffixes of any module, cross-attention included; seqadapt adapts self-attention only (AdapterHub's default),
so its expected paths are PEFT's names inside the self-attention module.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import torch
from transformers import AutoConfig, AutoModel

from seqadapt.adapters import AdapterConfig, IA3Config, LoraConfig, ParallelConfig, TaskAdapters
from seqadapt.adapters.ia3 import InputSlot
from seqadapt.adapters.layer import AdapterSlot, InputTap, SideSlot, TaskLayerNorm
from seqadapt.backbone import auto_class
from tests.conftest import TINY, TINY_DISTILBERT
from tests.families.tiny import CONFIGS

# What a wrapper does to the module it replaces.
AFTER = "after"  # the module's output goes through the task's module (bottleneck; (IA)^3 on keys and values)
BESIDE = "beside"  # the task's module's output is added to the module's (LoRA; a parallel adapter)
INPUT = "input"  # the task's module rescales the module's input ((IA)^3 on the feed-forward activations)
TAP = "tap"  # the module's input is read by a parallel adapter
NORM = "norm"  # the task gets its own copy of this LayerNorm (adapter.train_layer_norm)
KINDS = {AdapterSlot: AFTER, SideSlot: BESIDE, InputSlot: INPUT, InputTap: TAP, TaskLayerNorm: NORM}


@dataclass(frozen=True)
class Layer:
    """One stack's layer, as module paths inside it, from the references (not from seqadapt's table)."""

    q: str
    k: str
    v: str
    attention_out: str  # self-attention's output projection: the Houlsby attention adapter follows it
    ffn_out: str  # the feed-forward block's output projection: every bottleneck adapter follows it
    ffn_tap: str  # a module whose input is the feed-forward block's input (what a parallel adapter reads)
    attention_norm: str | None  # the LayerNorms a task copies with train_layer_norm
    ffn_norm: str | None


_LLAMA = Layer("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.down_proj", "mlp",
               "input_layernorm", "post_attention_layernorm")
_BERT = Layer("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense",
              "output.dense", "intermediate", "attention.output.LayerNorm", "output.LayerNorm")
_BART = Layer("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj", "fc2", "fc1",
              "self_attn_layer_norm", "final_layer_norm")


def _t5(ffn: str) -> Layer:
    return Layer("layer.0.SelfAttention.q", "layer.0.SelfAttention.k", "layer.0.SelfAttention.v", "layer.0.SelfAttention.o",
                 f"{ffn}.DenseReluDense.wo", f"{ffn}.DenseReluDense", "layer.0.layer_norm", f"{ffn}.layer_norm")


# model_type -> {layers' path in model.base_model: their layer}
EXPECTED: dict[str, dict[str, Layer]] = {
    # AdapterHub models/bert/modeling_bert.py: BertSelfOutputWithAdapters runs the mh_adapter after `dense`, before
    # its `LayerNorm`; BertOutputWithAdapters the output_adapter after `dense`, before its `LayerNorm`. PEFT LoRA
    # bert: query, value; IA3 bert: key, value, output.dense (feed-forward: output.dense). The parallel adapter
    # reads the input of AdapterHub's layer_intermediate_proj, intermediate.dense, tapped at BertIntermediate.
    "bert": {"encoder.layer": _BERT},
    "roberta": {"encoder.layer": _BERT},  # AdapterHub models/roberta/modeling_roberta.py: BERT's classes
    # AdapterHub models/distilbert/modeling_distilbert.py: attention_adapters after self.attention (out_lin) with
    # sa_layer_norm, output_adapters after self.ffn (lin2) with output_layer_norm; mixin_distilbert.py wraps
    # q_lin/k_lin/v_lin for LoRA and ffn.lin1 as "intermediate".
    "distilbert": {"transformer.layer": Layer("attention.q_lin", "attention.k_lin", "attention.v_lin", "attention.out_lin",
                                              "ffn.lin2", "ffn", "sa_layer_norm", "output_layer_norm")},
    # AdapterHub models/gpt2/modeling_gpt2.py: attention_adapters after self.attn (its c_proj), output_adapters after
    # self.mlp (mlp.c_proj). PEFT LoRA gpt2: c_attn (fused q, k, v: adapted once); IA3 gpt2: c_attn, mlp.c_proj
    # (feed-forward: mlp.c_proj); LNTuning gpt2: ln_1, ln_2. The MLP's input is tapped at `mlp` (c_fc reads it).
    "gpt2": {"h": Layer("attn.c_attn", "attn.c_attn", "attn.c_attn", "attn.c_proj", "mlp.c_proj", "mlp", "ln_1", "ln_2")},
    # AdapterHub models/llama/modeling_llama.py: attention_adapters after self.self_attn (o_proj), output_adapters
    # after self.mlp (down_proj). PEFT LoRA llama: q_proj, v_proj; IA3 llama: k_proj, v_proj, down_proj
    # (feed-forward: down_proj); LNTuning llama: input_layernorm, post_attention_layernorm. The MLP's input
    # (AdapterHub interfaces: layer_pre_ffn = post_attention_layernorm's output) is tapped at `mlp`, which
    # gate_proj and up_proj both read.
    "llama": {"layers": _LLAMA},
    "mistral": {"layers": _LLAMA},  # AdapterHub models/mistral/mixin_mistral.py; PEFT mistral as llama
    # AdapterHub wrappers/interfaces.py "qwen2": attn_o_proj o_proj, layer_output_proj mlp.down_proj, layer_pre_ffn
    # post_attention_layernorm. PEFT LoRA qwen2: q_proj, v_proj. Differs from PEFT: IA3 qwen2 there rescales
    # q_proj, v_proj; seqadapt rescales keys and values as the (IA)^3 paper does (PEFT's llama choice); LNTuning
    # qwen2 lists post_attention_layernorm only, seqadapt copies both of Qwen2's llama-shaped norms.
    "qwen2": {"layers": _LLAMA},
    # AdapterHub wrappers/interfaces.py "gemma2"/"gemma3_text" (Gemma's module names): o_proj, mlp.down_proj. PEFT
    # LoRA gemma: q_proj, v_proj; LNTuning gemma: input_layernorm, post_attention_layernorm. IA3: as for qwen2.
    "gemma": {"layers": _LLAMA},
    # AdapterHub wrappers/interfaces.py "phi": attn_o_proj `dense`, layer_output_proj mlp.fc2, one LayerNorm
    # (input_layernorm) read by attention and MLP alike, so no ffn norm. PEFT LoRA phi: q_proj, v_proj (and fc1,
    # fc2; seqadapt's default targets are query and value only); IA3 phi: q_proj, v_proj, fc2 (seqadapt: keys).
    "phi": {"layers": Layer("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.dense", "mlp.fc2", "mlp",
                            "input_layernorm", None)},
    # Neither reference maps phi3; transformers models/phi3/modeling_phi3.py: Phi3Attention(qkv_proj fused, o_proj),
    # Phi3MLP(gate_up_proj, down_proj), input_layernorm and post_attention_layernorm: Llama's layout with the fused
    # projection adapted once, as PEFT does for gpt2's c_attn.
    "phi3": {"layers": Layer("self_attn.qkv_proj", "self_attn.qkv_proj", "self_attn.qkv_proj", "self_attn.o_proj",
                             "mlp.down_proj", "mlp", "input_layernorm", "post_attention_layernorm")},
    # AdapterHub models/t5/modeling_t5.py: T5LayerSelfAttentionWithAdapters (layer[0]) runs the mh_adapter after
    # SelfAttention (its `o`); T5LayerFFWithAdapters (layer[-1]: layer.1 in the encoder, layer.2 in the decoder,
    # after cross-attention's layer.1) the output_adapter after DenseReluDense (its `wo`). PEFT LoRA t5: q, v; IA3
    # t5: k, v, wo (feed-forward: wo); LNTuning t5: layer_norm. mt5 differs in PEFT's IA3 (wi_1, no feed-forward
    # module); seqadapt rescales the input of wo in both, the paper's l_ff * act(W_1 x).
    "t5": {"encoder.block": _t5("layer.1"), "decoder.block": _t5("layer.2")},
    "mt5": {"encoder.block": _t5("layer.1"), "decoder.block": _t5("layer.2")},
    # AdapterHub models/bart/modeling_bart.py: attention_adapters after self.self_attn (out_proj) with
    # self_attn_layer_norm, output_adapters after self.fc2 with final_layer_norm, in encoder and decoder layers
    # (cross_attention_adapters off by default). PEFT LoRA bart: q_proj, v_proj; AdaLoRA bart: q_proj, k_proj,
    # v_proj, out_proj, fc1, fc2; IA3 bart: q_proj, v_proj, fc2 (seqadapt: keys, as the paper). mbart: AdapterHub
    # models/mbart/modeling_mbart.py places them alike (its norms come before each sublayer).
    "bart": {"encoder.layers": _BART, "decoder.layers": _BART},
    "mbart": {"encoder.layers": _BART, "decoder.layers": _BART},
}
LAYERS = 2  # every tiny config below has two layers per stack


def expected_per_layer(method: str, layer: Layer) -> dict[str, str]:
    """What each method wraps in one layer, by the method's definition (see the sources above)."""
    if method == "houlsby":  # DoubleSeqBnConfig: mh_adapter and output_adapter
        return {layer.attention_out: AFTER, layer.ffn_out: AFTER}
    if method == "houlsby_layer_norm":
        norms = {norm: NORM for norm in (layer.attention_norm, layer.ffn_norm) if norm is not None}
        return {**expected_per_layer("houlsby", layer), **norms}
    if method == "pfeiffer":  # SeqBnConfig: output_adapter only
        return {layer.ffn_out: AFTER}
    if method == "lora":  # PEFT's default targets: query and value
        return {layer.q: BESIDE, layer.v: BESIDE}
    if method == "lora_everywhere":
        return {path: BESIDE for path in (layer.q, layer.k, layer.v, layer.attention_out, layer.ffn_out)}
    if method == "ia3":  # l_k * K, l_v * V, l_ff * act(W_1 x): keys and values rescaled, and the input of W_2
        return {layer.k: AFTER, layer.v: AFTER, layer.ffn_out: INPUT}
    if method == "parallel":  # ParBnConfig: beside the feed-forward block, reading its input
        return {layer.ffn_out: BESIDE, layer.ffn_tap: TAP}
    raise AssertionError(method)


METHODS = {
    "houlsby": AdapterConfig(bottleneck=4),
    "houlsby_layer_norm": AdapterConfig(bottleneck=4, train_layer_norm=True),
    "pfeiffer": AdapterConfig(bottleneck=4, placement="pfeiffer"),
    "lora": LoraConfig(rank=2),
    "lora_everywhere": LoraConfig(rank=2, targets=("query", "key", "value", "attention", "ffn")),
    "ia3": IA3Config(),
    "parallel": ParallelConfig(bottleneck=4),
}


def tiny(model_type: str) -> torch.nn.Module:
    if model_type in ("bert", "roberta", "distilbert"):
        config = AutoConfig.for_model(model_type, vocab_size=64, **(TINY_DISTILBERT if model_type == "distilbert" else TINY))
        return AutoModel.from_config(config)
    ids = {"pad_token_id": 0, "bos_token_id": 0, "eos_token_id": 0}  # inside the tiny vocabulary (Phi-3's are not)
    return auto_class(model_type).from_config(AutoConfig.for_model(model_type, vocab_size=64, **CONFIGS[model_type], **ids))


def wrapped(model: torch.nn.Module) -> dict[str, str]:
    """Every module the injector replaced, by its original path in the base model, and what its wrapper does."""
    return {name.replace(".base_layer", ""): KINDS[type(module)]
            for name, module in model.base_model.named_modules() if type(module) in KINDS}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("model_type", sorted(EXPECTED))
def test_each_method_wraps_the_modules_the_reference_libraries_name(model_type, method):
    model = tiny(model_type)
    TaskAdapters(model, METHODS[method])
    expected = {f"{stack}.{i}.{path}": kind for stack, layer in EXPECTED[model_type].items() for i in range(LAYERS)
                for path, kind in expected_per_layer(method, layer).items()}
    assert wrapped(model) == expected

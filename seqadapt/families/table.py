"""The supported families, table-driven (as PEFT maps model types to target modules): ``model_type`` -> family.

Adding a family whose blocks have the same shape as one here is one line; a new shape is one :class:`Stack`.
Bottleneck adapters go after self-attention and after the feed-forward block of every layer of every stack,
LoRA and (IA)^3 on self-attention's projections (cross-attention is left alone, as in AdapterHub's default configs).
"""

from __future__ import annotations

from dataclasses import replace

from seqadapt.families.family import Family, Stack


def _qkv(prefix: str, query: str, key: str, value: str) -> tuple[str, str, str]:
    return f"{prefix}{query}", f"{prefix}{key}", f"{prefix}{value}"


_BERT = Stack("encoder.layer", "attention.output.dense", "output.dense", "attention.output.LayerNorm", "output.LayerNorm",
              *_qkv("attention.self.", "query", "key", "value"), "intermediate")
_DISTILBERT = Stack("transformer.layer", "attention.out_lin", "ffn.lin2", "sa_layer_norm", "output_layer_norm",
                    *_qkv("attention.", "q_lin", "k_lin", "v_lin"), "ffn")
_GPT2 = Stack("h", "attn.c_proj", "mlp.c_proj", "ln_1", "ln_2", *_qkv("attn.", "c_attn", "c_attn", "c_attn"), "mlp")
_LLAMA = Stack("layers", "self_attn.o_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm",
               *_qkv("self_attn.", "q_proj", "k_proj", "v_proj"), "mlp")
_PHI3 = replace(_LLAMA, query="self_attn.qkv_proj", key="self_attn.qkv_proj", value="self_attn.qkv_proj")
# Phi runs attention and the MLP in parallel off one LayerNorm: it is copied once, with the attention slot.
_PHI = Stack("layers", "self_attn.dense", "mlp.fc2", "input_layernorm", None, *_qkv("self_attn.", "q_proj", "k_proj", "v_proj"),
             "mlp")
_T5_ENCODER = Stack("encoder.block", "layer.0.SelfAttention.o", "layer.1.DenseReluDense.wo", "layer.0.layer_norm",
                    "layer.1.layer_norm", *_qkv("layer.0.SelfAttention.", "q", "k", "v"), "layer.1.DenseReluDense")
_T5_DECODER = Stack("decoder.block", "layer.0.SelfAttention.o", "layer.2.DenseReluDense.wo", "layer.0.layer_norm",
                    "layer.2.layer_norm", *_qkv("layer.0.SelfAttention.", "q", "k", "v"), "layer.2.DenseReluDense")
_BART_ENCODER = Stack("encoder.layers", "self_attn.out_proj", "fc2", "self_attn_layer_norm", "final_layer_norm",
                      *_qkv("self_attn.", "q_proj", "k_proj", "v_proj"), "fc1")
_BART_DECODER = replace(_BART_ENCODER, layers="decoder.layers")

def _decoder(stack: Stack) -> Family:
    """A decoder-only family: loaded with its LM head, heads read its decoder's last real token."""
    return Family("decoder", "decoder", "last", (stack,))


_ENCODER = Family("encoder", "model", "mean", (_BERT,))
_DECODER = _decoder(_LLAMA)
_T5 = Family("encoder_decoder", "encoder", "mean", (_T5_ENCODER, _T5_DECODER))
_BART = Family("encoder_decoder", "decoder", "last", (_BART_ENCODER, _BART_DECODER))

FAMILIES: dict[str, Family] = {
    "bert": _ENCODER,  # includes MiniLM checkpoints such as all-MiniLM-L6-v2
    "roberta": _ENCODER,
    "xlm-roberta": _ENCODER,
    "electra": _ENCODER,
    "camembert": _ENCODER,
    "distilbert": Family("encoder", "model", "mean", (_DISTILBERT,)),
    "gpt2": _decoder(_GPT2),
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "gemma": _DECODER,
    "phi3": _decoder(_PHI3),
    "phi": _decoder(_PHI),
    "t5": _T5,
    "mt5": _T5,
    "bart": _BART,
    "mbart": _BART,
}

# Any other model_type still loads and runs (e.g. full fine-tuning) as an encoder; it cannot take adapters.
UNKNOWN = Family("encoder", "model", "mean", ())

"""The supported families, table-driven (as PEFT maps model types to target modules): ``model_type`` -> family.

Adding a family whose blocks have the same shape as one here is one line; a new shape is one :class:`Stack`.
Adapters go after self-attention and after the feed-forward block of every layer of every stack (cross-
attention is left alone, as in AdapterHub's default bottleneck configs).
"""

from __future__ import annotations

from seqadapt.families.family import Family, Stack

_BERT = Stack("encoder.layer", "attention.output.dense", "output.dense", "attention.output.LayerNorm", "output.LayerNorm")
_DISTILBERT = Stack("transformer.layer", "attention.out_lin", "ffn.lin2", "sa_layer_norm", "output_layer_norm")
_GPT2 = Stack("h", "attn.c_proj", "mlp.c_proj", "ln_1", "ln_2")
_LLAMA = Stack("layers", "self_attn.o_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm")
# Phi runs attention and the MLP in parallel off one LayerNorm: it is copied once, with the attention slot.
_PHI = Stack("layers", "self_attn.dense", "mlp.fc2", "input_layernorm", None)
_T5_ENCODER = Stack("encoder.block", "layer.0.SelfAttention.o", "layer.1.DenseReluDense.wo", "layer.0.layer_norm",
                    "layer.1.layer_norm")
_T5_DECODER = Stack("decoder.block", "layer.0.SelfAttention.o", "layer.2.DenseReluDense.wo", "layer.0.layer_norm",
                    "layer.2.layer_norm")
_BART_ENCODER = Stack("encoder.layers", "self_attn.out_proj", "fc2", "self_attn_layer_norm", "final_layer_norm")
_BART_DECODER = Stack("decoder.layers", "self_attn.out_proj", "fc2", "self_attn_layer_norm", "final_layer_norm")

_ENCODER = Family("encoder", "model", "mean", (_BERT,))
_DECODER = Family("decoder", "decoder", "last", (_LLAMA,))
_T5 = Family("encoder_decoder", "encoder", "mean", (_T5_ENCODER, _T5_DECODER))
_BART = Family("encoder_decoder", "decoder", "last", (_BART_ENCODER, _BART_DECODER))

FAMILIES: dict[str, Family] = {
    "bert": _ENCODER,  # includes MiniLM checkpoints such as all-MiniLM-L6-v2
    "roberta": _ENCODER,
    "xlm-roberta": _ENCODER,
    "electra": _ENCODER,
    "camembert": _ENCODER,
    "distilbert": Family("encoder", "model", "mean", (_DISTILBERT,)),
    "gpt2": Family("decoder", "decoder", "last", (_GPT2,)),
    "llama": _DECODER,
    "mistral": _DECODER,
    "qwen2": _DECODER,
    "gemma": _DECODER,
    "phi3": _DECODER,
    "phi": Family("decoder", "decoder", "last", (_PHI,)),
    "t5": _T5,
    "mt5": _T5,
    "bart": _BART,
    "mbart": _BART,
}

# Any other model_type still loads and runs (e.g. full fine-tuning) as an encoder; it cannot take adapters.
UNKNOWN = Family("encoder", "model", "mean", ())

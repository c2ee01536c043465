"""What seqadapt must know about one model family: where adapters go, which auto class loads it, and which
token states a task's head reads."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Architecture = Literal["encoder", "decoder", "encoder_decoder"]
StatesFrom = Literal["model", "encoder", "decoder"]


@dataclass(frozen=True)
class Stack:
    """One stack of transformer layers, as dotted module paths.

    ``layers`` is read from the model's base (``model.base_model``: ``GPT2Model`` inside ``GPT2LMHeadModel``),
    the rest from each layer. ``attention`` and ``ffn`` are the output projections of self-attention and of
    the feed-forward block, which adapters follow (Houlsby et al. 2019; Pfeiffer: ``ffn`` only).
    ``attention_norm`` and ``ffn_norm`` are the LayerNorms a task gets its own copy of with
    ``adapter.train_layer_norm`` (the sublayer's own norm: after it in post-LN models such as BERT and BART,
    before it in pre-LN ones such as GPT-2, Llama and T5); ``None`` where the sublayer has none of its own.
    ``query``, ``key`` and ``value`` are self-attention's input projections (LoRA and (IA)^3 act on them; one
    fused projection, such as GPT-2's ``c_attn``, is named three times and adapted once), ``ffn_input`` the
    module that first reads the feed-forward block's input (a parallel adapter reads the same input).
    """

    layers: str
    attention: str
    ffn: str
    attention_norm: str | None
    ffn_norm: str | None
    query: str
    key: str
    value: str
    ffn_input: str

    def projection(self, target: str) -> str:
        """The path of a named target: ``query``, ``key``, ``value``, ``attention`` (output) or ``ffn`` (output)."""
        if target not in TARGETS:
            raise ValueError(f"unknown adapter target '{target}'; choose from {TARGETS}")
        return getattr(self, target)


TARGETS = ("query", "key", "value", "attention", "ffn")


@dataclass(frozen=True)
class Family:
    """How one family of ``model_type``s is loaded, adapted and read.

    ``architecture`` picks the auto class (encoder: ``AutoModel``; decoder: ``AutoModelForCausalLM``;
    encoder-decoder: ``AutoModelForSeq2SeqLM``, so the language-model head stays available). ``states_from``
    says which token states heads read: the whole model's (encoders), the encoder stack's (T5: classify from
    the encoder, as T5's encoder-only uses do) or the decoder's (decoder-only models; BART, whose decoder
    reads the whole input, as ``BartForSequenceClassification`` does). ``pooling`` is what ``pooling: auto``
    means for it: ``mean`` over real tokens, or the ``last`` real token, the only one a causal decoder lets
    see the whole input (as ``AutoModelForSequenceClassification`` does for GPT-2 and Llama).
    ``stacks`` are where adapters go; an empty tuple means seqadapt cannot place adapters in it.
    """

    architecture: Architecture
    states_from: StatesFrom
    pooling: Literal["mean", "last"]
    stacks: tuple[Stack, ...]

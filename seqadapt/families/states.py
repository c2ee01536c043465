"""The token states a task's head reads, run the way each family needs (see :class:`Family.states_from`)."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from seqadapt.families.family import Family


def real_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position ids counted over real tokens only (0 for padding before the first)."""
    return (mask.long().cumsum(-1) - 1).clamp(min=0)


def last_real(mask: torch.Tensor) -> torch.Tensor:
    """Each row's index of its last real token, with left or right padding."""
    return (mask.long() * torch.arange(mask.shape[1], device=mask.device)).argmax(dim=1)


class TokenStates(NamedTuple):
    last: torch.Tensor  # [B, T, d]: what heads read
    hidden_states: tuple[torch.Tensor, ...] | None  # every layer's, embeddings first, when asked for


def token_states(
    model: nn.Module,
    family: Family,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    token_type_ids: torch.Tensor | None = None,
    hidden_states: bool = False,
) -> TokenStates:
    """One pass under the current adapter routing; ``hidden_states`` also returns each layer's states.

    Decoder-only models get position ids counted over real tokens only, so a left-padded row gives the same
    states as the same row right-padded (a causal model never lets a real token see the padding after it).
    No key/value cache is built: nothing here generates.
    """
    if family.states_from == "model":
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids
        out = model(**inputs, output_hidden_states=hidden_states)
        return TokenStates(out.last_hidden_state, out.hidden_states)
    if family.states_from == "encoder":
        out = model.get_encoder()(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=hidden_states)
        return TokenStates(out.last_hidden_state, out.hidden_states)
    base = model.base_model
    if family.architecture == "decoder":
        out = base(input_ids=input_ids, attention_mask=attention_mask, position_ids=real_positions(attention_mask), use_cache=False,
                   output_hidden_states=hidden_states)
        return TokenStates(out.last_hidden_state, out.hidden_states)
    # encoder-decoder read from the decoder (BART): the decoder's input is the input shifted right
    out = base(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, output_hidden_states=hidden_states)
    return TokenStates(out.last_hidden_state, out.decoder_hidden_states)


def read_stack(model: nn.Module, family: Family) -> nn.ModuleList:
    """The layers of the stack whose states heads read (the decoder's for decoders and BART, else the first)."""
    if not family.stacks:
        raise ValueError(f"seqadapt does not know the layers of {type(model).__name__} "
                         f"(model_type={model.config.model_type!r}); see the families table in docs/concepts/model-families.md")
    stack = family.stacks[-1] if family.states_from == "decoder" else family.stacks[0]
    return model.base_model.get_submodule(stack.layers)


def num_hidden_states(model: nn.Module, family: Family) -> int:
    """How many hidden states :func:`token_states` returns: the read stack's layers plus the embeddings."""
    if not family.stacks:
        return model.config.num_hidden_layers + 1
    return len(read_stack(model, family)) + 1

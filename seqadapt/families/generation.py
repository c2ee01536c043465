"""Language-model passes under the current adapter routing: teacher-forced target logits (training a
text-to-text task), greedy generation (answering with it) and the loss of an input (perplexity selection).

Decoder-only models read the prompt and then the target as one sequence; position ids are counted over real
tokens, so the padding between a short prompt and its target changes nothing. Encoder-decoder models read
the prompt with the encoder and the target, shifted right, with the decoder.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from transformers import GenerationConfig

from seqadapt.families.family import Family
from seqadapt.families.states import last_real, real_positions

IGNORE = -100  # target positions the loss skips (padding)


def require_language_model(model: nn.Module, family: Family, what: str) -> None:
    if family.architecture == "encoder" or model.get_output_embeddings() is None:
        raise ValueError(f"{what} needs a language model (a decoder-only or encoder-decoder backbone, e.g. "
                         f"backbone=smollm2); {type(model).__name__} has no language-model head")


def decoder_start(model: nn.Module) -> int:
    """The token an encoder-decoder's decoder starts from, in training and generation alike (the config's
    ``decoder_start_token_id``; EOS where it has none, as mBART checkpoints begin)."""
    start = model.config.decoder_start_token_id
    return model.config.eos_token_id if start is None else start


def target_logits(model: nn.Module, family: Family, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  labels: torch.Tensor) -> torch.Tensor:
    """[B, L, V]: for each target position of ``labels`` [B, L] (``IGNORE`` where padded), the logits that
    predict it given the prompt and the target tokens before it."""
    targets = labels.masked_fill(labels == IGNORE, 0)
    if family.architecture == "encoder_decoder":
        start = torch.full_like(targets[:, :1], decoder_start(model))
        decoder_ids = torch.cat([start, targets[:, :-1]], dim=1)
        return model(input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_ids,
                     use_cache=False).logits
    ids = torch.cat([input_ids, targets], dim=1)
    mask = torch.cat([attention_mask, (labels != IGNORE).long()], dim=1)
    logits = model(input_ids=ids, attention_mask=mask, position_ids=real_positions(mask), use_cache=False).logits
    first = logits[torch.arange(len(ids), device=ids.device), last_real(attention_mask)].unsqueeze(1)
    prompt = input_ids.shape[1]
    return torch.cat([first, logits[:, prompt:prompt + labels.shape[1] - 1]], dim=1)


def to_left_padding(input_ids: torch.Tensor, attention_mask: torch.Tensor, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The same rows with their padding moved to the left, as batched generation with a decoder needs."""
    order = torch.argsort(attention_mask.long(), dim=1, stable=True)  # padding (0) first, real tokens in order
    ids = torch.gather(input_ids, 1, order)
    mask = torch.gather(attention_mask, 1, order)
    return ids.masked_fill(mask == 0, pad_id), mask


def greedy(model: nn.Module, family: Family, input_ids: torch.Tensor, attention_mask: torch.Tensor,
           max_new_tokens: int, eos_id: int, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Greedy decoding: (token ids [B, max_new_tokens], -1 after each row's EOS; mean negative log-likelihood
    of each row's generated tokens, EOS included [B])."""
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, num_beams=1, eos_token_id=eos_id,
                              pad_token_id=pad_id, output_scores=True, return_dict_in_generate=True)
    if family.architecture == "encoder_decoder":
        config.decoder_start_token_id = decoder_start(model)
    else:
        input_ids, attention_mask = to_left_padding(input_ids, attention_mask, pad_id)
    out = model.generate(input_ids=input_ids, attention_mask=attention_mask, generation_config=config)
    new = out.sequences[:, -len(out.scores):]
    logprobs = torch.stack([F.log_softmax(step.float(), dim=-1) for step in out.scores], dim=1)
    chosen = logprobs.gather(2, new.unsqueeze(-1)).squeeze(-1)
    ended = (new == eos_id).long().cumsum(dim=1)
    keep = (ended == 0) | ((ended == 1) & (new == eos_id))  # up to and including the first EOS
    nll = -(chosen * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1)
    ids = torch.full((len(new), max_new_tokens), -1, dtype=torch.long, device=new.device)
    ids[:, :new.shape[1]] = new.masked_fill(~keep, -1)
    return ids, nll


def input_nll(model: nn.Module, family: Family, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """[B]: the mean per-token negative log-likelihood of each input under the language model (decoders)."""
    if family.architecture != "decoder":
        raise ValueError(f"the loss of an input needs a decoder-only language model; {type(model).__name__} is "
                         f"{family.architecture.replace('_', '-')}")
    logits = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=real_positions(attention_mask),
                   use_cache=False).logits[:, :-1]
    nll = F.cross_entropy(logits.float().transpose(1, 2), input_ids[:, 1:], reduction="none")
    scored = (attention_mask[:, :-1] * attention_mask[:, 1:]).to(nll.dtype)
    return (nll * scored).sum(dim=1) / scored.sum(dim=1).clamp(min=1)

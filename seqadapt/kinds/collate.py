"""One collator for features whose targets are token-aligned (tags, offsets): every key padded to the batch's
longest feature with its own pad value."""

from __future__ import annotations

from typing import Any

import torch
from transformers import PreTrainedTokenizerBase

from seqadapt.kinds.base import PAD_VALUES, cat_padded


class PadCollator:
    """Stacks features into a batch, padding each variable-length key on the right: ``input_ids`` with the
    tokenizer's pad id, ``labels`` with -100 (what the losses ignore), ``word_index`` and ``offsets`` with -1,
    others with 0."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        pad_id = tokenizer.pad_token_id
        if pad_id is None:
            raise ValueError(f"tokenizer {type(tokenizer).__name__} has no pad token; set tokenizer.pad_token first")
        self.values = {**PAD_VALUES, "input_ids": pad_id}

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = {}
        for key in features[0]:
            rows = [torch.as_tensor(feature[key]) for feature in features]
            batch[key] = cat_padded([row.unsqueeze(0) for row in rows], self.values.get(key, 0))
        return batch

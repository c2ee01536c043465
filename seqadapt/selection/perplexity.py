"""Perplexity selection (AdapterCL, Madotto et al. 2021): the task under whose adapters the input itself is
most likely, read by the frozen language model's own head. One adapted pass per candidate, like ``entropy``;
it needs a decoder-only backbone (an encoder has no language-model head, and an encoder-decoder's decoder
models the target, not the input)."""

from __future__ import annotations

import torch

from seqadapt.families.generation import input_nll
from seqadapt.selection.candidates import CandidateBatch


class PerplexitySelector:
    """Scores: minus the mean per-token negative log-likelihood of each row's tokens under each candidate's
    adapters (the lowest perplexity wins); each candidate's pass is remembered with the batch."""

    name = "perplexity"
    needs_decoder = True

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        module = batch.module
        known = batch.memo.setdefault("input_nll", {})
        for task in batch.candidates:
            if task not in known:
                with module.router.route(module.strategy.route_of(task)):
                    known[task] = input_nll(module.backbone, module.family, batch.input_ids, batch.attention_mask)
        return -torch.stack([known[task] for task in batch.candidates], dim=1).float()

"""The features task selection reads: one pass of the bare backbone, several layers mean-pooled."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from seqadapt.families import token_states
from seqadapt.heads import pool

if TYPE_CHECKING:
    from seqadapt.model import SeqAdaptModule


def selection_features(
    module: SeqAdaptModule, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """[B, len(layers) * d]: the hidden states of ``selection.layers`` (0: the embeddings, -1: the last layer,
    ``middle``: layer L // 2)
    of the bare backbone (no adapter runs, whatever is routed), each mean-pooled over real tokens and scaled
    to unit length, side by side.

    Why several layers: what tells tasks apart is often the domain and style of the text more than its meaning,
    and lower layers keep more of it; on held-out training rows of the default stream the embeddings, the
    middle and the last layer identify tasks better than the last layer alone (``bench/tune_selection.py``).
    Unit length per layer keeps none from dominating. Mean pooling always, whatever the heads pool.
    """
    with module.router.route(None):
        states = token_states(module.backbone, module.family, input_ids, attention_mask, token_type_ids, True).hidden_states
    pooled = [F.normalize(pool(states[layer], attention_mask, "mean").float(), dim=-1) for layer in module.selection.layers]
    return torch.cat(pooled, dim=-1)

"""Where bottleneck adapters go (Houlsby et al. 2019; Pfeiffer et al. 2021): after the attention and the
feed-forward output projections of every layer, each followed by its LayerNorm, copied per task on request."""

from __future__ import annotations

from functools import partial

from torch import nn

from seqadapt.adapters.config import AdapterConfig
from seqadapt.adapters.layer import AdapterSlot, BottleneckAdapter, TaskLayerNorm, TaskRouter, wrap
from seqadapt.families import Stack


def place(config: AdapterConfig, layer: nn.Module, stack: Stack, router: TaskRouter, hidden: int) -> list[nn.Module]:
    """Wrap ``layer``'s output projections (``houlsby``: attention and feed-forward; ``pfeiffer``: feed-forward)
    and, with ``train_layer_norm``, the LayerNorm each is followed by."""
    make = partial(BottleneckAdapter, hidden, config.bottleneck_size(hidden), config.non_linearity, config.init_scale)
    placements = [] if config.placement == "pfeiffer" else [(stack.attention, stack.attention_norm)]
    placements.append((stack.ffn, stack.ffn_norm))
    wrappers: list[nn.Module] = []
    for output_path, norm_path in placements:
        wrappers.append(wrap(layer, output_path, lambda m: AdapterSlot(m, router, make)))
        if config.train_layer_norm and norm_path is not None:
            wrappers.append(wrap(layer, norm_path, lambda m: TaskLayerNorm(m, router)))
    return wrappers

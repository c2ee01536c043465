"""Which of the backbone's own parameters a strategy trains: all of them, the top k layers of the stack heads
read, or only its LayerNorms (the baselines of Houlsby et al. 2019, Fig. 3-4)."""

from __future__ import annotations

from collections.abc import Iterator

from torch import nn

from seqadapt.families import Family, read_stack
from seqadapt.strategies import Strategy


def is_layer_norm(module: nn.Module) -> bool:
    """LayerNorm and its relatives (RMSNorm in Llama-style models, T5's LayerNorm): matched by class name, as
    each family defines its own."""
    return isinstance(module, nn.LayerNorm) or type(module).__name__.endswith(("LayerNorm", "RMSNorm"))


def backbone_parameters(backbone: nn.Module, family: Family, strategy: Strategy) -> Iterator[nn.Parameter]:
    """The backbone parameters ``strategy`` trains (floating-point ones; none unless it trains the backbone)."""
    if not strategy.train_backbone:
        return
    if strategy.scope == "all":
        params = backbone.parameters()
    elif strategy.scope == "layer_norm":
        params = (p for module in backbone.modules() if is_layer_norm(module) for p in module.parameters(recurse=False))
    else:
        layers = read_stack(backbone, family)
        if not 1 <= (strategy.top_k or 0) <= len(layers):
            raise ValueError(f"strategy.top_k={strategy.top_k}: this backbone's stack has {len(layers)} layers; "
                             f"choose 1..{len(layers)}")
        params = (p for layer in list(layers)[-strategy.top_k:] for p in layer.parameters())
    yield from (p for p in params if p.is_floating_point())

"""The parameter ledger: what one task owns on top of what all tasks share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqadapt.model.module import SeqAdaptModule


@dataclass(frozen=True)
class ParameterBudget:
    """What one task owns on top of what all tasks share, and what training it updates (``trainable_params``:
    the same for per-task strategies; plus the backbone parameters a fine-tuning strategy trains)."""

    adapter_params: int
    head_params: int
    layer_norm_params: int
    total_params: int
    bytes: int
    percent_of_backbone: float
    trainable_params: int
    method_bytes: int = 0  # what a continual method keeps because of the task (a replay memory, a Fisher)


def parameter_budget(module: SeqAdaptModule, name: str) -> ParameterBudget:
    """Task ``name``'s adapters, head and LayerNorm copies, in parameters, bytes and % of the backbone."""
    head = sum(p.numel() for p in module.heads[name].parameters())
    total = sum(p.numel() for p in module.task_parameters(name))
    norms = 0
    if module.strategy.adapters in ("per_task", "summed"):
        norms = sum(p.numel() for norm in module.adapters.norms for p in norm.norms[name].parameters())
    element = next(module.task_parameters(name), next(module.backbone.parameters())).element_size()  # a text-to-text head has none
    return ParameterBudget(
        adapter_params=total - head - norms,
        head_params=head,
        layer_norm_params=norms,
        total_params=total,
        bytes=total * element,
        percent_of_backbone=100.0 * total / module.backbone_params,
        trainable_params=sum(p.numel() for p in {id(p): p for p in module.trainable_parameters(name)}.values()),
        method_bytes=module.continual.stored_bytes(name) if module.continual is not None else 0,
    )

"""O-LoRA (Wang et al. 2023, "Orthogonal Subspace Learning for Language Model Continual Learning"): each task
trains its own LoRA on the attention projections while earlier tasks' LoRAs stay frozen, and the loss keeps the
new LoRA's subspace orthogonal to theirs:

    L + lambda_1 * sum over LoRA'd projections of sum_ij |A_old A_new^T|_ij + lambda_2 * sum ||new LoRA params||_2

with ``A_old`` every earlier task's down-projection (r x d) stacked, as in the authors' trainer
(cmnfriend/O-LoRA: ``orthogonal_loss += torch.abs(torch.mm(lora_A, loranew_A.T)).sum()`` and
``l2_loss += torch.norm(loranew_param, p=2)``; their scripts use lambda_1 = 0.5, lambda_2 = 0). At inference
every task's LoRA is summed (:data:`seqadapt.adapters.layer.SUMMED`), so no task ID picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from seqadapt.adapters.layer import SideSlot
from seqadapt.continual.plugin import ContinualPlugin, earlier_tasks

if TYPE_CHECKING:
    from seqadapt.model import SeqAdaptModule


@dataclass(frozen=True)
class OLoRAConfig:
    """``lambda_1``: the orthogonality term's weight; ``lambda_2``: the new LoRA's L2 term's weight."""

    lambda_1: float = 0.5
    lambda_2: float = 0.0

    def __post_init__(self) -> None:
        for key in ("lambda_1", "lambda_2"):
            if not getattr(self, key) >= 0:
                raise ValueError(f"strategy.{key} (olora) must be >= 0, got {getattr(self, key)!r}")


def orthogonality(module: SeqAdaptModule, new: str, earlier: list[str]) -> torch.Tensor:
    """``sum over slots of |A_old A_new^T|.sum()``, ``A_old`` the earlier tasks' down-projections stacked."""
    total = torch.zeros((), device=next(module.parameters()).device)
    for slot in lora_slots(module):
        if earlier:
            old = torch.cat([slot.adapters[task].down.weight for task in earlier])
            total = total + torch.abs(old @ slot.adapters[new].down.weight.T).sum()
    return total


def l2_norms(module: SeqAdaptModule, task: str) -> torch.Tensor:
    """``sum of ||W||_2`` (Frobenius) over the task's LoRA matrices, A and B of every slot."""
    norms = [torch.linalg.norm(p) for slot in lora_slots(module) for p in slot.adapters[task].parameters()]
    return torch.stack(norms).sum()


def lora_slots(module: SeqAdaptModule) -> list[SideSlot]:
    return [slot for slot in module.adapters.slots if isinstance(slot, SideSlot)]


class OLoRA(ContinualPlugin):
    name = "olora"

    def __init__(self, config: OLoRAConfig) -> None:
        self.config = config

    def training_loss(self, module: SeqAdaptModule, batch: dict[str, torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        new, earlier = module.active_task, earlier_tasks(module)
        size = len(batch["labels"])
        if earlier and self.config.lambda_1:
            term = self.config.lambda_1 * orthogonality(module, new, earlier)
            module.log("train/olora_orthogonality", term, on_step=False, on_epoch=True, batch_size=size)
            loss = loss + term
        if self.config.lambda_2:
            loss = loss + self.config.lambda_2 * l2_norms(module, new)
        return loss

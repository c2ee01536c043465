"""A-GEM (Chaudhry et al. 2019, "Efficient Lifelong Learning with A-GEM"): the batch's gradient ``g`` is
projected so that it does not increase the loss on a sample from the episodic memory of earlier tasks.

With ``g_ref`` the gradient of the memory sample's mean loss: where ``g . g_ref < 0``,
``g <- g - (g . g_ref / g_ref . g_ref) g_ref`` (paper, eq. 11); otherwise ``g`` is kept. Both gradients are over
every parameter the stage trains, flattened into one vector. The memory is the same reservoir as replay's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from seqadapt.continual.rehearsal import Rehearsal

if TYPE_CHECKING:
    from seqadapt.data.splits import TaskSplits
    from seqadapt.model import SeqAdaptModule
    from seqadapt.stream.loaders import StreamLoaders


@dataclass(frozen=True)
class AGEMConfig:
    """``rows_per_task``: the episodic memory kept of each task; ``reference_size``: rows per reference gradient."""

    rows_per_task: int = 50
    reference_size: int = 32

    def __post_init__(self) -> None:
        size = self.reference_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"strategy.reference_size (agem) must be a whole number >= 1, got {size!r}")


def project(gradient: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``gradient`` with its component against ``reference`` removed where they conflict (A-GEM, eq. 11)."""
    dot = torch.dot(gradient, reference)
    if dot >= 0:
        return gradient
    return gradient - (dot / torch.dot(reference, reference)) * reference


class AGEM(Rehearsal):
    name = "agem"

    def __init__(self, config: AGEMConfig) -> None:
        super().__init__(config.rows_per_task)
        self.config = config
        self.projected = 0  # batches whose gradient was projected this stage
        self.batches = 0

    def before_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        super().before_stage(module, tasks, loaders, seed)
        self.projected = self.batches = 0

    def after_backward(self, module: SeqAdaptModule) -> None:
        if not self.memory.tasks:
            return
        params = [p for p in module.parameters() if p.requires_grad and p.grad is not None]
        reference_loss = self.memory_loss(module, self.config.reference_size) / self.config.reference_size
        grads = torch.autograd.grad(reference_loss, params, allow_unused=True)
        reference = torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])
        gradient = torch.cat([p.grad.reshape(-1) for p in params])
        projected = project(gradient, reference)
        self.batches += 1
        if projected is not gradient:
            self.projected += 1
            offset = 0
            for param in params:
                size = param.numel()
                param.grad.copy_(projected[offset:offset + size].view_as(param.grad))
                offset += size

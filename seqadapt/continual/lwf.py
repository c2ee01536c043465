"""Learning without Forgetting (Li & Hoiem 2017): while a new task trains, every earlier task's head is asked to
keep answering the new task's inputs as the model did before this stage.

Before the stage, a frozen copy of the shared weights is taken (the previous model). For each training batch,
each earlier head reads the previous model's hidden states (the target, softened by temperature ``T``) and the
current one's; the loss adds ``alpha * KL(softmax(old / T) || softmax(new / T))`` per earlier task, averaged
over the batch (``batchmean``, as Avalanche's ``LwFPlugin``). Li & Hoiem use ``T = 2`` and a weight of 1.

Earlier heads stay as learned (frozen): distillation acts on the shared weights. Distillation reads class
logits, so every earlier task must be of a kind whose outputs are class logits per example (``distillable``:
classification); other kinds are refused with the reason.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.nn import functional as F

from seqadapt.continual.plugin import ContinualPlugin, earlier_tasks
from seqadapt.families import token_states

if TYPE_CHECKING:
    from torch import nn

    from seqadapt.data.splits import TaskSplits
    from seqadapt.model import SeqAdaptModule
    from seqadapt.stream.loaders import StreamLoaders

@dataclass(frozen=True)
class LwFConfig:
    """``temperature`` softens both distributions; ``alpha`` weighs the distillation term against the task loss."""

    temperature: float = 2.0
    alpha: float = 1.0

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ValueError(f"strategy.temperature (lwf) must be > 0, got {self.temperature!r}")
        if not self.alpha >= 0:
            raise ValueError(f"strategy.alpha (lwf) must be >= 0, got {self.alpha!r}")


def distillation(new_logits: torch.Tensor, old_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """``KL(softmax(old / T) || softmax(new / T))`` averaged over rows."""
    return F.kl_div(F.log_softmax(new_logits / temperature, dim=-1), F.softmax(old_logits / temperature, dim=-1),
                    reduction="batchmean")


@contextmanager
def heads_in_eval(module: SeqAdaptModule, tasks: list[str]) -> Iterator[None]:
    """Earlier heads without their dropout for the block: targets and the outputs matched to them are each
    head's deterministic answer (Li & Hoiem record the old network's responses once, in test mode)."""
    modes = {task: module.heads[task].training for task in tasks}
    for task in tasks:
        module.heads[task].eval()
    try:
        yield
    finally:
        for task, mode in modes.items():
            module.heads[task].train(mode)


class LwF(ContinualPlugin):
    name = "lwf"

    def __init__(self, config: LwFConfig) -> None:
        self.config = config
        self.previous: nn.Module | None = None  # the backbone as the stage found it; not a submodule of anything
        self._earlier: list[str] = []

    def before_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        self._earlier = earlier_tasks(module)
        wrong = [t for t in self._earlier if not module.kind(t).distillable]
        new = [t.spec.name for t in tasks if not module.kind(t.spec.name).shares_passes]
        if wrong or new:
            raise ValueError(f"strategy=lwf distils class logits of earlier heads on the new task's inputs: task(s) "
                             f"{wrong or new} have no class logits per example (classification tasks do); use "
                             "strategy=replay or ewc")
        self.previous = copy.deepcopy(module.backbone).eval().requires_grad_(False) if self._earlier else None

    def teacher_logits(self, module: SeqAdaptModule, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Each earlier head's outputs on ``batch`` over the previous model's hidden states: the targets."""
        self.previous.to(batch["input_ids"].device)
        with torch.no_grad():
            hidden = token_states(self.previous, module.family, batch["input_ids"], batch["attention_mask"],
                                  batch.get("token_type_ids")).last
            with heads_in_eval(module, self._earlier):
                return {task: module.heads[task](hidden, batch["attention_mask"]) for task in self._earlier}

    def training_loss(self, module: SeqAdaptModule, batch: dict[str, torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        if self.previous is None:
            return loss
        targets = self.teacher_logits(module, batch)
        with heads_in_eval(module, self._earlier):
            hidden = module.encode(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
            terms = [distillation(module.heads[task](hidden, batch["attention_mask"]), targets[task],
                                  self.config.temperature) for task in self._earlier]
        term = self.config.alpha * torch.stack(terms).sum()
        module.log("train/lwf_distillation", term, on_step=False, on_epoch=True, batch_size=len(batch["labels"]))
        return loss + term

    def after_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        self.previous = None  # the copy is only needed while a stage trains

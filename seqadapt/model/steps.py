"""The loss of a training or validation batch, asked of each task's kind, and what Lightning logs of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from seqadapt.model.module import SeqAdaptModule


def batch_loss(module: SeqAdaptModule, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
    """One batch of the active task, or (with ``task_index``, joint training) of several: one backbone pass,
    each row through its own task's head and loss, averaged over the batch."""
    hidden = module.encode(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    if "task_index" not in batch:
        if module.active_task is None:
            raise RuntimeError("no single active task: call set_active_task(name) before the forward pass")
        return _task_loss(module, module.active_task, hidden, batch, split, reduction="mean")
    total = hidden.new_zeros(())
    for index in batch["task_index"].unique().tolist():
        rows = batch["task_index"] == index
        part = {key: value[rows] for key, value in batch.items()}
        total = total + _task_loss(module, module.active_tasks[index], hidden[rows], part, split, reduction="sum")
    return total / len(batch["labels"])


def _task_loss(
    module: SeqAdaptModule, task: str, hidden: torch.Tensor, batch: dict[str, torch.Tensor], split: str, reduction: str
) -> torch.Tensor:
    kind, labels, head = module.kind(task), batch["labels"], module.heads[task]
    outputs = head(hidden, batch["attention_mask"])
    loss = kind.loss(outputs, labels, head, reduction=reduction)
    on_step, size = split == "train", len(labels)
    mean = loss if reduction == "mean" else loss / size
    # averaged over DDP processes, each of which sees a share of the batches; a no-op on one process
    module.log(f"{split}/{task}/loss", mean, prog_bar=on_step, on_step=on_step, on_epoch=True, batch_size=size,
               sync_dist=True)
    for name, value in kind.step_metrics(outputs, labels, head).items():
        module.log(f"{split}/{task}/{name}", value, prog_bar=True, on_step=False, on_epoch=True, batch_size=size,
                   sync_dist=True)
    return loss

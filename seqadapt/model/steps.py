"""The loss of a training or validation batch, asked of each task's kind, and what Lightning logs of it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from seqadapt.model.module import SeqAdaptModule


def batch_loss(module: SeqAdaptModule, batch: dict[str, torch.Tensor], split: str) -> torch.Tensor:
    """One batch of the active task (what its kind trains on, :meth:`~seqadapt.kinds.TaskKind.train_outputs`),
    or (with ``task_index``, joint training) of several: one backbone pass, each row through its own task's head
    and loss, averaged over the batch. Kinds that do not share passes (text-to-text trains on its own
    teacher-forced pass) run one pass per task's rows instead."""
    if "task_index" not in batch:
        task = module.active_task
        if task is None:
            raise RuntimeError("no single active task: call set_active_task(name) before the forward pass")
        return _task_loss(module, task, module.kind(task).train_outputs(module, task, batch), batch, split, "mean")
    shared = all(module.kind(task).shares_passes for task in module.active_tasks)
    hidden = module.encode(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")) if shared else None
    losses = []
    for index in batch["task_index"].unique().tolist():
        rows = batch["task_index"] == index
        part = {key: value[rows] for key, value in batch.items()}
        task = module.active_tasks[index]
        if hidden is None:
            outputs = module.kind(task).train_outputs(module, task, part)
        else:
            outputs = module.heads[task](hidden[rows], part["attention_mask"])
        losses.append(_task_loss(module, task, outputs, part, split, reduction="sum"))
    return torch.stack(losses).sum() / len(batch["labels"])


def _task_loss(
    module: SeqAdaptModule, task: str, outputs: torch.Tensor, batch: dict[str, torch.Tensor], split: str, reduction: str
) -> torch.Tensor:
    kind, labels, head = module.kind(task), batch["labels"], module.heads[task]
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

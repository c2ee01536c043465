"""Evaluating a task: logits on its test loader, accuracy, and fingerprints of the logits and prototypes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from seqadapt.backbone import tensor_bytes, tensors_sha256
from seqadapt.module import SeqAdaptModule


@dataclass(frozen=True)
class TaskEvaluation:
    """What the guard compares: accuracy, the exact test logits, and the task-selection data (prototypes)."""

    task: str
    accuracy: float
    examples: int
    logits_sha256: str
    prototypes_sha256: str | None = None


@torch.inference_mode()
def task_logits(module: SeqAdaptModule, task: str, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """All logits and labels of ``loader`` under ``task``'s adapters, in loader order."""
    logits, labels = [], []
    with module.evaluating(), module.routed_to(task):
        for batch in loader:
            batch = {key: value.to(module.device) for key, value in batch.items()}
            logits.append(module(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).float().cpu())
            labels.append(batch["labels"].cpu())
    return torch.cat(logits), torch.cat(labels)


def evaluate_task(module: SeqAdaptModule, task: str, loader: DataLoader) -> TaskEvaluation:
    """Accuracy on ``loader`` and SHA-256s of the exact logits and of the task's prototypes: the guard's probe."""
    logits, labels = task_logits(module, task, loader)
    correct = int((logits.argmax(dim=-1) == labels).sum())
    return TaskEvaluation(
        task=task,
        accuracy=correct / len(labels),
        examples=len(labels),
        logits_sha256=hashlib.sha256(tensor_bytes(logits)).hexdigest(),
        prototypes_sha256=tensors_sha256(dict(module.prototypes[task].named_buffers())),  # what selection reads
    )

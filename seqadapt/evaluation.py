"""Evaluating a task: its outputs on a test loader, its kind's primary score, and fingerprints of both."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from seqadapt.backbone import tensors_sha256
from seqadapt.model import SeqAdaptModule
from seqadapt.record import TaskEvaluation


@torch.inference_mode()
def task_outputs(module: SeqAdaptModule, task: str, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """All outputs and labels of ``loader`` under ``task``'s adapters and head, in loader order."""
    outputs, labels = [], []
    with module.evaluating(), module.routed_to(task):
        for batch in loader:
            batch = {key: value.to(module.device) for key, value in batch.items()}
            outputs.append(module(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).float().cpu())
            labels.append(batch["labels"].cpu())
    return torch.cat(outputs), torch.cat(labels)


def evaluate_task(module: SeqAdaptModule, task: str, loader: DataLoader) -> TaskEvaluation:
    """The kind's primary score on ``loader`` and SHA-256s of the exact outputs and of the task's prototypes:
    the guard's probe."""
    outputs, labels = task_outputs(module, task, loader)
    kind = module.kind(task)
    return TaskEvaluation(
        task=task,
        accuracy=kind.metrics(outputs, labels)[kind.primary_metric],
        examples=len(labels),
        logits_sha256=kind.fingerprint(outputs),
        prototypes_sha256=tensors_sha256(dict(module.prototypes[task].named_buffers())),  # what selection reads
    )

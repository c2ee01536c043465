"""Evaluating a task: its outputs on a test loader, its kind's primary score, and fingerprints of both and of
the test rows they were measured on."""

from __future__ import annotations

import hashlib
import json

import torch
from datasets import Dataset
from torch.utils.data import DataLoader

from seqadapt.kinds.base import PAD_VALUES, cat_padded, targets_of
from seqadapt.model import SeqAdaptModule
from seqadapt.record import TaskEvaluation


@torch.inference_mode()
def task_outputs(
    module: SeqAdaptModule, task: str, loader: DataLoader
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """All outputs and targets of ``loader`` under ``task``'s adapters and head, in loader order; token-level
    outputs and targets of batches of different lengths are padded to the longest (see :func:`cat_padded`)."""
    outputs: list[torch.Tensor] = []
    targets: dict[str, list[torch.Tensor]] = {}
    with module.evaluating(), module.routed_to(task):
        for batch in loader:
            batch = {key: value.to(module.device) for key, value in batch.items()}
            outputs.append(module(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")).float().cpu())
            for key, value in targets_of(batch).items():
                targets.setdefault(key, []).append(value.cpu())
    return cat_padded(outputs, 0), {key: cat_padded(parts, PAD_VALUES.get(key, 0)) for key, parts in targets.items()}


def evaluate_task(module: SeqAdaptModule, task: str, loader: DataLoader, rows: Dataset) -> TaskEvaluation:
    """The kind's primary score on ``loader`` (the features of ``rows``, the split's canonical rows) and
    SHA-256s of the exact outputs and of the task's selection statistics: the guard's probe."""
    outputs, targets = task_outputs(module, task, loader)
    return scored(module, task, outputs, targets, rows)


def scored(
    module: SeqAdaptModule, task: str, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset
) -> TaskEvaluation:
    """The evaluation of outputs already computed (:func:`task_outputs`), for callers that keep the outputs too:
    a stage's artefact stores them as reference outputs, ``seqadapt-verify`` compares them with those."""
    kind = module.kind(task)
    scores = kind.metrics(module.specs[task], outputs, targets, rows, module.heads[task])
    return TaskEvaluation(
        task=task,
        metric=kind.primary_metric,
        score=scores[kind.primary_metric],
        examples=len(rows),
        logits_sha256=kind.fingerprint(outputs),
        selection_sha256=module.selection.sha256(task),  # what task-ID-free selection reads
        metrics=scores,
    )


def rows_sha256(rows: Dataset) -> str:
    """SHA-256 of a split's canonical rows, in order, each as sorted-key JSON: what tells a test split rebuilt
    later from changed source data apart from the one a task was evaluated on. (``datasets``' own fingerprint
    is no help: it hashes how a dataset was made, not what it holds.)"""
    digest = hashlib.sha256()
    for row in rows:
        digest.update(json.dumps(row, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str).encode() + b"\n")
    return digest.hexdigest()

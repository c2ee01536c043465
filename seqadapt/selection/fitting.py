"""Computing a task's selection statistics at the end of its stage: its sums on the training split, its
head's temperature on the validation split. Nothing computes them again afterwards."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from seqadapt.evaluation import task_outputs
from seqadapt.model import SeqAdaptModule
from seqadapt.selection.features import selection_features

TEMPERATURES = torch.logspace(-1.5, 1.5, 61)  # 0.03 .. 31.6, a fixed grid: the fit is exact and deterministic


@torch.inference_mode()
def fit_statistics(module: SeqAdaptModule, task: str, train: DataLoader, val: DataLoader | None = None) -> None:
    """``task``'s sums over the bare backbone's selection features of ``train`` (its training split, in order):
    one class per label for classification, one per task for other kinds
    (:meth:`~seqadapt.kinds.TaskKind.prototype_labels`); then its temperature on ``val``."""
    state = module.selection
    x, labels = features_and_classes(module, task, train)
    state[task].fit(x, labels, state.projection(x) if state.config.projection_dim else None)
    if val is not None:
        state[task].set_temperature(fit_temperature(module, task, val))


@torch.inference_mode()
def features_and_classes(module: SeqAdaptModule, task: str, loader: DataLoader) -> tuple[torch.Tensor, torch.Tensor]:
    """Every row of ``loader`` as selection features [N, D] (one bare backbone pass per batch) and the class
    of ``task``'s statistics it counts under [N]."""
    features, labels, kind = [], [], module.kind(task)
    with module.evaluating():
        for batch in loader:
            batch = {key: value.to(module.device) for key, value in batch.items()}
            features.append(selection_features(module, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")))
            labels.append(kind.prototype_labels(batch["labels"]))
    return torch.cat(features).float(), torch.cat(labels)


def fit_temperature(module: SeqAdaptModule, task: str, val: DataLoader) -> float:
    """The temperature on :data:`TEMPERATURES` minimising the task's loss (its head's negative log-likelihood)
    on ``val`` with outputs divided by it; 1 for kinds whose outputs are not logits (regression)."""
    kind = module.kind(task)
    if not kind.calibratable:
        return 1.0
    outputs, targets = task_outputs(module, task, val)
    head, labels = module.heads[task], targets["labels"].to(outputs.device)
    losses = torch.stack([kind.loss(outputs / t, labels, head).float() for t in TEMPERATURES])
    return float(TEMPERATURES[int(losses.argmin())])

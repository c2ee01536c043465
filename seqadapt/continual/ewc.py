"""Online EWC (Kirkpatrick et al. 2017, "Overcoming catastrophic forgetting in neural networks"; online form of
Schwarz et al. 2018, "Progress & Compress"): after each task, the diagonal of the empirical Fisher information
of the shared weights is accumulated, ``F <- decay * F + F_task``, and the weights are anchored where that task
left them, ``theta* <- theta``. Training a later task minimises ``L + (lambda / 2) * sum_i F_i (theta_i - theta*_i)^2``.

``F_task`` is the mean over the task's training batches of the squared gradient of the batch loss (the
minibatch estimate Avalanche's ``EWCPlugin`` uses), computed in eval mode so dropout does not enter it.
One Fisher and one anchor are kept whatever the number of tasks: the storage is flat in T. The Fisher is
written to ``<run>/continual/ewc_fisher.safetensors`` after every stage, for a resume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import save as safetensors_bytes

from seqadapt.artefacts import ArtefactError, load_tensors
from seqadapt.continual.plugin import ContinualPlugin, trained_shared
from seqadapt.io import atomic_write

if TYPE_CHECKING:
    from seqadapt.data.splits import TaskSplits
    from seqadapt.model import SeqAdaptModule
    from seqadapt.stream.loaders import StreamLoaders

FISHER_FILE = "ewc_fisher.safetensors"

@dataclass(frozen=True)
class EWCConfig:
    """``ewc_lambda``: the penalty's weight; ``decay``: how much of earlier tasks' Fisher is kept (1: all)."""

    ewc_lambda: float = 1.0e6
    decay: float = 1.0

    def __post_init__(self) -> None:
        if not self.ewc_lambda >= 0:
            raise ValueError(f"strategy.ewc_lambda must be >= 0, got {self.ewc_lambda!r}")
        if not 0 <= self.decay <= 1:
            raise ValueError(f"strategy.decay (online EWC) must be in [0, 1], got {self.decay!r}")


class EWC(ContinualPlugin):
    name = "ewc"

    def __init__(self, config: EWCConfig) -> None:
        self.config = config
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}
        self._bytes: dict[str, int] = {}

    def penalty(self, module: SeqAdaptModule) -> torch.Tensor:
        """``(lambda / 2) * sum_i F_i (theta_i - theta*_i)^2`` over the shared weights (0 before any task)."""
        device = next(module.parameters()).device
        total = torch.zeros((), device=device)
        for name, param in trained_shared(module):
            if name in self.fisher:
                total = total + (self.fisher[name] * (param - self.anchor[name]).pow(2)).sum()
        return 0.5 * self.config.ewc_lambda * total

    def training_loss(self, module: SeqAdaptModule, batch: dict[str, torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        if not self.fisher:
            return loss
        penalty = self.penalty(module)
        module.log("train/ewc_penalty", penalty, on_step=False, on_epoch=True, batch_size=len(batch["labels"]))
        return loss + penalty

    def after_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        before = self.state_bytes()
        for task in tasks:
            task_fisher = fisher_diagonal(module, task, loaders)
            for name, value in task_fisher.items():
                kept = self.fisher.get(name)
                self.fisher[name] = value if kept is None else self.config.decay * kept + value
        self.anchor = {name: param.detach().clone() for name, param in trained_shared(module)}
        self._bytes[tasks[-1].spec.name] = self.state_bytes() - before

    def state_bytes(self) -> int:
        """What the Fisher and the anchor weigh in memory (and would on disk)."""
        return sum(t.numel() * t.element_size() for store in (self.fisher, self.anchor) for t in store.values())

    def stored_bytes(self, task: str) -> int:
        return self._bytes.get(task, 0)

    def save(self, directory: Path) -> list[Path]:
        """The Fisher, for a resume (the anchor is the checkpoint's own weights: both are taken as a stage ends)."""
        if not self.fisher:
            return []
        path = Path(directory) / FISHER_FILE
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, safetensors_bytes({name: value.to("cpu").contiguous() for name, value in self.fisher.items()}))
        return [path]

    def restore(self, directory: Path, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders) -> None:
        shared = dict(trained_shared(module))
        fisher = load_tensors(Path(directory) / FISHER_FILE)
        wrong = sorted(set(fisher) ^ set(shared)) + [
            name for name, value in fisher.items() if name in shared and value.shape != shared[name].shape]
        if wrong:
            raise ArtefactError(f"{Path(directory) / FISHER_FILE} does not fit the model's shared weights "
                                f"({wrong[:3]}): resume with the run's own config")
        device = next(module.parameters()).device
        self.fisher = {name: value.to(device=device, dtype=shared[name].dtype) for name, value in fisher.items()}
        self.anchor = {name: param.detach().clone() for name, param in shared.items()}
        self._bytes = {task.spec.name: 0 for task in tasks} | {tasks[0].spec.name: self.state_bytes()}


def fisher_diagonal(module: SeqAdaptModule, task: TaskSplits, loaders: StreamLoaders) -> dict[str, torch.Tensor]:
    """The mean squared gradient of ``task``'s batch loss over its training batches, per shared weight."""
    name = task.spec.name
    shared = dict(trained_shared(module))
    sums = {key: torch.zeros_like(param) for key, param in shared.items()}
    kind, head = module.kind(name), module.heads[name]
    device = next(module.parameters()).device
    batches = 0
    with module.evaluating(), module.routed_to(name), torch.enable_grad():
        for batch in loaders.unshuffled_train(task):
            batch = {key: value.to(device) for key, value in batch.items()}
            loss = kind.loss(kind.train_outputs(module, name, batch), batch["labels"], head)
            grads = torch.autograd.grad(loss, list(shared.values()), allow_unused=True)
            for key, grad in zip(shared, grads):
                if grad is not None:
                    sums[key] += grad.detach().pow(2)
            batches += 1
    return {key: value / max(batches, 1) for key, value in sums.items()}

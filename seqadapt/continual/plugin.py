"""The seam every continual-learning method plugs into: a few named hooks around one stage's training.

Like Avalanche's strategy plugins, a method is one small class that overrides only the hooks it needs; the
stream's loop (:func:`seqadapt.stream.fit.fit_stage`) and the module (:class:`~seqadapt.model.SeqAdaptModule`)
call them and know no method by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from seqadapt.data.splits import TaskSplits
    from seqadapt.model import SeqAdaptModule
    from seqadapt.stream.loaders import StreamLoaders


class ContinualPlugin:
    """Hooks, in the order one stage calls them; each does nothing unless a method overrides it.

    * :meth:`before_stage` — the stage's tasks are added and active, training has not started;
    * :meth:`training_loss` — every training batch: the loss the optimizer minimises;
    * :meth:`after_backward` — every training batch: the gradients, before the optimizer steps;
    * :meth:`after_stage` — training has ended: what the method keeps of the tasks just learned;
    * :meth:`save` — the stage is verified: its state written to the run folder, which :meth:`restore` reads back
      when the run resumes (:mod:`seqadapt.stage_checkpoint`).

    :meth:`stored_bytes` says what the method keeps for a task beyond its parameters (a Fisher, a buffer), for
    the parameter ledger.
    """

    name = "none"

    def before_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        """Called once the stage's tasks are in ``module`` and active, before its first training batch."""

    def training_loss(self, module: SeqAdaptModule, batch: dict[str, torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        """The loss to minimise for ``batch``, given the task loss ``loss`` of its rows."""
        return loss

    def after_backward(self, module: SeqAdaptModule) -> None:
        """Called with the batch's gradients in ``.grad``, before the optimizer step."""

    def after_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        """Called after the stage's training, on the device it trained on."""

    def stored_bytes(self, task: str) -> int:
        """Bytes the method keeps because of ``task`` beyond the task's own parameters (0: nothing)."""
        return 0

    def save(self, directory: Path) -> list[Path]:
        """Write what the method keeps beyond the model's own tensors (a replay memory, a Fisher) into
        ``directory``, creating it only then (methods that keep nothing leave no empty folder)."""
        return []

    def restore(self, directory: Path, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders) -> None:
        """Read back what :meth:`save` wrote, for a resume: ``module`` holds the checkpoint's tensors and
        ``tasks`` are the tasks learned so far. The files' SHA-256 were checked against the checkpoint's manifest;
        their contents are still parsed as received data."""


def trained_shared(module: SeqAdaptModule) -> Iterator[tuple[str, nn.Parameter]]:
    """The named parameters every task shares and training changes (the backbone's, per strategy): what
    regularisers anchor and what a gradient projection acts on."""
    trained = {id(p) for p in module.trainable_parameters(module.tasks[0])} if module.tasks else set()
    for name, param in module.backbone.named_parameters():
        if id(param) in trained and param.is_floating_point():
            yield name, param


def earlier_tasks(module: SeqAdaptModule) -> list[str]:
    """The tasks learned before the stage now training, in stream order."""
    active = set(module.active_tasks)
    return [task for task in module.tasks if task not in active]

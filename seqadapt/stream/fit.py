"""Learning one stage: its tasks added to the module, trained by a fresh Lightning Trainer, selection statistics fitted."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytorch_lightning as pl

from seqadapt.environment import current_environment
from seqadapt.model import SeqAdaptModule
from seqadapt.selection.fitting import fit_statistics
from seqadapt.stream.loaders import StreamLoaders
from seqadapt.stream.plan import Stage


@dataclass(frozen=True)
class FitResult:
    """How a stage learned: seconds, processes (DDP), the device and precision its outputs depend on, and the folder
    it was imported from instead of trained (``None``: trained)."""

    seconds: float
    processes: int
    environment: dict[str, Any]
    imported: dict[str, Any] | None = None  # where an imported task came from (seqadapt.stream.imported)


def fit_stage(
    module: SeqAdaptModule, stage: Stage, loaders: StreamLoaders, make_trainer: Callable[[], pl.Trainer], seed: int
) -> FitResult:
    """Train ``stage``'s tasks, seeded with ``seed`` alone, so a resumed stage equals an uninterrupted one.

    The module stays on the trainer's device afterwards (Lightning moves it back
    to the CPU), so evaluation and the guard run where training ran.
    """
    started = time.perf_counter()
    pl.seed_everything(seed, workers=True, verbose=False)
    for task in stage.tasks:
        module.add_task(task.spec, task.train)
    module.set_active_tasks([t.spec.name for t in stage.tasks])
    train, val = loaders.train(stage.tasks, seed=seed), loaders.val(stage.tasks)
    if module.continual is not None:
        module.continual.before_stage(module, stage.tasks, loaders, seed)
    module.train()  # Lightning keeps the mode it finds; a trained backbone needs its dropout on
    trainer = make_trainer()
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    module.to(trainer.strategy.root_device)
    if module.continual is not None:  # part of learning the task: what the method keeps of it
        module.continual.after_stage(module, stage.tasks, loaders, seed)
    for task in stage.tasks:  # part of learning the task: what task-ID-free selectors will compare inputs with
        fit_statistics(module, task.spec.name, loaders.unshuffled_train(task), loaders.val([task]))
    environment = current_environment(trainer.strategy.root_device.type, str(trainer.precision))
    return FitResult(time.perf_counter() - started, trainer.world_size, environment)

"""Learning one stage: its tasks added to the module, trained by a fresh Lightning Trainer, prototypes fitted."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytorch_lightning as pl

from seqadapt.model import SeqAdaptModule
from seqadapt.prototypes import fit_prototypes
from seqadapt.stream.loaders import StreamLoaders
from seqadapt.stream.plan import Stage


def fit_stage(
    module: SeqAdaptModule, stage: Stage, loaders: StreamLoaders, make_trainer: Callable[[], pl.Trainer], seed: int
) -> tuple[float, int]:
    """Train ``stage``'s tasks, seeded with ``seed`` alone, so a resumed stage equals an uninterrupted one.

    Returns the seconds it took and how many processes trained (DDP).
    """
    started = time.perf_counter()
    pl.seed_everything(seed, workers=True, verbose=False)
    for task in stage.tasks:
        module.add_task(task.spec)
    module.set_active_tasks([t.spec.name for t in stage.tasks])
    train, val = loaders.train(stage.tasks, seed=seed), loaders.val(stage.tasks)
    module.train()  # Lightning keeps the mode it finds; a trained backbone needs its dropout on
    trainer = make_trainer()
    trainer.fit(module, train_dataloaders=train, val_dataloaders=val)
    for task in stage.tasks:  # part of learning the task: what the prototype selector will compare inputs with
        fit_prototypes(module, task.spec.name, loaders.unshuffled_train(task))
    return time.perf_counter() - started, trainer.world_size

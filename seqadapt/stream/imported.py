"""Learning a stage by importing: a task's adapter and head come from a PEFT or AdapterHub folder (``tasks.imports``)
instead of training; the rest of the stage (evaluation, guard, artefact, serving) is the same as a trained one's.

The folder is read as received input (:mod:`seqadapt.exchange.folder`) and must fit the run exactly: the run's
method and settings (``adapter``), every layer the run adapts and nothing else, the task's head (labels in the
task's order, the pooling the run's heads read), and, where seqadapt exported it, the run's backbone weights.
The task's selection statistics are fitted from its training split, as after training.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from seqadapt.environment import current_environment
from seqadapt.exchange.errors import ExchangeError, refused
from seqadapt.exchange.folder import read_folder
from seqadapt.exchange.imported import setting_differences
from seqadapt.exchange.layout import ModelLayout, exchanged
from seqadapt.model import SeqAdaptModule
from seqadapt.selection.fitting import fit_statistics
from seqadapt.stream.fit import FitResult
from seqadapt.stream.loaders import StreamLoaders
from seqadapt.stream.plan import Stage

HEADER_ROOM = 2**20  # a safetensors header names each tensor: generous for the largest task


def import_stage(module: SeqAdaptModule, stage: Stage, loaders: StreamLoaders, folder: Path, backbone_sha256: str
                 ) -> FitResult:
    """Add ``stage``'s task to ``module`` with the adapter and head in ``folder``, then fit its selection
    statistics; an :class:`~seqadapt.exchange.errors.ExchangeError` says why a folder does not fit."""
    started = time.perf_counter()
    task = stage.tasks[0]
    name = task.spec.name
    module.add_task(task.spec, task.train)
    owned = module.tensors.of(name)
    learned = exchanged(owned, name)
    room = sum(value.numel() * value.element_size() for value in learned.values()) + HEADER_ROOM
    read = read_folder(Path(folder), ModelLayout.of(module.backbone.config), task.spec, room)
    what = f"cannot import {folder} as task '{name}'"
    _check_backbone(read.side, backbone_sha256, what)
    differences = setting_differences(module.adapters.config, read.imported.method, module.backbone.config.hidden_size)
    if differences:
        raise refused(what, "its adapter is not the run's: " + "; ".join(differences),
                      "Import it into a run whose adapter settings are the folder's (adapter=... on a new run)")
    if read.imported.pooling is not None and read.imported.pooling != module.pooling:
        raise refused(what, f"its head reads the {read.imported.pooling}-pooled token states and the run's heads "
                      f"read the {module.pooling}-pooled ones", f"Import it into a run with pooling={read.imported.pooling}")
    tensors = read.imported.named(name)
    missing, extra = sorted(set(learned) - set(tensors)), sorted(set(tensors) - set(learned))
    if missing or extra:
        raise refused(what, f"it does not hold exactly the tensors the run's task has: missing {_few(missing)}, "
                      f"not in the run {_few(extra)}", "Import an adapter of the run's layers and targets, with a "
                      "head (seqadapt-export writes one; --no-head keeps it in seqadapt_head.safetensors)")
    try:
        module.tensors.load(name, {**owned, **tensors})
    except ValueError as err:
        raise ExchangeError(f"{what}: {err}") from None
    fit_statistics(module, name, loaders.unshuffled_train(task), loaders.val([task]))
    environment = current_environment(module.device.type)
    return FitResult(time.perf_counter() - started, 1, environment, imported=read.source)


def _check_backbone(side: dict[str, Any], backbone_sha256: str, what: str) -> None:
    """Refuse a folder seqadapt exported from a run on other backbone weights (seqadapt_export.json says)."""
    recorded = side.get("backbone", {}).get("sha256") if isinstance(side.get("backbone"), dict) else None
    if recorded is not None and recorded != backbone_sha256:
        raise refused(what, f"it was exported from a run on backbone weights with SHA-256 {recorded}, and this run's "
                      f"backbone has {backbone_sha256}", "Import it into a run of the backbone it was trained on")


def _few(names: list[str]) -> str:
    return f"{names[:3]}{f' and {len(names) - 3} more' if len(names) > 3 else ''}" if names else "none"

"""Retrain, retire and restore one task of a finished run (``seqadapt-task``).

Each operation holds the run folder's writer lock (:class:`~seqadapt.lock.RunLock`)
from its first read to its last write, proves before it changes anything that
every other served task answers exactly as it did when it was learned (a full
re-evaluation against the artefacts' learned evaluations, and the backbone's
weight hash), and builds what it writes aside (:mod:`seqadapt.versions`), so a
failed operation leaves the folder as it was. Each ends with an entry in
``results.json``'s ``history``.

After a retrain or restore, ``results.json``'s score matrix, stages and metrics
describe the task's current version, as the artefacts prove it: exactly what
resume rebuilds from them. What the task scored before is in the history entry.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from omegaconf import DictConfig, OmegaConf

from seqadapt import __version__
from seqadapt.artefacts import RUN_CONFIG, Reference, read_manifest, save_task_artefact, task_artefact_dir
from seqadapt.build import container
from seqadapt.console import StageProgress
from seqadapt.data.tasks import TaskSpec
from seqadapt.evaluation import rows_sha256
from seqadapt.io import atomic_write
from seqadapt.lock import RunLock
from seqadapt.opened_run import OpenedRun, TaskModel, TaskOperationError
from seqadapt.overrides import stage_settings
from seqadapt.plots import write_run_plots
from seqadapt.record import HistoryEntry, TaskEvaluation
from seqadapt.retrain_settings import retrain_config, settings_sizes, with_task_sizes
from seqadapt.saved_config import config_text
from seqadapt.stream.fit import FitResult, fit_stage
from seqadapt.stream.plan import Stage, stage_seed
from seqadapt.versions import (
    KeptStage,
    copy_folder,
    current_version,
    exchange_folders,
    keep_current,
    kept_stage,
    kept_versions,
    stamp_version,
    staging,
    version_of,
    versions_dir,
    write_retired,
)

log = logging.getLogger("seqadapt")


def retire(run_dir: Path, task: str) -> HistoryEntry:
    """Stop serving ``task`` (and selecting it without task IDs); its artefact and versions are kept. Every other
    served task is re-evaluated with the task absent and must be bit-identical to how it was learned."""
    started = time.perf_counter()
    with RunLock(run_dir):
        run = OpenedRun.open(run_dir)
        run.require_task(task)
        if task in run.retired:
            since = run.retired[task]
            raise TaskOperationError(
                f"task '{task}' of {run_dir} is already retired (version {since['version']}, since {since['time']}); "
                f"to serve it again: seqadapt-task restore {run_dir} --task {task}")
        served = run.served(without=task)
        if not served:
            raise TaskOperationError(f"'{task}' is the only task {run_dir} serves; retiring it would leave nothing to "
                                     "serve")
        model = served_model(run, served)
        verdict = model.verify(served, f"with '{task}' retired")
        version = current_version(run_dir, task)
        entry = history_entry("retire", task, version, started, verified=verdict.checked,
                              selection=model.selection(served))
        write_retired(run_dir, {**run.retired, task: {"version": version, "time": entry.time}})
        record_entry(run, entry)
    return entry


def restore(run_dir: Path, task: str, version: int | None = None) -> HistoryEntry:
    """Make ``version`` of ``task`` current again (rollback; default: the current one) and serve it (un-retire).
    The restored version must reproduce its own learned evaluation, and every other served task its own."""
    started = time.perf_counter()
    with RunLock(run_dir):
        run = OpenedRun.open(run_dir)
        run.require_task(task)
        current, kept = current_version(run_dir, task), kept_versions(run_dir, task)
        target = current if version is None else version
        known = sorted({*kept, current})
        if target not in known:
            raise TaskOperationError(f"task '{task}' of {run_dir} has no version {target}; its versions are {known} "
                                     f"(current: {current}; earlier ones kept in {versions_dir(run_dir, task)})")
        if target == current and task not in run.retired:
            raise TaskOperationError(f"version {target} of task '{task}' is already current and served in {run_dir}; "
                                     f"its versions are {known}")
        with staging(run_dir) as aside:
            directory = task_artefact_dir(run_dir, task)
            if target != current:
                directory = aside / task
                copy_folder(kept[target], directory)
            entry, learned = _restored(run, task, directory, current, target, started)
            if target != current:
                replace_current(run, task, directory)
        if task in run.retired:
            write_retired(run_dir, {name: since for name, since in run.retired.items() if name != task})
        commit(run, learned, kept_stage(run_dir, task, target) if target != current else None, entry)
    return entry


def _restored(run: OpenedRun, task: str, directory: Path, current: int, target: int, started: float
              ) -> tuple[HistoryEntry, TaskEvaluation]:
    """Verify version ``target`` of ``task`` (in ``directory``) beside the served tasks; its history entry and
    learned evaluation."""
    tasks = [t for t in run.record.tasks if t in run.served(without=task) or t == task]
    model = TaskModel.build(run, run.splits(tasks))
    learned = {t: model.install(directory if t == task else task_artefact_dir(run.run_dir, t)).learned for t in tasks}
    model.on_recorded_device()
    verdict = model.verify(tasks, f"restoring version {target} of '{task}'")
    before = TaskEvaluation.from_dict(read_manifest(task_artefact_dir(run.run_dir, task))["learned"])
    made = [e for e in run.record.history if e.task == task and e.operation == "retrain" and e.version == target]
    entry = history_entry(
        "restore", task, target, started, previous_version=current, verified=verdict.checked,
        config_difference=made[-1].config_difference if made else {}, metric=learned[task].metric,
        score_before=before.score, score_after=learned[task].score, selection=model.selection(tasks),
    )
    return entry, learned[task]


def retrain(run_dir: Path, task: str, overrides: list[str] = ()) -> HistoryEntry:
    """Train a new version of ``task``'s adapters and head over the run's frozen backbone, beside every other
    served task (each verified unchanged before and after), with ``overrides`` of how it trains
    (:mod:`seqadapt.retrain_settings`); the old version is kept and can be restored. A retired task stays
    retired (restore it to serve the new version)."""
    started = time.perf_counter()
    with RunLock(run_dir):
        run = OpenedRun.open(run_dir)
        run.require_task(task)
        cfg, changed = retrain_config(run.cfg, task, list(overrides), str(Path(run_dir) / RUN_CONFIG))
        current = read_manifest(task_artefact_dir(run_dir, task))
        served = run.served(without=task)
        splits = {**run.splits(served), **run.splits([task], cfg)}
        changed.update(definition_changes(current["spec"], splits[task].spec))
        model = served_model(run, served, splits, cfg)
        if served:
            model.verify(served, f"before retraining '{task}'")
        version = max([*kept_versions(run_dir, task), version_of(current)]) + 1
        with staging(run_dir) as aside:
            learned, fitted = _train(run, model, cfg, task, version, aside)
            verdict = model.verify(served, f"after training version {version} of '{task}'") if served else None
            directory = _save(run, model, learned, fitted, version, aside)
            entry = history_entry(
                "retrain", task, version, started, previous_version=version_of(current), config_difference=changed,
                metric=learned.metric, score_before=current["learned"]["score"], score_after=learned.score,
                verified=verdict.checked if verdict else [],
                selection=None if task in run.retired else model.selection([*served, task]))
            replace_current(run, task, directory)
        stage = KeptStage(train_examples=len(splits[task].train), train_seconds=fitted.seconds,
                          settings=stage_settings(container(cfg), [task]))
        commit(run, learned, stage, entry)
    return entry


def _train(run: OpenedRun, model: TaskModel, cfg: DictConfig, task: str, version: int, aside: Path
           ) -> tuple[TaskEvaluation, FitResult]:
    """Train ``task`` afresh as its stage did (same stage seed), then evaluate it (its outputs kept in
    ``model.verifier.learned_outputs``); returns its learned evaluation and how it trained."""
    trainer_kwargs = container(cfg.trainer)
    progress = [StageProgress()] if trainer_kwargs.get("enable_progress_bar", True) else []
    for bar in progress:
        bar.label = f"retraining {task} (version {version})"

    def make_trainer() -> pl.Trainer:
        return pl.Trainer(default_root_dir=str(aside), logger=False, callbacks=progress, **trainer_kwargs)

    index = run.stage_of(task) - 1
    stage = Stage(index, len(run.record.plan), [model.splits[task]], [], [])
    fitted = fit_stage(model.module, stage, model.loaders, make_trainer, stage_seed(run.record.seed, index))
    return model.verifier.evaluate_learned([model.splits[task]])[0], fitted


def _save(run: OpenedRun, model: TaskModel, learned: TaskEvaluation, fitted: FitResult, version: int, aside: Path
          ) -> Path:
    """The new version's artefact, written in ``aside`` as the stream writes one (its reference outputs too),
    with its version; returns its folder."""
    task = learned.task
    reference = Reference(model.verifier.learned_outputs[task], rows_sha256(model.splits[task].test), fitted.environment)
    directory = save_task_artefact(
        model.module, learned, aside, stage=run.stage_of(task), backbone_name=run.record.backbone,
        backbone_sha256=run.record.backbone_sha256, settings=asdict(model.loaders.config), run_id=run.record.run_id,
        reference=reference)
    stamp_version(directory, version)
    return directory


def replace_current(run: OpenedRun, task: str, directory: Path) -> None:
    """Keep the current version of ``task`` (with its stage's record), then swap ``directory`` in its place."""
    stage = run.record.stages[run.stage_of(task) - 1]
    keep_current(run.run_dir, task, KeptStage(train_examples=stage.train_examples, train_seconds=stage.train_seconds,
                                              settings=stage.settings))
    exchange_folders(task_artefact_dir(run.run_dir, task), directory)


def served_model(run: OpenedRun, served: list[str], splits: dict | None = None, cfg: DictConfig | None = None) -> TaskModel:
    """A model of the run (or of ``cfg``) holding the ``served`` tasks from their artefacts, on the recorded device."""
    model = TaskModel.build(run, splits if splits is not None else run.splits(served), cfg)
    for name in served:
        model.install(task_artefact_dir(run.run_dir, name))
    model.on_recorded_device()
    return model


def definition_changes(saved: dict[str, Any], spec: TaskSpec) -> dict[str, Any]:
    """The keys of a task's definition (``spec``, from its task_dir) that differ from ``saved``, the one its
    current version was learned with (its manifest's, as JSON)."""
    now = json.loads(json.dumps(spec.to_dict()))
    return {f"definition.{key}": {"run": saved.get(key), "now": now.get(key)}
            for key in sorted(saved.keys() | now.keys()) if saved.get(key) != now.get(key)}


def commit(run: OpenedRun, learned: TaskEvaluation, stage: KeptStage | None, entry: HistoryEntry) -> None:
    """Record that the version whose learned evaluation is ``learned`` is current: its split sizes in the run's
    config (so the config rebuilds its splits), the record (:func:`use_version`), the history entry, the plots."""
    sizes = settings_sizes(stage["settings"]) if stage is not None else None
    config = OmegaConf.to_container(with_task_sizes(run.cfg, learned.task, sizes)) if sizes is not None else None
    if config is not None and config != OmegaConf.to_container(run.cfg):
        atomic_write(run.run_dir / RUN_CONFIG, config_text(config))
        run.cfg, run.record.config = OmegaConf.create(config), config
    use_version(run, learned, stage)
    record_entry(run, entry)
    try:
        write_run_plots(run.record, run.run_dir)  # the matrix changed
    except Exception as err:  # noqa: BLE001 - as PlotWriter: the record is written, a picture is not worth failing
        log.warning("could not redraw the plots of %s: %s", run.run_dir, err)


def use_version(run: OpenedRun, learned: TaskEvaluation, stage: KeptStage | None) -> None:
    """Make ``results.json``'s stages, matrix and metrics describe the task's version whose learned evaluation
    is ``learned``, as resume rebuilds them from the artefacts: that evaluation wherever the task was evaluated
    or carried, and ``stage`` (how it trained) in the stage that learned it."""
    record, task = run.record, learned.task
    learned_in = run.stage_of(task)
    for index, old in enumerate(record.stages):
        new = replace(old, evaluations=[learned if e.task == task else e for e in old.evaluations],
                      carried={**old.carried, **({task: learned.score} if task in old.carried else {})})
        record.stages[index] = replace(new, **stage) if stage is not None and old.stage == learned_in else new
    record.score_matrix = [record.row_of(stage) for stage in record.stages]
    reference = container(run.cfg.reference_accuracy) if run.cfg.get("reference_accuracy") else None
    record.update_metrics([reference[name] for name in record.tasks] if reference else None)


def history_entry(operation: str, task: str, version: int, started: float, **details: Any) -> HistoryEntry:
    """The history entry of an operation that started at ``started`` (``time.perf_counter()``) and ends now."""
    return HistoryEntry(
        operation=operation, task=task, version=version, time=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seqadapt_version=__version__, seconds=round(time.perf_counter() - started, 3), **details,
    )


def record_entry(run: OpenedRun, entry: HistoryEntry) -> None:
    """Append ``entry`` to the run's history and write ``results.json`` (atomically)."""
    run.record.history.append(entry)
    run.record.save(run.run_dir)

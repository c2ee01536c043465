"""A finished run opened for an operation on its tasks: its saved config and record, and a model holding chosen
tasks from their artefacts, each re-evaluated against what it scored when learned.

Everything is rebuilt the way resume rebuilds it: the saved ``run_config.yaml``
read as plain data (:mod:`seqadapt.saved_config`), the tasks' splits from their
definitions, the backbone checked against the run's weight hash, each artefact
checked for its seal, backbone, stage, task definition and run before it is
installed. A task's reference is its artefact's learned evaluation, so
:meth:`TaskModel.verify` proves, bit for bit, that a task answers as it did
when it was learned; where that fails in another environment (device, torch,
threads), it says so instead of reporting a change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from seqadapt.artefacts import RUN_CONFIG, TaskArtefact, check_written_by, install_task, load_task_artefact
from seqadapt.backbone import Backbone, BackboneConfig, load_backbone, weights_hash
from seqadapt.build import build_module, build_tasks, container
from seqadapt.data.splits import TaskSplits
from seqadapt.environment import current_environment, environment_differences
from seqadapt.model import SeqAdaptModule
from seqadapt.record import RESULTS_FILE, GuardVerdict, RunRecord
from seqadapt.saved_config import load_saved_config
from seqadapt.selection import evaluate_selection
from seqadapt.strategies import get_strategy
from seqadapt.stream.loaders import LoaderConfig, StreamLoaders
from seqadapt.stream.verify import StageVerifier
from seqadapt.versions import Retirement, retired_tasks


class TaskOperationError(RuntimeError):
    """An operation on a run's tasks that cannot be done as asked; the run folder is unchanged."""


class VerificationError(TaskOperationError):
    """A task did not answer as it did when it was learned; the run folder is unchanged."""


@dataclass
class OpenedRun:
    """A finished run's folder, saved config, record and retired tasks."""

    run_dir: Path
    cfg: DictConfig
    record: RunRecord
    retired: dict[str, Retirement]

    @classmethod
    def open(cls, run_dir: Path) -> OpenedRun:
        """Read a run for an operation; refuse one that is not finished or keeps no per-task artefacts."""
        run_dir = Path(run_dir)
        if not (run_dir / RUN_CONFIG).is_file():
            raise TaskOperationError(f"{run_dir} is not a seqadapt run directory: it has no {RUN_CONFIG}")
        cfg = load_saved_config(run_dir / RUN_CONFIG)
        record = RunRecord.load(run_dir / RESULTS_FILE)
        strategy = get_strategy(cfg.strategy.name, cfg.strategy.get("top_k"))
        if not strategy.isolates_tasks:
            raise TaskOperationError(
                f"{run_dir} is a strategy={cfg.strategy.name} run: it {strategy.sharing} and keeps no "
                "per-task artefacts, so no task of it can be retrained, retired or restored alone")
        if not record.finished:
            raise TaskOperationError(
                f"{run_dir} has finished {record.completed_stages} of its {len(record.plan)} stages; finish it first "
                f"(seqadapt resume={run_dir}), then operate on its tasks")
        return cls(run_dir, cfg, record, retired_tasks(run_dir))

    def require_task(self, task: str) -> None:
        if task not in self.record.tasks:
            raise TaskOperationError(f"{self.run_dir} has no task '{task}'; its tasks are {self.record.tasks}")

    def served(self, without: str | None = None) -> list[str]:
        """The tasks served (not retired), in stage order, less ``without``."""
        return [t for t in self.record.tasks if t not in self.retired and t != without]

    def stage_of(self, task: str) -> int:
        """The stage (1-based) that learned ``task``."""
        return next(stage.stage for stage in self.record.stages if task in stage.task.split("+"))

    def splits(self, tasks: list[str], cfg: DictConfig | None = None) -> dict[str, TaskSplits]:
        """``tasks``' definitions and splits, built as the run built them (or as ``cfg`` says)."""
        cfg = OmegaConf.merge(cfg if cfg is not None else self.cfg, {"tasks": {"order": list(tasks)}})
        if cfg.data.get("task_sizes"):  # the other tasks' own sizes are no concern of these splits
            own = {name: sizes for name, sizes in cfg.data.task_sizes.items() if name in tasks}
            OmegaConf.update(cfg, "data.task_sizes", own or None, merge=False)
        return {split.spec.name: split for split in build_tasks(cfg)} if tasks else {}


@dataclass
class TaskModel:
    """The run's backbone and a trainable model of its config, with the tasks installed so far."""

    run: OpenedRun
    backbone: Backbone
    module: SeqAdaptModule
    loaders: StreamLoaders
    verifier: StageVerifier
    splits: dict[str, TaskSplits]

    @classmethod
    def build(cls, run: OpenedRun, splits: dict[str, TaskSplits], cfg: DictConfig | None = None) -> TaskModel:
        """The run's backbone (refused unless it has the run's weights) and an empty model of ``cfg`` (the run's
        config, or a retrain's)."""
        cfg = cfg if cfg is not None else run.cfg
        backbone = load_backbone(BackboneConfig(**container(cfg.backbone)))
        sha256 = weights_hash(backbone.model)
        if sha256 != run.record.backbone_sha256:
            raise TaskOperationError(
                f"the backbone {container(cfg.backbone)} of {run.run_dir / RUN_CONFIG} loads weights with sha256 "
                f"{sha256}, but the run was trained on {run.record.backbone} with sha256 {run.record.backbone_sha256}; "
                f"set backbone in {RUN_CONFIG} back to the one the run was trained with")
        data = cfg.data
        loaders = StreamLoaders(backbone.tokenizer, LoaderConfig(
            max_length=data.max_length, batch_size=data.batch_size, eval_batch_size=data.eval_batch_size))
        module = build_module(cfg, backbone)
        return cls(run, backbone, module, loaders, StageVerifier(module, loaders, "strict", 1), dict(splits))

    def install(self, directory: Path) -> TaskArtefact:
        """Install the artefact in ``directory`` (its folder is named after its task) and make its learned
        evaluation the task's reference, after checking it is the run's, of its stage and definition."""
        artefact = load_task_artefact(directory, backbone_sha256=self.verifier.guard.backbone_sha256)
        task = artefact.manifest["task"]
        if task not in self.splits:
            raise TaskOperationError(f"{directory} holds task '{task}', not one of {sorted(self.splits)}")
        stage = self.run.stage_of(task)
        if artefact.manifest["stage"] != stage or artefact.spec != self.splits[task].spec:
            raise TaskOperationError(
                f"{directory} is stage {artefact.manifest['stage']} of a definition of '{task}' other than the run's "
                f"(stage {stage}, its task_dir's {task}.yaml): put back the definition it was learned with (its "
                "manifest.json's \"spec\"), then retry")
        check_written_by(directory, artefact.manifest, self.run.record.run_id, self.run.run_dir / RESULTS_FILE)
        install_task(self.module, artefact)
        self.verifier.learn(artefact.learned)
        return artefact

    def on_recorded_device(self) -> None:
        """Evaluate where the references were measured (a run trained on CUDA, where CUDA is here)."""
        if self.run.record.environment.get("device") == "cuda" and torch.cuda.is_available():
            self.module.to("cuda")

    def verify(self, tasks: list[str], what: str) -> GuardVerdict:
        """Re-evaluate ``tasks`` and the backbone: each must equal, bit for bit, its reference; ``what`` names
        the moment in the error (e.g. "after training version 2 of 'colors'")."""
        verdict = self.verifier.check(0, what, self.verifier.evaluate([self.splits[t] for t in tasks]))
        if verdict.passed:
            return verdict
        changed = environment_differences(self.run.record.environment, current_environment(self.module.device.type))
        why = (f"this runs in another environment than the run was evaluated in ({'; '.join(changed)}), and exact "
               "outputs depend on it (no sign of forgetting): run it with the recorded settings (OMP_NUM_THREADS, "
               "device, the same torch)" if changed else "\n  " + "\n  ".join(verdict.violations))
        raise VerificationError(f"{what}, tasks do not answer as they did when they were learned, so "
                                f"{self.run.run_dir} was left as it was: {why}")

    def selection(self, tasks: list[str]) -> dict[str, dict[str, float]] | None:
        """Task-ID-free inference among ``tasks`` (each selector the run measures): what serving without task IDs
        now achieves; ``None`` where the run measures none, or one task leaves nothing to choose (it costs a pass
        per candidate over every test split, the larger part of a retire on a real backbone)."""
        selectors = list(self.run.cfg.selection.selectors)
        if not selectors or len(tasks) < 2:
            return None
        loaders = {task: self.loaders.test(self.splits[task]) for task in tasks}
        measured: dict[str, Any] = evaluate_selection(self.module, loaders, selectors)["selectors"]
        return {name: {"task_id_accuracy": result["task_id_accuracy"], "accuracy": result["accuracy"]}
                for name, result in measured.items()}

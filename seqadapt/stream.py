"""The task-stream driver: learn tasks in order, re-evaluate all earlier ones, guard them, record R."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from transformers import PreTrainedTokenizerBase

from seqadapt import metrics
from seqadapt.artefacts import (
    ArtefactError,
    has_artefact,
    install_task,
    load_task_artefact,
    save_task_artefact,
    task_artefact_dir,
)
from seqadapt.adapters import shared_tensor_reader
from seqadapt.backbone import weights_hash
from seqadapt.data.loaders import make_loader
from seqadapt.distributed import is_rank_zero, share_from_rank_zero
from seqadapt.data.splits import TaskSplits
from seqadapt.evaluation import TaskEvaluation, evaluate_task
from seqadapt.guard import ForgettingGuard, GuardMode, GuardVerdict
from seqadapt.module import SeqAdaptModule
from seqadapt.plots import write_run_plots
from seqadapt.selection import check_selectors, evaluate_selection, fit_prototypes
from seqadapt.tracking import WandbTracker

log = logging.getLogger("seqadapt")


@dataclass(frozen=True)
class LoaderConfig:
    """Tokenisation and batching. ``eval_batch_size`` is fixed for the whole stream so logits stay comparable."""

    max_length: int = 64
    batch_size: int = 32
    eval_batch_size: int = 64


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file and an atomic rename: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


class StreamRun:
    """One pass over an ordered task stream, writing ``results.json`` and plots after every stage.

    Sequential strategies get one stage per task; ``joint`` gets a single stage
    that trains every task at once and a one-row accuracy matrix.

    With per-task adapters, every stage that passes the guard saves its task's
    artefact (see :mod:`seqadapt.artefacts`), and ``resume=True`` continues a
    run in ``output_dir``: finished stages are loaded from their artefacts and
    re-verified by the guard instead of being trained again. Stage ``i`` is
    seeded with ``seed + i`` whatever came before it, so a resumed run equals
    an uninterrupted one bit for bit.

    ``full_check_every=k`` (per-task adapters only) re-evaluates the earlier
    tasks after every k-th stage and the last one; the stages between run the
    guard's tensor check and carry the earlier tasks' learned accuracies into
    the accuracy matrix (each stage lists them under ``carried``). ``None``
    leaves the full check to the last stage; ``1``, the default, runs it
    after every stage.

    Every stage also computes its tasks' class prototypes (see
    :mod:`seqadapt.selection`) and, for each of ``selectors``, measures
    task-ID-free inference over all tasks seen so far (``task_selection`` in
    each stage's record).
    """

    def __init__(
        self,
        module: SeqAdaptModule,
        tasks: list[TaskSplits],
        tokenizer: PreTrainedTokenizerBase,
        *,
        make_trainer: Callable[[], pl.Trainer],
        output_dir: Path,
        loaders: LoaderConfig = LoaderConfig(),
        seed: int = 0,
        guard_mode: GuardMode = "strict",
        reference_accuracy: dict[str, float] | None = None,
        tracker: WandbTracker | None = None,
        backbone_name: str = "unnamed",
        resume: bool = False,
        run_info: dict[str, Any] | None = None,
        full_check_every: int | None = 1,
        selectors: list[str] = ("entropy", "prototype"),
    ) -> None:
        self.module = module
        self.tasks = tasks
        self.tokenizer = tokenizer
        self.make_trainer = make_trainer
        self.output_dir = Path(output_dir)
        self.loaders = loaders
        self.seed = seed
        self.tracker = tracker
        self.backbone_name = backbone_name
        self.resume = resume
        self.selectors = check_selectors(selectors)
        self.saves_artefacts = module.strategy.adapters == "per_task" and not module.strategy.train_backbone
        if full_check_every != 1:
            if full_check_every is not None and full_check_every < 1:
                raise ValueError(f"guard.full_check_every must be a positive number of stages or null, got {full_check_every}")
            if not self.saves_artefacts:
                raise ValueError(
                    f"guard.full_check_every={full_check_every} needs per-task adapters over a frozen backbone "
                    f"(strategy=adapter); strategy '{module.strategy.name}' changes shared weights, which only "
                    "re-evaluation can measure: use guard.full_check_every=1"
                )
        self.full_check_every = full_check_every
        self.tensor_checks = full_check_every != 1  # they need each task's tensors as learned
        self.backbone_tensors = shared_tensor_reader(module.backbone) if self.tensor_checks else None
        self.guard = ForgettingGuard(
            weights_hash(module.backbone), guard_mode, backbone=self.backbone_tensors() if self.backbone_tensors else None
        )
        names = [t.spec.name for t in tasks]
        missing = sorted(set(names) - set(reference_accuracy or {}))
        if reference_accuracy is not None and missing:
            raise ValueError(f"reference_accuracy (for FWT) has no value for task(s) {missing}")
        self.reference = None if reference_accuracy is None else [reference_accuracy[n] for n in names]
        rows = 1 if module.strategy.joint else len(tasks)
        self.matrix: list[list[float | None]] = [[None] * len(tasks) for _ in range(rows)]
        self.stages: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {
            "tasks": names,
            "strategy": module.strategy.name,
            "backbone": backbone_name,
            "backbone_sha256": self.guard.backbone_sha256,
            "seed": seed,
            "guard": {"mode": guard_mode, "full_check_every": full_check_every},
            "selectors": self.selectors,
            **(run_info or {}),
        }
        self._test_loaders = {}
        # earlier tasks' selection passes are reused only where the strict guard proves them unchanged
        self._selection_memo = {} if self.saves_artefacts and guard_mode == "strict" else None
        self.plots: dict[str, Path] = {}

    def _evaluate(self, tasks: list[TaskSplits]) -> list[TaskEvaluation]:
        return [evaluate_task(self.module, t.spec.name, self._test_loader(t)) for t in tasks]

    def _test_loader(self, task: TaskSplits):
        if task.spec.name not in self._test_loaders:
            self._test_loaders[task.spec.name] = make_loader(
                task.test, self.tokenizer, max_length=self.loaders.max_length, batch_size=self.loaders.eval_batch_size
            )
        return self._test_loaders[task.spec.name]

    def run(self) -> dict[str, Any]:
        """Run every stage; the W&B run is finished whether the stream succeeds or fails."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        failed = True
        try:
            restored = self._restore() if self.resume else 0
            plan = [self.tasks] if self.module.strategy.joint else [[task] for task in self.tasks]
            for index, group in enumerate(plan[restored:], start=restored):
                self._stage(index, group, len(plan), started)
            if self.tracker:
                self.tracker.log_results(self.results, self.plots)
            failed = False
        finally:
            if self.tracker:
                self.tracker.finish(failed=failed)
        return self.results

    def _stage(self, index: int, group: list[TaskSplits], stages: int, started: float) -> None:
        name = "+".join(t.spec.name for t in group) if len(group) > 1 else group[0].spec.name
        stage_started = time.perf_counter()
        pl.seed_everything(self.seed + index, workers=True, verbose=False)
        for task in group:
            self.module.add_task(task.spec)
        self.module.set_active_tasks([t.spec.name for t in group])
        single = len(group) == 1
        train = make_loader(
            group[0].train if single else [t.train for t in group], self.tokenizer,
            max_length=self.loaders.max_length, batch_size=self.loaders.batch_size, shuffle=True, seed=self.seed + index,
        )
        val_parts = [t.val for t in group if len(t.val)]
        val = make_loader(
            val_parts[0] if single else [t.val for t in group], self.tokenizer,
            max_length=self.loaders.max_length, batch_size=self.loaders.eval_batch_size,
        ) if len(val_parts) == len(group) else None
        self.module.train()  # Lightning keeps the mode it finds; a trained backbone needs its dropout on
        trainer = self.make_trainer()
        trainer.fit(self.module, train_dataloaders=train, val_dataloaders=val)
        for task in group:  # part of learning the task: what the prototype selector will compare inputs with
            fit_prototypes(self.module, task.spec.name, make_loader(
                task.train, self.tokenizer, max_length=self.loaders.max_length, batch_size=self.loaders.eval_batch_size
            ))
        train_seconds = time.perf_counter() - stage_started
        if is_rank_zero():
            try:
                verdict = self._verify_and_record(
                    index, name, group, stages, started, stage_started, train_seconds, trainer.world_size
                )
            except BaseException:
                share_from_rank_zero(None)  # the other ranks stop instead of waiting for a verdict forever
                raise
            share_from_rank_zero(verdict)  # once the stage is on disk: the barrier before the next stage
        else:
            verdict = share_from_rank_zero(None)
            if verdict is None:
                raise RuntimeError(f"rank 0 failed while verifying stage {index + 1} ({name}); its log says why")
        self.guard.enforce(verdict)

    def _verify_and_record(
        self, index: int, name: str, group: list[TaskSplits], stages: int, started: float, stage_started: float,
        train_seconds: float, processes: int,
    ) -> GuardVerdict:
        """Rank 0's part of a stage: evaluate, guard, measure task selection, write results, log, save artefacts."""
        single = len(group) == 1
        eval_started = time.perf_counter()
        learned = self._evaluate(group)
        eval_seconds = time.perf_counter() - eval_started

        guard_started = time.perf_counter()
        earlier = self.tasks[:index] if single else []
        verdict, evaluations, carried = self._check_earlier(index, name, earlier, learned, stages)
        guard_seconds = time.perf_counter() - guard_started
        for evaluation in learned:  # after the check: this stage's tasks are references now
            self._learn(evaluation)
        seen = self.tasks if self.module.strategy.joint else self.tasks[: index + 1]
        selection = evaluate_selection(
            self.module, {t.spec.name: self._test_loader(t) for t in seen}, self.selectors, self._selection_memo
        ) if self.selectors else None

        row = {**carried, **{e.task: e.accuracy for e in evaluations}}
        for j, task in enumerate(self.tasks):
            if task.spec.name in row:
                self.matrix[index][j] = row[task.spec.name]
        stage = {
            "stage": index + 1,
            "task": name,
            "train_examples": sum(len(t.train) for t in group),
            "test_examples": sum(len(t.test) for t in group),
            "train_seconds": train_seconds,
            "train_processes": processes,
            "eval_seconds": eval_seconds,
            "guard_seconds": guard_seconds,
            "selection_seconds": selection["seconds"] if selection else 0.0,
            "evaluations": [asdict(e) for e in evaluations],
            "carried": carried,
            "guard": verdict.to_dict(),
            "task_selection": selection,
        }
        self.stages.append(stage)
        self.results["wall_seconds"] = time.perf_counter() - started
        accuracies = " ".join(f"{e.task}={e.accuracy:.4f}" for e in learned)
        if verdict.passed:
            how = "re-evaluated" if verdict.kind == "full" else "tensors"
            guard_text = f"guard ok ({len(verdict.checked)} earlier task(s) unchanged, {how})"
        else:
            guard_text = f"guard {'FAILED' if self.guard.mode == 'strict' else 'recorded'} {len(verdict.violations)} change(s)"
        without_id = " ".join(
            f"{selector}={record['task_id_accuracy']:.3f}/{record['accuracy']:.3f}"
            for selector, record in (selection["selectors"] if selection else {}).items()
        )
        log.info(
            "stage %d/%d %s: test acc %s | %s | task ID/acc without ID: %s | %.1fs",
            index + 1, len(self.matrix), name, accuracies, guard_text, without_id or "off",
            time.perf_counter() - stage_started,
        )
        self._write()  # before enforcing, so a failing stage is on disk with its verdict
        if self.tracker:
            self.tracker.log_stage(stage)
        if self.saves_artefacts and verdict.passed:  # an artefact is always a verified stage
            for evaluation in learned:
                save_task_artefact(
                    self.module, evaluation, self.output_dir, stage=index + 1, backbone_name=self.backbone_name,
                    backbone_sha256=self.guard.backbone_sha256, settings=asdict(self.loaders),
                )
        return verdict

    def _check_earlier(
        self, index: int, name: str, earlier: list[TaskSplits], learned: list[TaskEvaluation], stages: int
    ) -> tuple[GuardVerdict, list[TaskEvaluation], dict[str, float]]:
        """The guard's verdict on the ``earlier`` tasks after stage ``index``, the evaluations it made, and
        the accuracies it carried over instead (tensor check)."""
        if self._full_check_due(index, stages) or not earlier:
            evaluations = self._evaluate(earlier) + learned
            return self.guard.check(index + 1, name, evaluations, weights_hash(self.module.backbone)), evaluations, {}
        names = [t.spec.name for t in earlier]
        verdict = self.guard.check_tensors(index + 1, name, self.module.tasks_state(names), self.backbone_tensors())
        return verdict, learned, {n: self.guard.references[n].accuracy for n in names}

    def _full_check_due(self, index: int, stages: int) -> bool:
        """Re-evaluate earlier tasks after stage ``index``? Always after the last stage."""
        every = self.full_check_every
        return index == stages - 1 or (every is not None and (index + 1) % every == 0)

    def _learn(self, evaluation: TaskEvaluation) -> None:
        """Make ``evaluation`` the task's reference, with a snapshot of its tensors when tensor checks may run."""
        self.guard.learn(evaluation, self.module.task_state(evaluation.task) if self.tensor_checks else None)

    def _restore(self) -> int:
        """Load every finished stage from its artefact, re-verify it, and return how many were restored.

        A stage counts as finished when its artefact is complete; the accuracy
        rows and stage records come from this run's ``results.json``. The
        loaded tasks are evaluated again and must reproduce, bit for bit, the
        accuracy and logits recorded in their manifests, on the same backbone.
        """
        if not self.saves_artefacts:
            raise ArtefactError(
                f"strategy '{self.module.strategy.name}' changes shared weights every stage, so its stages leave no "
                "per-task artefacts to resume from; start it again, or use strategy=adapter"
            )
        results_path = self.output_dir / "results.json"
        previous = json.loads(results_path.read_text()) if results_path.is_file() else None
        names = self.results["tasks"]
        if previous is not None and previous["tasks"] != names:
            raise ArtefactError(
                f"{self.output_dir} holds a run of tasks {previous['tasks']}, not {names}; "
                "resume with the config that run was started with"
            )
        restored = 0
        while restored < len(self.tasks) and has_artefact(self.output_dir, names[restored]):
            restored += 1
        if restored == 0:
            log.info("resume: no finished stage in %s, starting from stage 1", self.output_dir)
            return 0
        if previous is None or previous["completed_stages"] < restored:
            raise ArtefactError(f"{results_path} is missing or older than the artefacts beside it; start a new run")
        for index, task in enumerate(self.tasks[:restored]):
            artefact = load_task_artefact(
                task_artefact_dir(self.output_dir, task.spec.name), backbone_sha256=self.guard.backbone_sha256
            )
            if artefact.manifest["stage"] != index + 1 or artefact.spec != task.spec:
                raise ArtefactError(
                    f"artefact {artefact.directory} is stage {artefact.manifest['stage']} of another task definition; "
                    f"this stream has '{task.spec.name}' as stage {index + 1}"
                )
            install_task(self.module, artefact)
            self._learn(artefact.learned)
        evaluations = self._evaluate(self.tasks[:restored])
        verdict = self.guard.check(restored, "resume", evaluations, weights_hash(self.module.backbone))
        if not verdict.passed:
            raise ArtefactError(
                "restored artefacts do not reproduce what was recorded when they were learned:\n  "
                + "\n  ".join(verdict.violations)
            )
        self.stages = previous["stages"][:restored]
        for i, row in enumerate(previous["accuracy_matrix"][:restored]):
            self.matrix[i] = row
        self.results["resumed"] = {"stages_restored": restored, "verification": verdict.to_dict()}
        if self.tracker:
            for stage in self.stages:
                self.tracker.log_stage(stage)
        log.info(
            "resume: restored %d finished stage(s) from %s; guard re-verified %s", restored,
            self.output_dir / "artefacts", ", ".join(verdict.checked),
        )
        if is_rank_zero():
            self._write()
        return restored

    def _write(self) -> None:
        done = len(self.stages)
        self.results["accuracy_matrix"] = self.matrix[:done]
        self.results["stages"] = self.stages
        self.results["completed_stages"] = done
        self.results["params_per_task"] = {t: asdict(self.module.parameter_budget(t)) for t in self.module.tasks}
        if self.module.strategy.joint:
            self.results["metrics"] = metrics.joint_summary(self.matrix[0])
        else:
            square = [row[:done] for row in self.matrix[:done]]
            self.results["metrics"] = metrics.summary(square, self.reference[:done] if self.reference else None)
        write_json(self.output_dir / "results.json", self.results)
        self.plots = write_run_plots(self.results, self.output_dir)

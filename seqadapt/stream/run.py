"""The task-stream driver: a short loop over the planned stages, fit → verify → record → callbacks."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from transformers import PreTrainedTokenizerBase

from seqadapt.data.splits import TaskSplits
from seqadapt.distributed import is_rank_zero, leave_together, share_from_rank_zero
from seqadapt.guard import ForgettingError, GuardMode
from seqadapt.model import SeqAdaptModule, parameter_budget
from seqadapt.record import GuardVerdict, RunRecord, StageRecord
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.fit import FitResult, fit_stage
from seqadapt.stream.imported import import_stage
from seqadapt.stream.loaders import LoaderConfig, StreamLoaders
from seqadapt.stream.plan import Stage, plan_stages, stage_seed
from seqadapt.stream.standard import standard_callbacks
from seqadapt.stream.verify import StageVerifier


class StreamRun:
    """One pass over an ordered task stream; ``run()`` returns its :class:`~seqadapt.record.RunRecord`.

    The plan is made once (:func:`~seqadapt.stream.plan.plan_stages`: a stage
    per task, or one ``joint`` stage). Each stage is fitted (seeded by
    :func:`~seqadapt.stream.plan.stage_seed` from the run seed and its index
    alone, so a resumed run equals an uninterrupted one bit for bit), verified by the forgetting guard
    (:class:`~seqadapt.stream.verify.StageVerifier`), recorded, and handed to
    the callbacks: the standard ones (:func:`~seqadapt.stream.standard.standard_callbacks`:
    resume, task-selection probe, results.json, plots, the log line, artefacts)
    and then ``callbacks`` (W&B, users' own).
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
        backbone_name: str = "unnamed",
        resume: bool = False,
        run_info: dict[str, Any] | None = None,
        full_check_every: int | None = 1,
        rotating: int = 0,
        selectors: Sequence[str] = ("entropy", "prototype"),
        callbacks: Sequence[StreamCallback] = (),
        stage_settings: Callable[[list[str]], dict[str, Any]] = lambda names: {},
        imports: Mapping[str, Path] | None = None,
    ) -> None:
        self.module, self.tasks, self.make_trainer, self.seed = module, tasks, make_trainer, seed
        self.imports = dict(imports or {})  # task -> the folder its adapter and head are imported from
        self.stage_settings = stage_settings  # what each stage records of the settings it trained with
        self.output_dir = Path(output_dir)
        self.loaders = StreamLoaders(tokenizer, loaders)
        self.verifier = StageVerifier(module, self.loaders, guard_mode, full_check_every, rotating)
        self.callbacks = standard_callbacks(module.strategy, list(selectors), resume, list(callbacks))
        names = [t.spec.name for t in tasks]
        missing = sorted(set(names) - set(reference_accuracy or {}))
        if reference_accuracy is not None and missing:
            raise ValueError(f"reference_accuracy (for FWT) has no value for task(s) {missing}")
        self.reference = None if reference_accuracy is None else [reference_accuracy[n] for n in names]
        self.plan = plan_stages(tasks, joint=module.strategy.joint)
        self.record = RunRecord(
            tasks=names, plan=[[t.spec.name for t in stage.tasks] for stage in self.plan],
            strategy=module.strategy.name, backbone=backbone_name, backbone_sha256=self.verifier.guard.backbone_sha256,
            seed=seed, guard={"mode": guard_mode, "full_check_every": full_check_every, "rotating": rotating}, selectors=list(selectors),
            **(run_info or {}),
        )
        self._started = self._stage_started = time.perf_counter()
        self._stopped_together = False  # set where every DDP rank stops at once

    def run(self) -> RunRecord:
        """Run every stage not yet done; ``on_stream_finish`` runs whether the stream succeeds or fails."""
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self._started = time.perf_counter()
        failed = True
        try:
            self._call("on_stream_start")
            for stage in self.plan[self.record.completed_stages:]:
                self._stage(stage)
            self._call("on_stream_end")
            failed = False
        finally:
            try:
                self._call("on_stream_finish", failed=failed)
            finally:
                if self._stopped_together:
                    leave_together()
        return self.record

    def _stage(self, stage: Stage) -> None:
        self._stage_started = time.perf_counter()
        self._call("on_stage_start", stage)
        fitted = self._learn(stage)
        # Under DDP, rank 0 verifies and records; the others wait for its verdict. Where every rank stops at
        # once (the verdict failed, or rank 0 failed and said so), they leave together (see ``run``).
        if not is_rank_zero():
            verdict = share_from_rank_zero(None)
            if verdict is None:
                self._stopped_together = True
                raise RuntimeError(f"rank 0 failed while verifying stage {stage.number} ({stage.name}); its log says why")
        else:
            try:
                verdict = self._verify_and_record(stage, fitted)
            except BaseException:
                self._stopped_together = True
                share_from_rank_zero(None)  # the other ranks stop instead of waiting for a verdict forever
                raise
            share_from_rank_zero(verdict)  # once the stage is on disk: the barrier before the next stage
        try:
            self.verifier.guard.enforce(verdict)
        except ForgettingError:
            self._stopped_together = True  # every rank has this verdict
            raise

    def _learn(self, stage: Stage) -> FitResult:
        """Train the stage's tasks, or install an imported task's adapter and head (``tasks.imports``)."""
        if stage.name in self.imports:
            return import_stage(self.module, stage, self.loaders, self.imports[stage.name],
                                self.verifier.guard.backbone_sha256)
        return fit_stage(self.module, stage, self.loaders, self.make_trainer, stage_seed(self.seed, stage.index))

    def _verify_and_record(self, stage: Stage, fitted: FitResult) -> GuardVerdict:
        check = self.verifier.verify(stage)
        self.record.environment = fitted.environment  # what the recorded output hashes depend on
        record = StageRecord(
            stage=stage.number, task=stage.name, train_examples=sum(len(t.train) for t in stage.tasks),
            test_examples=sum(len(t.test) for t in stage.tasks), train_seconds=fitted.seconds,
            train_processes=fitted.processes, eval_seconds=check.eval_seconds, guard_seconds=check.guard_seconds,
            end_check_seconds=check.end_seconds, imported=fitted.imported,
            evaluations=check.evaluations, carried=check.carried, guard=check.verdict,
            settings=self.stage_settings([t.spec.name for t in stage.tasks]),
        )
        self._call("on_stage_measured", stage, record)
        self.record.add_stage(record, self.reference)
        self.refresh_parameters()
        self.record.wall_seconds = time.perf_counter() - self._started
        self._call("on_stage_end", stage, record)
        return record.guard

    def refresh_parameters(self) -> None:
        """The parameter ledger of every task in the module, into the record."""
        self.record.params_per_task = {t: asdict(parameter_budget(self.module, t)) for t in self.module.tasks}

    def stage_seconds(self) -> float:
        """Seconds since the current stage started."""
        return time.perf_counter() - self._stage_started

    def _call(self, hook: str, *args: Any, **kwargs: Any) -> None:
        for callback in self.callbacks:
            getattr(callback, hook)(self, *args, **kwargs)

"""A stage's proof: evaluate what it learned, then check every earlier task with the forgetting guard."""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch

from seqadapt.adapters import shared_tensor_reader
from seqadapt.backbone import weights_hash
from seqadapt.data.splits import TaskSplits
from seqadapt.evaluation import evaluate_task, scored, task_outputs
from seqadapt.guard import ForgettingGuard, GuardMode
from seqadapt.model import SeqAdaptModule
from seqadapt.record import CheckKind, GuardVerdict, TaskEvaluation
from seqadapt.stream.loaders import StreamLoaders
from seqadapt.stream.plan import Stage, check_kind


@dataclass(frozen=True)
class Verification:
    """What verifying a stage produced: the stage's own evaluations, all evaluations made, the scores carried
    over by a tensor check, the guard's verdict, and what each part cost."""

    learned: list[TaskEvaluation]
    evaluations: list[TaskEvaluation]
    carried: dict[str, float]
    verdict: GuardVerdict
    eval_seconds: float
    guard_seconds: float


class StageVerifier:
    """Evaluates tasks on their test loaders and runs the guard's full or tensor check after each stage.

    ``full_check_every=k`` (only where the strategy isolates tasks) re-evaluates
    earlier tasks after every k-th stage and the last; the stages between run
    the guard's tensor check and carry the earlier tasks' learned scores.
    ``None`` leaves the full check to the last stage; ``1`` runs it every stage.
    :attr:`learned_outputs` holds the exact test outputs of the last verified stage's own tasks, which their
    artefacts store as reference outputs.
    """

    def __init__(
        self, module: SeqAdaptModule, loaders: StreamLoaders, mode: GuardMode, full_check_every: int | None
    ) -> None:
        if full_check_every != 1:
            if full_check_every is not None and full_check_every < 1:
                raise ValueError(f"guard.full_check_every must be a positive number of stages or null, got {full_check_every}")
            if not module.strategy.isolates_tasks:
                raise ValueError(
                    f"guard.full_check_every={full_check_every} needs per-task adapters over a frozen backbone "
                    f"(strategy=adapter); strategy '{module.strategy.name}' changes shared weights, which only "
                    "re-evaluation can measure: use guard.full_check_every=1"
                )
        self.module = module
        self.loaders = loaders
        self.learned_outputs: dict[str, torch.Tensor] = {}
        self.full_check_every = full_check_every
        self.tensor_checks = full_check_every != 1  # they need each task's tensors as learned
        self.backbone_tensors = shared_tensor_reader(module.backbone) if self.tensor_checks else None
        self.guard = ForgettingGuard(
            weights_hash(module.backbone), mode, backbone=self.backbone_tensors() if self.backbone_tensors else None
        )

    def evaluate(self, tasks: list[TaskSplits]) -> list[TaskEvaluation]:
        return [evaluate_task(self.module, t.spec.name, self.loaders.test(t), t.test) for t in tasks]

    def evaluate_learned(self, tasks: list[TaskSplits]) -> list[TaskEvaluation]:
        """:meth:`evaluate` for a stage's own tasks, keeping their outputs in :attr:`learned_outputs`."""
        self.learned_outputs, evaluations = {}, []
        for task in tasks:
            outputs, targets = task_outputs(self.module, task.spec.name, self.loaders.test(task))
            self.learned_outputs[task.spec.name] = outputs
            evaluations.append(scored(self.module, task.spec.name, outputs, targets, task.test))
        return evaluations

    def verify(self, stage: Stage) -> Verification:
        """Evaluate ``stage``'s tasks, check the earlier ones, then make this stage's tasks references."""
        started = time.perf_counter()
        learned = self.evaluate_learned(stage.tasks)
        eval_seconds, started = time.perf_counter() - started, time.perf_counter()
        if self.check_kind(stage) == "full":
            evaluations = self.evaluate(stage.earlier) + learned
            verdict = self.check(stage.number, stage.name, evaluations)
            carried = {}
        else:
            names = [t.spec.name for t in stage.earlier]
            tensors = self.module.tensors.of_tasks(names)
            verdict = self.guard.check_tensors(stage.number, stage.name, tensors, self.backbone_tensors())
            evaluations, carried = learned, {n: self.guard.references[n].score for n in names}
        guard_seconds = time.perf_counter() - started
        for evaluation in learned:  # after the check: this stage's tasks are references now
            self.learn(evaluation)
        return Verification(learned, evaluations, carried, verdict, eval_seconds, guard_seconds)

    def check(self, stage: int, name: str, evaluations: list[TaskEvaluation]) -> GuardVerdict:
        """The guard's full check of ``evaluations`` against their references and of the backbone's hash."""
        return self.guard.check(stage, name, evaluations, weights_hash(self.module.backbone))

    def learn(self, evaluation: TaskEvaluation) -> None:
        """Make ``evaluation`` the task's reference, with a snapshot of its tensors when tensor checks may run."""
        self.guard.learn(evaluation, self.module.tensors.of(evaluation.task) if self.tensor_checks else None)

    def check_kind(self, stage: Stage) -> CheckKind:
        """Which check ``stage`` gets (:func:`~seqadapt.stream.plan.check_kind`)."""
        return check_kind(stage, self.full_check_every)

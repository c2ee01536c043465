"""A stage's proof: evaluate what it learned, then check every earlier task with the forgetting guard."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import torch

from seqadapt.adapters import shared_tensor_reader
from seqadapt.backbone import weights_hash
from seqadapt.data.splits import TaskSplits
from seqadapt.evaluation import evaluate_task, scored, task_outputs
from seqadapt.guard import ForgettingGuard, GuardMode
from seqadapt.model import SeqAdaptModule
from seqadapt.record import CheckKind, GuardVerdict, TaskEvaluation
from seqadapt.stream.loaders import StreamLoaders
from seqadapt.stream.plan import Stage, check_kind, own_check_kind, rotation


@dataclass(frozen=True)
class Verification:
    """What verifying a stage produced: the stage's own evaluations, all evaluations made, the scores carried
    over by a tensor or rotating check, the guard's verdict, and what each part cost (``end_seconds``: the
    end-of-stream full check, beyond the last stage's own check)."""

    learned: list[TaskEvaluation]
    evaluations: list[TaskEvaluation]
    carried: dict[str, float]
    verdict: GuardVerdict
    eval_seconds: float
    guard_seconds: float
    end_seconds: float = 0.0


class StageVerifier:
    """Evaluates tasks on their test loaders and runs the guard's checks after each stage.

    ``full_check_every=k`` (only where the strategy isolates tasks) re-evaluates
    earlier tasks after every k-th stage and the last (``None``: the last only;
    ``1``: every stage). The stages between run the guard's tensor check of every
    earlier task and carry their learned scores; with ``rotating=r`` > 0 they
    also hash the backbone and re-evaluate the r earlier tasks re-evaluated
    longest ago (:func:`~seqadapt.stream.plan.rotation`), so each stage costs the
    same however long the stream is and every task is still re-evaluated
    regularly. The last stage runs its own check first, then re-evaluates the
    rest: the end-of-stream full check, timed apart.
    :attr:`learned_outputs` holds the exact test outputs of the last verified stage's own tasks, which their
    artefacts store as reference outputs.
    """

    def __init__(
        self, module: SeqAdaptModule, loaders: StreamLoaders, mode: GuardMode, full_check_every: int | None,
        rotating: int = 0,
    ) -> None:
        if rotating < 0:
            raise ValueError(f"guard.rotating must be a number of tasks >= 0, got {rotating}")
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
        self.rotating = rotating
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
        own = own_check_kind(stage.number, self.full_check_every, self.rotating) if stage.earlier else "full"
        checked = self._check(stage, own, learned)
        guard_seconds, end_seconds = time.perf_counter() - started, 0.0
        if stage.last and own != "full":  # the end-of-stream full check: what the stage's own check did not cover
            started = time.perf_counter()
            checked = self._end_check(stage, checked, learned)
            end_seconds = time.perf_counter() - started
        for evaluation in learned:  # after the check: this stage's tasks are references now
            self.learn(evaluation)
        evaluations, carried, verdict = checked
        return Verification(learned, evaluations, carried, verdict, eval_seconds, guard_seconds, end_seconds)

    def _check(self, stage: Stage, kind: CheckKind, learned: list[TaskEvaluation]) -> Checked:
        """The guard's ``kind`` of check after ``stage``: evaluations (earlier re-evaluated + learned), the
        scores carried by tensor checks, and the verdict."""
        if kind == "full":
            evaluations = self.evaluate(stage.earlier) + learned
            return evaluations, {}, self.check(stage.number, stage.name, evaluations)
        names = [t.spec.name for t in stage.earlier]
        verdict = self.guard.check_tensors(stage.number, stage.name, self.module.tensors.of_tasks(names),
                                           self.backbone_tensors())
        picked = rotation(stage, self.full_check_every, self.rotating) if kind == "rotating" else []
        evaluations = self.evaluate([stage.earlier[i] for i in picked])
        if kind == "rotating":
            full = self.check(stage.number, stage.name, evaluations)  # with the backbone's hash
            verdict = replace(verdict, kind="rotating", violations=_merged(verdict.violations, full.violations),
                              re_evaluated=[e.task for e in evaluations])
        carried = {n: self.guard.references[n].score for n in names if n not in verdict.re_evaluated}
        return evaluations + learned, carried, verdict

    def _end_check(self, stage: Stage, checked: Checked, learned: list[TaskEvaluation]) -> Checked:
        """The last stage's check completed into a full one: every earlier task its own check did not
        re-evaluate is re-evaluated, and the backbone hashed again."""
        evaluations, _, own = checked
        done = {e.task: e for e in evaluations}
        fresh = iter(self.evaluate([t for t in stage.earlier if t.spec.name not in done]))
        everything = [done[t.spec.name] if t.spec.name in done else next(fresh) for t in stage.earlier] + learned
        full = self.check(stage.number, stage.name, everything)
        return everything, {}, replace(full, violations=_merged(own.violations, full.violations))

    def check(self, stage: int, name: str, evaluations: list[TaskEvaluation]) -> GuardVerdict:
        """The guard's full check of ``evaluations`` against their references and of the backbone's hash."""
        return self.guard.check(stage, name, evaluations, weights_hash(self.module.backbone))

    def learn(self, evaluation: TaskEvaluation) -> None:
        """Make ``evaluation`` the task's reference, with a snapshot of its tensors when tensor checks may run."""
        self.guard.learn(evaluation, self.module.tensors.of(evaluation.task) if self.tensor_checks else None)

    def check_kind(self, stage: Stage) -> CheckKind:
        """Which check ``stage`` gets (:func:`~seqadapt.stream.plan.check_kind`)."""
        return check_kind(stage, self.full_check_every, self.rotating)


Checked = tuple[list[TaskEvaluation], dict[str, float], GuardVerdict]


def _merged(first: list[str], second: list[str]) -> list[str]:
    """Two checks' violations, each once (both hash the backbone)."""
    return list(dict.fromkeys(first + second))

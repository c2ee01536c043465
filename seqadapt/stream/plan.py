"""The stream's plan, decided once: which tasks each stage trains and which earlier tasks it must leave intact."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqadapt.data.splits import TaskSplits
from seqadapt.record import CheckKind


@dataclass(frozen=True)
class Stage:
    """One stage of the plan: ``tasks`` train together; ``earlier`` were learned before and are guarded;
    ``seen`` is everything learned once it ends (what task-ID-free inference chooses among)."""

    index: int
    count: int
    tasks: list[TaskSplits]
    earlier: list[TaskSplits]
    seen: list[TaskSplits]

    @property
    def number(self) -> int:
        return self.index + 1

    @property
    def name(self) -> str:
        return "+".join(t.spec.name for t in self.tasks)

    @property
    def last(self) -> bool:
        return self.index == self.count - 1


def plan_stages(tasks: list[TaskSplits], joint: bool) -> list[Stage]:
    """A stage per task in order, or (``joint``) one stage that trains every task at once: their features share
    batches, so they must be of one kind (one collator pads them)."""
    if joint:
        kinds = {t.spec.type for t in tasks}
        if len(kinds) > 1:
            raise ValueError(f"strategy=joint trains all tasks in shared batches, so they must be of one kind; "
                             f"tasks.order mixes {sorted(kinds)}. Run the kinds sequentially (strategy=adapter or "
                             "finetune), or one joint run per kind")
        return [Stage(0, 1, list(tasks), [], list(tasks))]
    return [Stage(i, len(tasks), [task], tasks[:i], tasks[: i + 1]) for i, task in enumerate(tasks)]


def stage_seed(run_seed: int, stage_index: int) -> int:
    """The seed of stage ``stage_index`` of a run seeded ``run_seed``: a child of ``SeedSequence(run_seed)``.

    It depends on nothing that happened before the stage, so a resumed stage
    equals an uninterrupted one; and unlike ``run_seed + stage_index``, two runs
    with different seeds share no stage seed (runs 0 and 1 no longer train
    their common tasks identically one stage apart).
    """
    return int(np.random.SeedSequence(run_seed, spawn_key=(stage_index,)).generate_state(1)[0])


def check_kind(stage: Stage, full_check_every: int | None, rotating: int = 0) -> CheckKind:
    """Which check of the guard ``stage`` gets (docs/concepts/guard.md): the last stage's is always ``full``, so
    the stream ends proved; the others get :func:`own_check_kind`."""
    return "full" if stage.last else own_check_kind(stage.number, full_check_every, rotating)


def own_check_kind(number: int, full_check_every: int | None, rotating: int) -> CheckKind:
    """The check stage ``number`` gets of its own, whether or not it ends the stream: ``full`` (re-evaluate
    every earlier task) after every k-th stage (``guard.full_check_every``; ``None``: never); between,
    ``rotating`` (``guard.rotating`` > 0: the tensor check of every earlier task plus the backbone's hash and a
    re-evaluation of :func:`rotation`'s tasks) or ``tensors`` (the tensor check alone). Stage 1, with nothing
    earlier to check, counts as ``full``: it evaluates what it learned, which is all a full check would do."""
    if number == 1 or (full_check_every is not None and number % full_check_every == 0):
        return "full"
    return "rotating" if rotating > 0 else "tensors"


def rotation(stage: Stage, full_check_every: int | None, rotating: int) -> list[int]:
    """The positions (in stream order) of the earlier tasks ``stage``'s rotating check re-evaluates: the
    ``rotating`` re-evaluated longest ago (learning a task and a full check count; ties go to the earlier task).

    A task joins the back of that queue when it is learned and each stage takes ``rotating`` tasks from its
    front, so with n earlier tasks every one is re-evaluated within ceil(n / rotating) stages, whatever the
    stream's length, while each stage's cost stays the same. Replayed from the plan alone with each stage's
    own check (a run's last stage is no exception), so a resumed or grown run rotates as an uninterrupted one."""
    last: list[int] = []  # per task learned so far: the stage that last evaluated it in full
    picked: list[int] = []
    for number in range(1, stage.number + 1):
        kind, picked = own_check_kind(number, full_check_every, rotating), []
        if kind == "full":
            last = [number] * len(last)
        elif kind == "rotating":
            picked = sorted(range(len(last)), key=lambda i: (last[i], i))[:rotating]
            for i in picked:
                last[i] = number
        last.append(number)
    return sorted(picked)

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


def check_kind(stage: Stage, full_check_every: int | None) -> CheckKind:
    """Which check of the guard ``stage`` gets under ``guard.full_check_every``: ``full`` (re-evaluate every
    earlier task) after every k-th stage and always after the last, ``tensors`` between; ``None`` leaves the
    full check to the last stage alone. A stage with nothing earlier to check (the first) counts as ``full``:
    it evaluates what it learned, which is all a full check would do there."""
    due = not stage.earlier or stage.last or (full_check_every is not None and stage.number % full_check_every == 0)
    return "full" if due else "tensors"

"""The stream's plan, decided once: which tasks each stage trains and which earlier tasks it must leave intact."""

from __future__ import annotations

from dataclasses import dataclass

from seqadapt.data.splits import TaskSplits


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
    """A stage per task in order, or (``joint``) one stage that trains every task at once."""
    if joint:
        return [Stage(0, 1, list(tasks), [], list(tasks))]
    return [Stage(i, len(tasks), [task], tasks[:i], tasks[: i + 1]) for i, task in enumerate(tasks)]

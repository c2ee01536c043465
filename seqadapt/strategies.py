"""Continual-learning strategies: what a task trains, and whether the stream learns tasks in turn or at once.

Per-task adapters are seqadapt's method; the others are the baselines users
compare it with. ``finetune`` and ``shared_adapter`` are expected to forget,
so the guard records their changes instead of stopping them (``guard.mode``
defaults to ``report`` for them); ``joint`` trains all tasks in one stage and
is the multitask upper bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

SHARED_ADAPTER = "shared"


@dataclass(frozen=True)
class Strategy:
    name: str
    adapters: Literal["per_task", "shared", "none"]
    train_backbone: bool
    joint: bool
    expects_forgetting: bool

    @property
    def isolates_tasks(self) -> bool:
        """Each task's parameters are its own and nothing shared trains: earlier tasks cannot change, so each
        stage leaves a per-task artefact, a run can resume, and tensor checks and remembered passes are sound."""
        return self.adapters == "per_task" and not self.train_backbone


STRATEGIES: dict[str, Strategy] = {
    "adapter": Strategy("adapter", adapters="per_task", train_backbone=False, joint=False, expects_forgetting=False),
    "finetune": Strategy("finetune", adapters="none", train_backbone=True, joint=False, expects_forgetting=True),
    "shared_adapter": Strategy(
        "shared_adapter", adapters="shared", train_backbone=False, joint=False, expects_forgetting=True
    ),
    "joint": Strategy("joint", adapters="none", train_backbone=True, joint=True, expects_forgetting=False),
}


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy '{name}'; choose one of {sorted(STRATEGIES)}")
    return STRATEGIES[name]

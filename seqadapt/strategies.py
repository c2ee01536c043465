"""Continual-learning strategies: what a task trains, and whether the stream learns tasks in turn or at once.

Per-task adapters are seqadapt's method; the others are the baselines users
compare it with. ``finetune``, ``finetune_top_k`` (the top ``k`` layers of the
backbone), ``layernorm`` (only its LayerNorms; Houlsby et al. 2019's baselines)
and ``shared_adapter`` are expected to forget, so the guard records their
changes instead of stopping them (``guard.mode`` defaults to ``report`` for
them); ``joint`` trains all tasks in one stage and is the multitask upper bound.

The continual-learning methods of the literature share weights too and try not to forget: ``ewc``, ``lwf``,
``replay`` and ``agem`` fine-tune the backbone (as the O-LoRA paper's baselines do) with a plugin of
:mod:`seqadapt.continual` adding their loss term, gradient projection or rehearsal; ``olora`` gives each task its
own LoRA, keeps earlier ones frozen and sums all of them at inference (``adapters="summed"``), so every task's
outputs change as tasks are added and no task ID picks an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

SHARED_ADAPTER = "shared"
SUMMED = "*summed*"  # a route, not an adapter: every task's adapter runs and their updates add up (O-LoRA)


@dataclass(frozen=True)
class Strategy:
    name: str
    adapters: Literal["per_task", "shared", "none", "summed"]
    train_backbone: bool
    joint: bool
    expects_forgetting: bool
    scope: Literal["all", "top_k", "layer_norm"] = "all"  # which backbone parameters train, if any do
    top_k: int | None = None  # with scope "top_k": how many of the top layers
    continual: str | None = None  # the plugin of seqadapt.continual the method trains with (ewc, lwf, ...)

    @property
    def isolates_tasks(self) -> bool:
        """Each task's parameters are its own and nothing shared trains: earlier tasks cannot change, so each
        stage leaves a per-task artefact (a run resumes from those; other strategies from the last stage's
        checkpoint), tasks can be served, retrained and retired alone, and tensor checks and remembered passes
        are sound."""
        return self.adapters == "per_task" and not self.train_backbone

    def adapter_of(self, task: str) -> str | None:
        """The adapter ``task`` owns or trains: its own, the shared one, or none."""
        return {"per_task": task, "summed": task, "shared": SHARED_ADAPTER, "none": None}[self.adapters]

    def route_of(self, task: str) -> str | None:
        """The route ``task``'s inputs run through: its adapter, or every task's summed (O-LoRA)."""
        return SUMMED if self.adapters == "summed" else self.adapter_of(task)

    @property
    def sharing(self) -> str:
        """How an isolating strategy's stages fail to leave earlier tasks alone, said in refusals."""
        if self.adapters == "summed":
            return "sums every task's LoRA into every task's outputs"
        return "changes shared weights every stage"


STRATEGIES: dict[str, Strategy] = {
    "adapter": Strategy("adapter", adapters="per_task", train_backbone=False, joint=False, expects_forgetting=False),
    "finetune": Strategy("finetune", adapters="none", train_backbone=True, joint=False, expects_forgetting=True),
    "shared_adapter": Strategy(
        "shared_adapter", adapters="shared", train_backbone=False, joint=False, expects_forgetting=True
    ),
    "joint": Strategy("joint", adapters="none", train_backbone=True, joint=True, expects_forgetting=False),
    "finetune_top_k": Strategy(
        "finetune_top_k", adapters="none", train_backbone=True, joint=False, expects_forgetting=True, scope="top_k",
        top_k=1,
    ),
    "layernorm": Strategy(
        "layernorm", adapters="none", train_backbone=True, joint=False, expects_forgetting=True, scope="layer_norm"
    ),
    **{name: Strategy(name, adapters="none", train_backbone=True, joint=False, expects_forgetting=True,
                      continual=name) for name in ("ewc", "lwf", "replay", "agem")},
    "olora": Strategy("olora", adapters="summed", train_backbone=False, joint=False, expects_forgetting=True,
                      continual="olora"),
}


def get_strategy(name: str, top_k: int | None = None) -> Strategy:
    """The strategy ``name``; ``top_k`` (``strategy.top_k``) sets how many layers ``finetune_top_k`` trains."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy '{name}'; choose one of {sorted(STRATEGIES)}")
    strategy = STRATEGIES[name]
    if top_k is None:
        return strategy
    if strategy.scope != "top_k":
        raise ValueError(f"strategy.top_k={top_k} applies to strategy=finetune_top_k only, not '{name}': remove it")
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"strategy.top_k must be a whole number >= 1 (layers to train), got {top_k!r}")
    return replace(strategy, top_k=top_k)

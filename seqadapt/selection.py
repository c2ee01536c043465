"""Task-ID-free inference: pick each input's task automatically, and measure how well that works.

A selector scores every candidate task for every row of a batch (higher is
better) and the row goes to the best-scoring task's adapters and head. Two
selectors share one interface, :class:`Selector`:

- ``entropy``: the task whose head is most certain, i.e. the lowest predictive
  entropy divided by log(number of labels), so tasks with 2 and 8 labels
  compete on one scale. It runs every candidate's adapters, all in one
  mixed-task pass (each row replicated once per candidate), so it costs
  as many backbone passes as there are tasks.
- ``prototype``: the task with the class centroid nearest (cosine) to the
  bare backbone's pooled feature. One pass of the bare backbone, whatever
  the number of tasks; the centroids (:mod:`seqadapt.prototypes`) are computed
  from each task's training split during its stage and stored with the task.

:class:`CandidateBatch` runs each pass at most once, so the stream's
per-stage report reads the candidates' logits of one pass for the entropy
selector and for the accuracy with task IDs alike.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

import torch
from torch.utils.data import DataLoader

from seqadapt.module import SeqAdaptModule


class CandidateBatch:
    """One tokenised batch, the tasks it may belong to, and the forward passes selectors read (each run once).

    ``memo`` keeps this batch's passes across calls (an earlier stage's):
    row-aligned logits per candidate under ``"logits"`` and the bare
    backbone's features under ``"features"``. Only what is missing is
    computed, and ``memo`` is filled in place.
    """

    def __init__(
        self,
        module: SeqAdaptModule,
        batch: dict[str, torch.Tensor],
        candidates: list[str],
        memo: dict[str, Any] | None = None,
    ) -> None:
        if not candidates:
            raise ValueError("no candidate tasks to select from; the model has no tasks yet")
        module._require_known(candidates)
        self.module = module
        self.input_ids = batch["input_ids"].to(module.device)
        self.attention_mask = batch["attention_mask"].to(module.device)
        token_type_ids = batch.get("token_type_ids")
        self.token_type_ids = token_type_ids.to(module.device) if token_type_ids is not None else None
        self.candidates = list(candidates)
        self.memo = memo if memo is not None else {}
        self.known: dict[str, list[torch.Tensor]] = self.memo.setdefault("logits", {})

    def __len__(self) -> int:
        return len(self.input_ids)

    def _ensure(self, tasks: list[str]) -> None:
        """Logits of every row under each of ``tasks`` not yet known, all in one mixed pass."""
        missing = [task for task in dict.fromkeys(tasks) if task not in self.known]
        if not missing:
            return
        copies = len(missing)
        token_type_ids = self.token_type_ids.repeat(copies, 1) if self.token_type_ids is not None else None
        rows = self.module.mixed_logits(
            self.input_ids.repeat(copies, 1), self.attention_mask.repeat(copies, 1),
            [task for task in missing for _ in range(len(self))], token_type_ids,
        )
        for c, task in enumerate(missing):
            self.known[task] = rows[c * len(self):(c + 1) * len(self)]

    @property
    def logits(self) -> list[list[torch.Tensor]]:
        """``logits[c][i]``: row i through candidate c's adapters and head; missing candidates in one mixed pass."""
        self._ensure(self.candidates)
        return [self.known[task] for task in self.candidates]

    @property
    def features(self) -> torch.Tensor:
        """The bare backbone's pooled features [B, d]."""
        if "features" not in self.memo:
            self.memo["features"] = self.module.backbone_features(self.input_ids, self.attention_mask, self.token_type_ids)
        return self.memo["features"]

    def logits_under(self, tasks: list[str]) -> list[torch.Tensor]:
        """Row i's logits under ``tasks[i]``: from what is known (one task: its pass, remembered), else one pass
        routing each row to its own task."""
        unique = set(tasks)
        if len(unique) == 1:
            self._ensure(list(unique))
        if unique <= self.known.keys():
            return [self.known[task][i] for i, task in enumerate(tasks)]
        return self.module.mixed_logits(self.input_ids, self.attention_mask, tasks, self.token_type_ids)


class Selector(Protocol):
    """Scores [B, C]: how well each of a batch's B rows fits each of its C candidate tasks (higher is better)."""

    name: str

    def scores(self, batch: CandidateBatch) -> torch.Tensor: ...


class EntropySelector:
    """Minimum normalised predictive entropy over the candidates' heads."""

    name = "entropy"

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        columns = []
        for per_row in batch.logits:
            logits = torch.stack(per_row).float()
            probabilities = torch.softmax(logits, dim=-1)
            entropy = -(probabilities * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
            columns.append(-entropy / torch.log(torch.tensor(float(max(logits.shape[-1], 2)))))
        return torch.stack(columns, dim=1)


class PrototypeSelector:
    """Nearest class centroid (cosine) of the bare backbone's pooled feature, over all candidates' classes."""

    name = "prototype"

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        prototypes = batch.module.prototypes
        return torch.stack([prototypes[task].similarity(batch.features) for task in batch.candidates], dim=1)


SELECTORS: dict[str, Selector] = {selector.name: selector for selector in (EntropySelector(), PrototypeSelector())}


def get_selector(name: str) -> Selector:
    if name not in SELECTORS:
        raise KeyError(f"unknown task selector '{name}'; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name]


def check_selectors(names: Iterable[str]) -> list[str]:
    """The selector names, checked before any training starts."""
    names = list(names)
    for name in names:
        get_selector(name)
    return names


@torch.inference_mode()
def fit_prototypes(module: SeqAdaptModule, task: str, loader: DataLoader) -> None:
    """Compute ``task``'s class centroids from ``loader`` (its training split) on the bare backbone."""
    features, labels = [], []
    with module.evaluating():
        for batch in loader:
            batch = {key: value.to(module.device) for key, value in batch.items()}
            features.append(module.backbone_features(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids")))
            labels.append(batch["labels"])
    module.prototypes[task].fit(torch.cat(features).float(), torch.cat(labels))


@torch.inference_mode()
def evaluate_selection(
    module: SeqAdaptModule,
    loaders: dict[str, DataLoader],
    selectors: list[str],
    memo: dict[tuple[str, int], dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """How well each selector identifies the task of every test example of ``loaders``' tasks, and what that costs.

    Every task in ``loaders`` is a candidate for every example. Per selector:
    ``task_id_accuracy`` (the chosen task is the example's own) and
    ``accuracy`` (the chosen task is its own and that task predicts its label:
    a wrong task's labels are never right), each as the mean over tasks like
    ACC, per task, and a confusion matrix (rows: true task, columns: chosen).
    ``with_task_id`` is the accuracy when the task is given, read from the
    same mixed-task pass, as the reference.

    ``memo`` (one dict kept across calls) remembers every batch's logits per
    candidate and its bare features, so a later call computes only what a new
    task adds: its own test data under every candidate, and the earlier data
    under its adapters. Pass it only while nothing an earlier task computes
    with can change: per-task adapters over a frozen backbone, under a strict
    forgetting guard that stops the stream otherwise.
    """
    started = time.perf_counter()
    candidates = list(loaders)
    confusion = {name: torch.zeros(len(candidates), len(candidates), dtype=torch.long) for name in selectors}
    right_when_chosen = {name: [0] * len(candidates) for name in selectors}
    right_with_id = [0] * len(candidates)
    examples = [0] * len(candidates)
    with module.evaluating():
        for true, task in enumerate(candidates):
            for number, batch in enumerate(loaders[task]):
                remembered = memo.setdefault((task, number), {}) if memo is not None else None
                view = CandidateBatch(module, batch, candidates, remembered)
                chosen = {name: get_selector(name).scores(view).argmax(dim=1).cpu() for name in selectors}
                labels = batch["labels"]
                own = torch.stack(view.logits_under([task] * len(view))).argmax(dim=-1).cpu() == labels
                right_with_id[true] += int(own.sum())
                examples[true] += len(labels)
                for name in selectors:
                    confusion[name][true] += torch.bincount(chosen[name], minlength=len(candidates))
                    right_when_chosen[name][true] += int((own & (chosen[name] == true)).sum())

    def mean(values: list[float]) -> float:
        return sum(values) / len(values)

    report: dict[str, Any] = {
        "candidates": candidates,
        "examples": sum(examples),
        "with_task_id": {
            "accuracy": mean([right_with_id[j] / examples[j] for j in range(len(candidates))]),
            "per_task": {task: right_with_id[j] / examples[j] for j, task in enumerate(candidates)},
        },
        "selectors": {},
    }
    for name in selectors:
        identified = [int(confusion[name][j, j]) / examples[j] for j in range(len(candidates))]
        correct = [right_when_chosen[name][j] / examples[j] for j in range(len(candidates))]
        report["selectors"][name] = {
            "task_id_accuracy": mean(identified),
            "accuracy": mean(correct),
            "per_task": {
                task: {"task_id_accuracy": identified[j], "accuracy": correct[j]} for j, task in enumerate(candidates)
            },
            "confusion": confusion[name].tolist(),
        }
    report["seconds"] = time.perf_counter() - started
    return report

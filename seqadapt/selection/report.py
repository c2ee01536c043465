"""The per-stage measurement of task-ID-free inference: every selector on every test example seen so far."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch.utils.data import DataLoader

from seqadapt.kinds.base import targets_of
from seqadapt.selection.candidates import CandidateBatch
from seqadapt.selection.selectors import get_selector

if TYPE_CHECKING:
    from seqadapt.model import SeqAdaptModule


@dataclass
class _Tally:
    """Running counts over the test batches: per true task, what each selector chose and what was right."""

    candidates: list[str]
    selectors: list[str]
    examples: list[int] = field(init=False)
    right_with_id: list[int] = field(init=False)
    confusion: dict[str, torch.Tensor] = field(init=False)
    right_when_chosen: dict[str, list[int]] = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.candidates)
        self.examples, self.right_with_id = [0] * n, [0] * n
        self.confusion = {name: torch.zeros(n, n, dtype=torch.long) for name in self.selectors}
        self.right_when_chosen = {name: [0] * n for name in self.selectors}

    def add(self, true: int, own: torch.Tensor, chosen: dict[str, torch.Tensor]) -> None:
        """``own``: per row, whether its own task gets it right; ``chosen``: per selector, the chosen candidate."""
        self.right_with_id[true] += int(own.sum())
        self.examples[true] += len(own)
        for name, picks in chosen.items():
            self.confusion[name][true] += torch.bincount(picks, minlength=len(self.candidates))
            self.right_when_chosen[name][true] += int((own & (picks == true)).sum())

    def report(self) -> dict[str, Any]:
        tasks, n = self.candidates, range(len(self.candidates))

        def mean(values: list[float]) -> float:
            return sum(values) / len(values)

        with_id = [self.right_with_id[j] / self.examples[j] for j in n]
        report: dict[str, Any] = {
            "candidates": tasks, "examples": sum(self.examples),
            "with_task_id": {"accuracy": mean(with_id), "per_task": dict(zip(tasks, with_id))}, "selectors": {},
        }
        for name in self.selectors:
            identified = [int(self.confusion[name][j, j]) / self.examples[j] for j in n]
            correct = [self.right_when_chosen[name][j] / self.examples[j] for j in n]
            report["selectors"][name] = {
                "task_id_accuracy": mean(identified), "accuracy": mean(correct),
                "per_task": {t: {"task_id_accuracy": i, "accuracy": c} for t, i, c in zip(tasks, identified, correct)},
                "confusion": self.confusion[name].tolist(),
            }
        return report


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
    ``accuracy`` (the chosen task is its own and its kind counts its output as
    right: a wrong task is never right), each as the mean over tasks like ACC,
    per task, and a confusion matrix (rows: true task, columns: chosen).
    ``with_task_id`` is the same when the task is given, from the same pass.

    ``memo`` (one dict kept across calls) remembers every batch's passes, so a
    later call computes only what a new task adds. Pass it only while nothing
    an earlier task computes with can change: per-task adapters over a frozen
    backbone, under a strict forgetting guard that stops the stream otherwise.
    """
    started = time.perf_counter()
    tally = _Tally(list(loaders), list(selectors))
    with module.evaluating():
        for true, task in enumerate(tally.candidates):
            for number, batch in enumerate(loaders[task]):
                remembered = memo.setdefault((task, number), {}) if memo is not None else None
                view = CandidateBatch(module, batch, tally.candidates, remembered)
                chosen = {name: get_selector(name).scores(view).argmax(dim=1).cpu() for name in selectors}
                outputs = torch.stack(view.logits_under([task] * len(view))).cpu()
                own = module.kind(task).correct(outputs, targets_of(batch), module.heads[task])
                tally.add(true, own, chosen)
    return {**tally.report(), "seconds": time.perf_counter() - started}

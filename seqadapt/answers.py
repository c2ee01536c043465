"""Answering prediction requests with a loaded stream: each request through its task's kind, mixed-task
batches within a kind, and task-ID-free selection over one shared input encoding.

A request is a mapping of the task's own input fields (``{"premise": ...,
"hypothesis": ...}``, ``{"tokens": [...]}``, ``{"context": ..., "question": ...}``);
a plain string is a single-text request for whichever single-text task runs it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from datasets import Dataset
from transformers import PreTrainedTokenizerBase

from seqadapt.data.loaders import make_loader
from seqadapt.kinds.base import PAD_VALUES, RequestError, cat_padded, targets_of
from seqadapt.model import SeqAdaptModule, mixed_outputs
from seqadapt.selection import CandidateBatch, get_selector

Request = str | dict[str, Any]


@dataclass(frozen=True)
class Prediction:
    """One answer: the task that gave it, the request as given, the kind's answer, and the selector (if any)."""

    task: str
    inputs: dict[str, Any]
    answer: dict[str, Any] = field(default_factory=dict)
    selected_by: str | None = None  # the selector that picked the task; None when the task was given

    def to_json(self) -> dict[str, Any]:
        """The JSON line ``seqadapt-predict`` prints: the request's fields, the task, the answer, the selector."""
        return {**self.inputs, "task": self.task, **self.answer, "selected_by": self.selected_by}


def fields_of(request: Request) -> dict[str, Any]:
    return {"text": request} if isinstance(request, str) else dict(request)


class Answerer:
    """Runs requests through a module's tasks; ``settings`` holds the run's ``max_length`` and batch size."""

    def __init__(self, module: SeqAdaptModule, tokenizer: PreTrainedTokenizerBase, settings: dict[str, int]) -> None:
        self.module, self.tokenizer, self.settings = module, tokenizer, settings

    def canonical(self, task: str, request: Request, where: str) -> dict[str, Any]:
        """``request`` as ``task``'s canonical row; a plain string (or a ``"text"`` field) fills a single-input
        task's one field, so requests written before tasks had other input fields keep working."""
        spec = self.module.specs[task]
        kind = self.module.kind(task)
        fields = kind.input_fields(spec)
        data = fields_of(request)
        if len(fields) == 1 and fields[0] not in data and "text" in data:  # a plain text, or the old {"text": ...}
            data[fields[0]] = data.pop("text")
        return kind.request(spec, data, where)

    def _loader(self, parts: list[tuple[str, list[dict[str, Any]]]]) -> Any:
        specs = [(self.module.specs[task], Dataset.from_list(rows)) for task, rows in parts]
        return make_loader(specs[0] if len(specs) == 1 else specs, self.tokenizer,
                           max_length=self.settings["max_length"], batch_size=self.settings["eval_batch_size"])

    @torch.inference_mode()
    def answer(self, requests: list[Request], tasks: list[str], selected_by: str | None = None) -> list[Prediction]:
        """Each request under its own task; requests of one kind share batches (one backbone pass each)."""
        answers: list[dict[str, Any] | None] = [None] * len(requests)
        by_kind: dict[str, dict[str, list[int]]] = {}
        for i, task in enumerate(tasks):
            by_kind.setdefault(self.module.specs[task].type, {}).setdefault(task, []).append(i)
        for groups in by_kind.values():
            parts = [(task, [self.canonical(task, requests[i], f"input line {i + 1}") for i in index])
                     for task, index in groups.items()]
            passed = self._pass(parts)
            for (task, rows), index in zip(parts, groups.values()):
                outputs, targets = passed[task]
                spec, kind = self.module.specs[task], self.module.kind(task)
                found = kind.predictions(spec, outputs, targets, Dataset.from_list(rows), self.module.heads[task])
                for i, answer in zip(index, found):
                    answers[i] = answer
        return [Prediction(task, fields_of(request), answer, selected_by)
                for request, task, answer in zip(requests, tasks, answers)]

    def _pass(self, parts: list[tuple[str, list[dict[str, Any]]]]) -> dict[str, tuple[torch.Tensor, dict]]:
        """Per task, the outputs and targets of its features, from one pass over mixed-task batches."""
        names = [task for task, _ in parts]
        rows: dict[str, list[torch.Tensor]] = {task: [] for task in names}
        targets: dict[str, dict[str, list[torch.Tensor]]] = {task: {} for task in names}
        device = self.module.device
        for batch in self._loader(parts):
            index = batch.get("task_index", torch.zeros(len(batch["input_ids"]), dtype=torch.long))
            feature_tasks = [names[i] for i in index.tolist()]
            token_type_ids = batch.get("token_type_ids")
            out = mixed_outputs(self.module, batch["input_ids"].to(device), batch["attention_mask"].to(device),
                                feature_tasks, None if token_type_ids is None else token_type_ids.to(device))
            for j, task in enumerate(feature_tasks):
                rows[task].append(out[j].float().cpu().unsqueeze(0))
                for name, value in targets_of(batch).items():
                    targets[task].setdefault(name, []).append(value[j].unsqueeze(0))
        return {task: (cat_padded(rows[task], 0),
                       {n: cat_padded(v, PAD_VALUES.get(n, 0)) for n, v in targets[task].items()}) for task in names}

    @torch.inference_mode()
    def choose(self, requests: list[Request], selector: str) -> list[str]:
        """Each request's task by ``selector``, among the tasks that can read it; requests of one shape (the
        same such tasks) share one encoding, by the first such task."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for i, request in enumerate(requests):
            groups.setdefault(tuple(self.readers(request, f"input line {i + 1}")), []).append(i)
        chosen = [""] * len(requests)
        for candidates, index in groups.items():
            for i, task in zip(index, self._choose_among(list(candidates), [requests[i] for i in index], selector)):
                chosen[i] = task
        return chosen

    def _choose_among(self, candidates: list[str], requests: list[Request], selector: str) -> list[str]:
        """Each request's task among ``candidates`` (all of which read it), from one shared encoding; a
        context split into windows gets its windows' mean score."""
        rows = [self.canonical(candidates[0], request, f"input line {i + 1}") for i, request in enumerate(requests)]
        choose = get_selector(selector)
        totals = torch.zeros(len(requests), len(candidates))
        counts = torch.zeros(len(requests), 1)
        seen = 0
        for batch in self._loader([(candidates[0], rows)]):
            scores = choose.scores(CandidateBatch(self.module, batch, candidates)).float().cpu()
            example = batch.get("example", torch.arange(seen, seen + len(scores)))
            totals.index_add_(0, example, scores)
            counts.index_add_(0, example, torch.ones(len(scores), 1))
            seen += len(scores)
        return [candidates[i] for i in (totals / counts).argmax(dim=1).tolist()]

    def readers(self, request: Request, where: str = "input") -> list[str]:
        """The loaded tasks whose kind accepts ``request``'s fields; none is a ``RequestError`` naming ``where``."""
        readers = []
        for task in self.module.tasks:
            try:
                self.canonical(task, request, where)
                readers.append(task)
            except RequestError:
                continue
        if not readers:
            raise RequestError(f"{where}: no task of this run reads an input with fields {sorted(fields_of(request))}; "
                               f"its tasks read {self._fields()}")
        return readers

    def _fields(self) -> dict[str, list[str]]:
        return {task: list(self.module.kind(task).input_fields(self.module.specs[task])) for task in self.module.tasks}

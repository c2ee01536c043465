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

from collections.abc import Iterable
from typing import Protocol

import torch

from seqadapt.selection.candidates import CandidateBatch


class Selector(Protocol):
    """Scores [B, C]: how well each of a batch's B rows fits each of its C candidate tasks (higher is better)."""

    name: str

    def scores(self, batch: CandidateBatch) -> torch.Tensor: ...


class EntropySelector:
    """Minimum normalised predictive entropy over the candidates' heads, as each candidate's kind measures it
    (:meth:`~seqadapt.kinds.TaskKind.confidence`: over classes, over a tagger's tokens, over span positions)."""

    name = "entropy"

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        columns = []
        for task, per_row in zip(batch.candidates, batch.logits):
            kind = batch.module.kind(task)
            columns.append(kind.confidence(torch.stack(per_row), batch.attention_mask).to(batch.input_ids.device))
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

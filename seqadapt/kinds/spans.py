"""Extractive-QA decoding: the answer span of each example from the start/end logits of all its windows.

A long context is encoded as several overlapping windows (features); each window scores every token as the
start and as the end of the answer, and its first ([CLS]) token as "no answer here". An example's answer is
the best-scoring span over its windows, unless the weakest "no answer" score beats it by more than the
task's ``null_score_threshold`` (the SQuAD 2.0 rule of Hugging Face's ``run_qa`` post-processing).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

import torch


class Span(NamedTuple):
    """One example's answer: ``context[start:end] == text``; an empty answer has no ``start``/``end`` and
    scores the "no answer" logits."""

    text: str
    start: int | None
    end: int | None
    score: float


def window_best(
    logits: torch.Tensor, offsets: torch.Tensor, n_best: int, max_answer_length: int
) -> tuple[float, int, int] | None:
    """(score, start token, end token) of one window's best span, or None when it has none.

    Candidates pair the ``n_best`` highest start and end logits among context tokens (offset != -1, so
    question, special and padding tokens never answer), with start <= end and at most ``max_answer_length``
    tokens; a span scores start logit + end logit. ``logits`` is [T, 2], ``offsets`` [T, 2].
    """
    context = offsets[:, 0] >= 0
    k = min(n_best, int(context.sum()))
    if k == 0:
        return None
    start_values, starts = logits[:, 0].masked_fill(~context, float("-inf")).topk(k)
    end_values, ends = logits[:, 1].masked_fill(~context, float("-inf")).topk(k)
    length = ends[None, :] - starts[:, None] + 1
    valid = (length >= 1) & (length <= max_answer_length)
    if not valid.any():
        return None
    scores = (start_values[:, None] + end_values[None, :]).masked_fill(~valid, float("-inf"))
    i, j = divmod(int(scores.argmax()), k)
    return float(scores[i, j]), int(starts[i]), int(ends[j])


def decode(
    outputs: torch.Tensor,
    example: torch.Tensor,
    offsets: torch.Tensor,
    contexts: Sequence[str],
    n_best: int,
    max_answer_length: int,
    null_score_threshold: float,
) -> list[Span]:
    """One :class:`Span` per context (row order) from the windows' ``outputs`` [N, T, 2], ``example`` [N]
    (each window's row) and ``offsets`` [N, T, 2] (character offsets of context tokens, -1 elsewhere)."""
    windows: dict[int, list[int]] = defaultdict(list)
    for window, row in enumerate(example.tolist()):
        windows[row].append(window)
    logits = outputs.float()
    spans = []
    for row, context in enumerate(contexts):
        if not windows[row]:
            raise ValueError(f"row {row} has no window among the {len(example)} features; encode every row")
        null = min(float(logits[w, 0, 0] + logits[w, 0, 1]) for w in windows[row])
        bests = [(window_best(logits[w], offsets[w], n_best, max_answer_length), w) for w in windows[row]]
        found = [(best, w) for best, w in bests if best is not None]
        if not found:
            spans.append(Span("", None, None, null))
            continue
        (score, first, last), w = max(found, key=lambda item: item[0][0])
        if null - score > null_score_threshold:
            spans.append(Span("", None, None, null))
            continue
        start, end = int(offsets[w, first, 0]), int(offsets[w, last, 1])
        spans.append(Span(context[start:end], start, end, score))
    return spans

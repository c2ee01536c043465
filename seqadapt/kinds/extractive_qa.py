"""Extractive question answering (SQuAD v1.1 and 2.0): the answer is a span of the context, or nothing.

Rows are ``{"context", "question", "answer_text": [...], "answer_start": [...]}`` (every gold answer and its
character offset; none for an unanswerable question). A context longer than ``max_length`` becomes
overlapping windows, as in Hugging Face's ``run_qa``: each window's ``labels`` are the start and end token of
the first gold answer, or [0, 0] (the [CLS] token) when the answer is not wholly inside it. One example makes
at most :data:`MAX_WINDOWS` windows: a longer context is cut after them, with a warning. The scores are
the official SQuAD exact match and F1 of the decoded answers (:mod:`seqadapt.kinds.spans`), on a 0-1 scale
where the official script reports 0-100.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset, Features, List, Value
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.kinds import text_inputs
from seqadapt.kinds.base import HeadContext, RequestError, TaskKind, mapped
from seqadapt.kinds.collate import PadCollator
from seqadapt.kinds.spans import Span, decode
from seqadapt.kinds.squad_metric import squad_scores

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec

ROWS = Features({
    "context": Value("string"), "question": Value("string"),
    "answer_text": List(Value("string")), "answer_start": List(Value("int64")),
})
# What padding tokens score: low enough that no softmax gives them weight, high enough for float16.
PAD_LOGIT = -1e4
# The most windows one example becomes, so that one huge context cannot exhaust memory: a context longer than
# they hold is cut after them, with a warning. With max_length 384 and doc_stride 128 they hold about 15,000
# context tokens (some 60,000 characters, a long article); longer documents belong split into passages.
MAX_WINDOWS = 64
# Rows tokenised per Dataset.map batch: bounds the windows held in memory at once to ROWS_PER_MAP * MAX_WINDOWS.
ROWS_PER_MAP = 100


log = logging.getLogger(__name__)

class SpanHead(nn.Module):
    """A start and an end logit for every token: ``hidden`` [B, T, d] -> [B, T, 2]. Padding tokens get
    :data:`PAD_LOGIT`, so neither the loss nor an argmax can choose them."""

    def __init__(self, hidden_size: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.spans = nn.Linear(hidden_size, 2)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        logits = self.spans(self.dropout(hidden))
        return logits.masked_fill(attention_mask.unsqueeze(-1) == 0, PAD_LOGIT)


class ExtractiveQAKind(TaskKind):
    """Answers as character spans of a context, decoded from per-token start/end logits over its windows."""

    name = "extractive_qa"
    head_form, head_linear = "spans", "spans"
    primary_metric = "f1"

    def check_spec(self, spec: TaskSpec) -> None:
        if spec.labels:
            raise TaskDefinitionError(
                f"task '{spec.name}' (extractive_qa) declares labels {list(spec.labels)}; its answers are spans of "
                f"the context, so remove 'labels' from tasks/{spec.name}.yaml"
            )
        for key, least in (("doc_stride", 0), ("max_answer_length", 1), ("n_best", 1)):
            value = getattr(spec, key)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise TaskDefinitionError(f"task '{spec.name}': {key} is {value!r}; give an integer >= {least}")
        if not isinstance(spec.null_score_threshold, (int, float)) or isinstance(spec.null_score_threshold, bool):
            raise TaskDefinitionError(
                f"task '{spec.name}': null_score_threshold is {spec.null_score_threshold!r}; give a number (e.g. 0.0)"
            )

    def input_fields(self, spec: TaskSpec) -> tuple[str, ...]:
        return (spec.context_field, spec.question_field)

    def prepare(self, spec: TaskSpec, rows: Dataset, split: str) -> Dataset:
        """The declared fields -> canonical rows; every answer is checked to sit at its offset in the context."""
        keys = {spec.context_field: "context_field", spec.question_field: "question_field",
                spec.answers_field: "answers_field"}
        text_inputs.require_columns(spec, rows, split, keys)
        columns: dict[str, list] = {name: [] for name in ROWS}
        fields = (spec.context_field, spec.question_field, spec.answers_field)
        for number, values in enumerate(zip(*(rows[field] for field in fields))):
            row = canonical_row(f"task '{spec.name}' ({split} split) row {number}", fields, *values)
            for name in ROWS:
                columns[name].append(row[name])
        return Dataset.from_dict(columns, features=ROWS)

    def check_train(self, spec: TaskSpec, train: Dataset) -> None:
        """Only unanswerable questions cannot teach where answers are."""
        if not any(train["answer_text"]):
            raise TaskDataError(
                f"task '{spec.name}': none of its {len(train)} training questions has an answer, so it cannot learn "
                "to find one. Check answers_field, or raise data.train_size."
            )

    def texts(self, rows: Dataset) -> list[str]:
        return [f"{question}\n{context}" for question, context in zip(rows["question"], rows["context"])]

    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        answerable = sum(1 for answers in rows["answer_text"] if answers)
        return {"answerable": answerable, "unanswerable": len(rows) - answerable}

    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        answers = " / ".join(row["answer_text"]) or "(no answer)"
        context = row["context"] if len(row["context"]) <= 80 else row["context"][:79] + "…"
        return f"Q: {row['question']} | A: {answers} | C: {context}"

    def encode(self, spec: TaskSpec, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        """One feature per window of each row (``example`` names the row), with ``labels`` and ``offsets``."""
        if not getattr(tokenizer, "is_fast", False):
            raise TaskDefinitionError(
                f"task '{spec.name}' (extractive_qa) needs a fast tokenizer, whose offset mappings map tokens back "
                f"to the context; {type(tokenizer).__name__} is not one. Use a backbone with a fast tokenizer."
            )

        def windows(batch: dict[str, list], indices: list[int]) -> dict[str, list]:
            questions = fit_questions(spec, tokenizer, [q.lstrip() for q in batch["question"]], max_length)
            encoded = tokenizer(
                questions, bounded_contexts(tokenizer, batch["context"], max_length), truncation="only_second",
                max_length=max_length, stride=spec.doc_stride, return_overflowing_tokens=True,
                return_offsets_mapping=True,
            )
            kept = first_windows(spec, encoded["overflow_to_sample_mapping"], max_length)
            return window_targets(encoded, batch, indices, kept)

        return mapped(rows, windows, batched=True, batch_size=ROWS_PER_MAP, with_indices=True,
                      remove_columns=rows.column_names)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PadCollator:
        return PadCollator(tokenizer)

    def request(self, spec: TaskSpec, request: dict[str, Any], where: str) -> dict[str, Any]:
        row: dict[str, Any] = {"answer_text": [], "answer_start": []}
        for column, field in (("context", spec.context_field), ("question", spec.question_field)):
            value = request.get(field)
            if not isinstance(value, str) or not value.strip():
                problem = "is missing" if field not in request else f"must be non-blank text, not {value!r}"
                raise RequestError(f'{where}: "{field}" {problem}; task \'{spec.name}\' reads '
                                   f"{list(self.input_fields(spec))}")
            row[column] = value
        return row

    def make_head(self, spec: TaskSpec, context: HeadContext, train: Dataset | None) -> nn.Module:
        """Token-level, so ``pooling`` does not apply."""
        return SpanHead(context.hidden_size, context.dropout)

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module, reduction: str = "mean") -> torch.Tensor:
        """Per window, the mean of the start and the end token's cross-entropy."""
        if reduction not in ("mean", "sum"):
            raise ValueError(f"unknown reduction '{reduction}'; choose 'mean' or 'sum'")
        start = F.cross_entropy(outputs[..., 0], labels[:, 0], reduction="none")
        end = F.cross_entropy(outputs[..., 1], labels[:, 1], reduction="none")
        per_window = (start + end) / 2
        return per_window.sum() if reduction == "sum" else per_window.mean()

    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> dict[str, torch.Tensor]:
        return {"span_acc": (outputs.argmax(dim=1) == labels).all(dim=-1).float().mean()}

    def confidence(self, outputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Minus the mean of the start and end distributions' entropies over real tokens, each divided by
        log(number of real tokens) so that windows of any length share the [-1, 0] scale."""
        real = attention_mask.bool().unsqueeze(-1)
        log_p = torch.log_softmax(outputs.float().masked_fill(~real, float("-inf")), dim=1)
        entropy = -torch.where(real, log_p.exp() * log_p, torch.zeros_like(log_p)).sum(dim=1)
        size = attention_mask.sum(dim=1).clamp(min=2).float().log().unsqueeze(-1)
        return -(entropy / size).mean(dim=-1)

    def correct(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor], head: nn.Module) -> torch.Tensor:
        """Per window, whether the argmax start and end tokens (among [CLS] and the context's tokens, the
        positions a label can take) are the gold ones; [0, 0] means the answer is not in the window."""
        allowed = targets["offsets"][..., 0] >= 0
        allowed[:, 0] = True
        chosen = outputs.float().masked_fill(~allowed.unsqueeze(-1), float("-inf")).argmax(dim=1)
        return (chosen == targets["labels"]).all(dim=-1)

    def metrics(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> dict[str, float]:
        """Official SQuAD ``exact_match`` and ``f1`` (0-1), plus ``has_answer_f1``/``no_answer_f1`` when the
        split has answerable and unanswerable questions."""
        answers = [span.text for span in self._spans(spec, outputs, targets, rows)]
        return squad_scores(answers, rows["answer_text"])

    def predictions(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> list[dict[str, Any]]:
        """``{"answer", "start", "end", "score"}`` per row, ``context[start:end] == answer`` (None for no answer)."""
        return [
            {"answer": span.text, "start": span.start, "end": span.end, "score": span.score}
            for span in self._spans(spec, outputs, targets, rows)
        ]

    def _spans(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset
    ) -> list[Span]:
        return decode(outputs, targets["example"], targets["offsets"], rows["context"], spec.n_best,
                      spec.max_answer_length, spec.null_score_threshold)


def canonical_row(
    where: str, fields: tuple[str, str, str], context: Any, question: Any, answers: Any
) -> dict[str, Any]:
    """One source row's context, question and answers, checked: texts are text, answers are in SQuAD form
    and each answer is found at its offset (``where`` and ``fields`` name the row and the source fields)."""
    for field, value in zip(fields, (context, question)):
        if not isinstance(value, str) or not value.strip():
            raise TaskDataError(f"{where}: '{field}' must be non-blank text, not {value!r}")
    texts = answers.get("text") if isinstance(answers, dict) else None
    starts = answers.get("answer_start") if isinstance(answers, dict) else None
    if not (isinstance(texts, list) and isinstance(starts, list) and len(texts) == len(starts)):
        raise TaskDataError(
            f"{where}: '{fields[2]}' is {answers!r}; give SQuAD answers {{\"text\": [...], \"answer_start\": [...]}} "
            "(lists of equal length, both empty for an unanswerable question)"
        )
    for text, start in zip(texts, starts):
        if not isinstance(text, str) or not text or not isinstance(start, int) or isinstance(start, bool):
            raise TaskDataError(f"{where}: answer {text!r} at {start!r} must be non-empty text at an integer offset")
        found = context[start : start + len(text)]
        if found != text:
            raise TaskDataError(
                f"{where}: answer {text!r} is not at answer_start {start}; the context holds {found!r} there. "
                "answer_start is a character offset into the context (counting from 0); fix the offsets in the source"
            )
    return {"context": context, "question": question, "answer_text": texts, "answer_start": starts}


def fit_questions(
    spec: TaskSpec, tokenizer: PreTrainedTokenizerBase, questions: list[str], max_length: int
) -> list[str]:
    """Questions cut to what leaves each window room for more than ``doc_stride`` context tokens (as BERT's
    SQuAD script's ``max_query_length`` does), so one long question never stops a stream; a warning counts
    them. Settings that leave no room for any question are an error naming them."""
    special = tokenizer.num_special_tokens_to_add(pair=True)
    longest = max_length - special - spec.doc_stride - 1  # the longest question that leaves room
    if longest < 1:
        raise TaskDefinitionError(
            f"task '{spec.name}': max_length {max_length} leaves no room for a question next to {special} special "
            f"tokens and more than doc_stride ({spec.doc_stride}) context tokens; raise data.max_length or lower "
            f"doc_stride in tasks/{spec.name}.yaml"
        )
    encoded = tokenizer(questions, add_special_tokens=False, return_offsets_mapping=True)
    fitted = [question if len(offsets) <= longest else question[: offsets[longest - 1][1]]
              for question, offsets in zip(questions, encoded["offset_mapping"])]
    cut = sum(a != b for a, b in zip(questions, fitted))
    if cut:
        log.warning("task '%s': %d question(s) cut to %d tokens to fit max_length %d with doc_stride %d",
                    spec.name, cut, longest, max_length, spec.doc_stride)
    return fitted


def bounded_contexts(tokenizer: PreTrainedTokenizerBase, contexts: list[str], max_length: int) -> list[str]:
    """Contexts cut after ``MAX_WINDOWS * max_length`` tokens, more than :data:`MAX_WINDOWS` windows can hold
    (each holds fewer than ``max_length`` context tokens), so a huge context is never split into windows in
    full; which windows are kept, and the warning, are :func:`first_windows`'s."""
    budget = MAX_WINDOWS * max_length
    encoded = tokenizer(contexts, add_special_tokens=False, truncation=True, max_length=budget + 1,
                        return_offsets_mapping=True)
    return [context if len(offsets) <= budget else context[: offsets[budget - 1][1]]
            for context, offsets in zip(contexts, encoded["offset_mapping"])]


def first_windows(spec: TaskSpec, samples: list[int], max_length: int) -> list[int]:
    """The windows kept: each row's first :data:`MAX_WINDOWS` (``samples`` maps each window to its row); a
    warning counts the rows that had more, whose answers after those windows cannot be found."""
    seen: Counter[int] = Counter()
    kept = []
    for window, sample in enumerate(samples):
        seen[sample] += 1
        if seen[sample] <= MAX_WINDOWS:
            kept.append(window)
    cut = sum(count > MAX_WINDOWS for count in seen.values())
    if cut:
        log.warning("task '%s': %d context(s) longer than %d windows of max_length %d (doc_stride %d) were cut "
                    "after their first %d windows; answers after them cannot be found. Split long documents into "
                    "passages, or raise data.max_length", spec.name, cut, MAX_WINDOWS, max_length, spec.doc_stride,
                    MAX_WINDOWS)
    return kept


def window_targets(encoded: Any, batch: dict[str, list], indices: list[int], kept: list[int]) -> dict[str, list]:
    """The tokenizer's windows numbered in ``kept`` plus their targets: ``example`` (the row), ``offsets``
    ([start, end] characters of context tokens, [-1, -1] for question and special tokens) and ``labels`` (the
    answer's tokens)."""
    samples = encoded.pop("overflow_to_sample_mapping")
    mappings = encoded.pop("offset_mapping")
    features = {key: [values[window] for window in kept] for key, values in encoded.items()}
    features.update(example=[indices[samples[window]] for window in kept], offsets=[], labels=[])
    for window in kept:
        sample, sequence = samples[window], encoded.sequence_ids(window)
        offsets = [list(span) if sequence[token] == 1 else [-1, -1] for token, span in enumerate(mappings[window])]
        features["offsets"].append(offsets)
        features["labels"].append(window_label(offsets, batch["answer_text"][sample], batch["answer_start"][sample]))
    return features


def window_label(offsets: list[list[int]], texts: list[str], starts: list[int]) -> list[int]:
    """[start token, end token] of the first gold answer if the window's context tokens cover all of it,
    else [0, 0]: the [CLS] token, "no answer in this window"."""
    context = [token for token, (first, _) in enumerate(offsets) if first >= 0]
    if not texts or not context:
        return [0, 0]
    first, last = starts[0], starts[0] + len(texts[0])
    if offsets[context[0]][0] > first or offsets[context[-1]][1] < last:
        return [0, 0]
    start = max(token for token in context if offsets[token][0] <= first)
    end = min(token for token in context if offsets[token][1] >= last)
    return [start, end]

"""Token classification (named-entity tagging): a BIO/IOB2 tag per word, cross-entropy per token, entity F1.

A sentence arrives as words, but the model sees WordPiece sub-tokens; only the
first sub-token of each word carries the word's tag (the rest are ignored by
the loss), and a ``word_index`` column remembers which word each first
sub-token starts, so scores and predictions are per word again. A word that
lost all its sub-tokens to truncation (or to the tokenizer, e.g. a lone
zero-width character) is predicted ``O``: it still counts in the scores, so
truncation costs what it really costs.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset, Features, Sequence, Value
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.kinds import entities
from seqadapt.kinds.base import HeadContext, RequestError, TaskKind, mapped, warn_unseen
from seqadapt.kinds.classification import normalised_entropy
from seqadapt.kinds.collate import PadCollator
from seqadapt.kinds.text_inputs import require_columns

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec

IGNORED = -100  # the label of sub-tokens that are not a word's first: what cross-entropy skips
ROWS = Features({"tokens": Sequence(Value("string")), "tags": Sequence(Value("int64"))})


class TokenClassificationHead(nn.Module):
    """Dropout and a linear layer to the tag set on every token: [B, T, d] -> [B, T, tags]."""

    def __init__(self, hidden_size: int, num_tags: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_tags)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(hidden))


class TokenClassificationKind(TaskKind):
    """Rows are ``{"tokens": [str], "tags": [int]}`` (one tag index of ``spec.labels`` per word); outputs are
    logits over the tag set for every sub-token."""

    name = "token_classification"
    head_form, head_linear = "per_token", "classifier"
    primary_metric = "entity_f1"

    def check_spec(self, spec: TaskSpec) -> None:
        """A tag set of >= 2 distinct tags, all BIO/IOB2, including ``O`` (what cut-off words are predicted)."""
        if len(set(spec.labels)) < 2 or len(set(spec.labels)) != len(spec.labels):
            raise TaskDefinitionError(
                f"task '{spec.name}' declares the tags {list(spec.labels)}; a tagger needs >= 2 distinct tags in "
                "'labels', e.g. [O, B-person, I-person]"
            )
        bad = [tag for tag in spec.labels if not entities.is_bio(tag)]
        if bad or entities.OUTSIDE not in spec.labels:
            problem = f"declares tags {bad} that are not" if bad else "lacks the tag 'O'; its tags must include"
            raise TaskDefinitionError(
                f"task '{spec.name}' {problem} O, B-<type> or I-<type>: entity F1 reads BIO/IOB2 tags. Rename raw "
                f"tags with 'label_map' in tasks/{spec.name}.yaml, e.g. {{PER: B-person}}"
            )

    def input_fields(self, spec: TaskSpec) -> tuple[str, ...]:
        return (spec.tokens_field,)

    def prepare(self, spec: TaskSpec, rows: Dataset, split: str) -> Dataset:
        """Words as text, tag names (after ``label_map``) as indices of ``spec.labels``; empty sentences dropped."""
        require_columns(spec, rows, split, {spec.tokens_field: "tokens_field", spec.tags_field: "tags_field"})
        sentences = _sentences(spec, rows, split)
        index = {tag: i for i, tag in enumerate(spec.labels)}
        unknown = Counter(tag for _, tags in sentences for tag in tags if tag not in index)
        if unknown:
            raise TaskDataError(
                f"task '{spec.name}' ({split} split): {sum(unknown.values())} words have tags outside the declared "
                f"set {list(spec.labels)}: {dict(unknown.most_common(5))}. Add them to 'labels' or map them with "
                f"'label_map' in tasks/{spec.name}.yaml"
            )
        tokens = [words for words, _ in sentences]
        return Dataset.from_dict({"tokens": tokens, "tags": [[index[tag] for tag in tags] for _, tags in sentences]},
                                 features=ROWS)

    def check_train(self, spec: TaskSpec, train: Dataset) -> None:
        """Some entity to learn from, or no tagger; a declared tag no training word has only warns."""
        seen = {tag for tags in train["tags"] for tag in tags}
        if all(spec.labels[tag] == entities.OUTSIDE for tag in seen):
            raise TaskDataError(
                f"task '{spec.name}': every word of its {len(train)} training sentences is tagged O, so there is no "
                "entity to learn. Check the source's tags column (source.columns, tags_field) or raise data.train_size."
            )
        warn_unseen(spec, seen, "tag", "sentences", len(train), "label_map")

    def texts(self, rows: Dataset) -> list[str]:
        return [" ".join(words) for words in rows["tokens"]]

    def dropped(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        """Raw sentences without a word (counted only when there are some)."""
        if spec.tokens_field not in rows.column_names:
            return {}
        empty = sum(1 for words in rows[spec.tokens_field] if words is not None and len(words) == 0)
        return {"empty sentence": empty} if empty else {}

    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        """Words per declared tag, zeros included."""
        present = Counter(tag for tags in rows["tags"] for tag in tags)
        return {tag: present[i] for i, tag in enumerate(spec.labels)}

    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        """The sentence with each tagged word marked, e.g. ``Paris/B-loc is nice``."""
        names = [spec.labels[tag] for tag in row["tags"]]
        return " ".join(word if tag == entities.OUTSIDE else f"{word}/{tag}" for word, tag in zip(row["tokens"], names))

    def encode(self, spec: TaskSpec, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        """Sub-tokens with ``labels`` (a word's tag on its first sub-token, -100 elsewhere) and ``word_index``."""

        def tokenize(batch: dict[str, list]) -> Any:
            encoded = tokenizer(batch["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
            encoded["word_index"] = [first_subtokens(encoded.word_ids(i)) for i in range(len(batch["tokens"]))]
            encoded["labels"] = [
                [tags[word] if word >= 0 else IGNORED for word in words]
                for tags, words in zip(batch["tags"], encoded["word_index"])
            ]
            return encoded

        return mapped(rows, tokenize, batched=True, remove_columns=rows.column_names)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PadCollator:
        return PadCollator(tokenizer)

    def request(self, spec: TaskSpec, request: dict[str, Any], where: str) -> dict[str, Any]:
        """A list of non-blank words -> a canonical row with placeholder tags."""
        words = request.get(spec.tokens_field)
        problem = _request_problem(spec.tokens_field, request, words)
        if problem:
            raise RequestError(
                f"{where}: \"{spec.tokens_field}\" {problem}; task '{spec.name}' tags words: give a list of words, "
                f'e.g. {{"{spec.tokens_field}": ["Paris", "is", "nice"]}}'
            )
        return {"tokens": list(words), "tags": [0] * len(words)}

    def make_head(self, spec: TaskSpec, context: HeadContext, train: Dataset | None) -> nn.Module:
        return TokenClassificationHead(context.hidden_size, len(spec.labels), context.dropout)

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module, reduction: str = "mean") -> torch.Tensor:
        """Each example's mean cross-entropy over its labelled tokens (0 if it has none), averaged or summed."""
        if reduction not in ("mean", "sum"):
            raise ValueError(f"unknown reduction '{reduction}'; choose 'mean' or 'sum'")
        per_token = F.cross_entropy(
            outputs.flatten(0, 1).float(), labels.flatten().long(), ignore_index=IGNORED, reduction="none"
        ).view(labels.shape)
        labelled = (labels != IGNORED).sum(dim=1).clamp(min=1)
        per_example = per_token.sum(dim=1) / labelled
        return per_example.mean() if reduction == "mean" else per_example.sum()

    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> dict[str, torch.Tensor]:
        """Accuracy over labelled tokens (first sub-tokens of words)."""
        labelled = labels != IGNORED
        right = (outputs.argmax(dim=-1) == labels) & labelled
        return {"token_acc": right.sum() / labelled.sum().clamp(min=1)}

    def confidence(self, outputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Minus the mean normalised entropy of a feature's real tokens."""
        mask = attention_mask.to(torch.float32)
        entropy = normalised_entropy(outputs.float())
        return -(entropy * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)

    def correct(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor], head: nn.Module) -> torch.Tensor:
        """Every labelled token of the feature right (a feature with none counts as right)."""
        labels = targets["labels"]
        return ((outputs.argmax(dim=-1) == labels) | (labels == IGNORED)).all(dim=1)

    def metrics(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> dict[str, float]:
        """Entity F1, precision and recall (conlleval) and accuracy over every word, cut-off ones included."""
        gold = [[spec.labels[tag] for tag in tags] for tags in rows["tags"]]
        predicted = word_tags(spec, outputs, targets["word_index"], [len(tags) for tags in gold])
        scores = entities.entity_scores(gold, predicted)
        words = sum(len(tags) for tags in gold)
        right = sum(g == p for gold_tags, tags in zip(gold, predicted) for g, p in zip(gold_tags, tags))
        return {
            "entity_f1": scores["f1"], "entity_precision": scores["precision"], "entity_recall": scores["recall"],
            "token_accuracy": right / words if words else 0.0,
        }

    def predictions(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> list[dict[str, Any]]:
        """Per row ``{"tags": [one per word], "entities": [{"type", "words", "start", "end"}]}``; ``end`` is
        exclusive, so ``tokens[start:end] == words``."""
        sentences = list(rows["tokens"])
        predicted = word_tags(spec, outputs, targets["word_index"], [len(words) for words in sentences])
        return [
            {
                "tags": tags,
                "entities": [
                    {"type": kind, "words": words[start:end], "start": start, "end": end}
                    for kind, start, end in entities.entities(tags)
                ],
            }
            for words, tags in zip(sentences, predicted)
        ]


def first_subtokens(word_ids: list[int | None]) -> list[int]:
    """Per sub-token, the index of the word it starts, or -1 (special tokens and a word's later sub-tokens)."""
    starts, previous = [], None
    for word in word_ids:
        starts.append(word if word is not None and word != previous else -1)
        previous = word
    return starts


def word_tags(spec: TaskSpec, outputs: torch.Tensor, word_index: torch.Tensor, lengths: list[int]) -> list[list[str]]:
    """Each row's predicted tag names, one per word: the argmax at the word's first sub-token, ``O`` for a word
    with none (cut off by truncation). ``outputs`` [N, T, C] and ``word_index`` [N, T] hold one feature per row."""
    if len(outputs) != len(lengths) or len(word_index) != len(lengths):
        raise ValueError(
            f"{len(outputs)} outputs and {len(word_index)} word_index rows for {len(lengths)} sentences; "
            "a token-classification row is one feature, so give one per row, in row order"
        )
    best, starts = outputs.argmax(dim=-1).tolist(), word_index.tolist()
    outside = spec.labels.index(entities.OUTSIDE)
    predicted = []
    for length, row_best, row_starts in zip(lengths, best, starts):
        tags = [outside] * length
        for tag, word in zip(row_best, row_starts):
            if 0 <= word < length:
                tags[word] = tag
        predicted.append([spec.labels[tag] for tag in tags])
    return predicted


def _sentences(spec: TaskSpec, rows: Dataset, split: str) -> list[tuple[list[str], list[str]]]:
    """Each non-empty row's words and tag names (``label_map`` applied); a row whose words and tags differ in
    number, or that holds text instead of lists, is a :class:`TaskDataError` naming it (rows counted from 1)."""
    sentences = []
    for number, (words, tags) in enumerate(zip(rows[spec.tokens_field], rows[spec.tags_field]), start=1):
        where = f"task '{spec.name}' ({split} split), row {number}"
        for value, key in ((words, "tokens_field"), (tags, "tags_field")):
            if not isinstance(value, (list, tuple)):
                raise TaskDataError(
                    f"{where}: {key} '{getattr(spec, key)}' holds {type(value).__name__} {str(value)[:60]!r}, not a "
                    "list (one entry per word); read the source with format conll, json or jsonl"
                )
        if len(words) != len(tags):
            raise TaskDataError(
                f"{where}: {len(words)} words but {len(tags)} tags ({' '.join(map(str, words[:8]))!r}...); every "
                "word needs exactly one tag. Fix the row in the source, or tokens_field / tags_field"
            )
        if words:
            sentences.append(([str(word) for word in words], [spec.label_map.get(str(tag), str(tag)) for tag in tags]))
    return sentences


def _request_problem(field: str, request: dict[str, Any], words: Any) -> str:
    """What is wrong with a request's words ('' if nothing)."""
    if field not in request:
        return "is missing"
    if isinstance(words, str):
        return f"must be a list of words, not the text {words[:60]!r}"
    if not isinstance(words, list) or not words:
        return f"must be a non-empty list of words, not {repr(words)[:60]}"
    bad = next((i for i, word in enumerate(words) if not isinstance(word, str) or not word.strip()), None)
    return "" if bad is None else f"has word {bad} = {words[bad]!r}; every word must be non-blank text"

"""Text-to-text: the task's adapters over the frozen language model, trained on the target's tokens only and
answering by greedy generation (decoder-only and encoder-decoder backbones; :mod:`seqadapt.families.generation`).

Canonical rows are ``{"text": prompt, "target": str, "targets": [str, ...]}``: the input put through the
task's ``prompt`` template, the target trained on and every acceptable answer. The input is one text
(``input_field``, named ``{input}`` in the prompt) or several columns (``text_fields``, each named by its own
name: ``{premise}``, ``{hypothesis}``); a target that is a label id (a Hub ``ClassLabel``) becomes its label
word through ``label_map``, so the model is trained on, and scored by, words it can generate. Features are the prompt's
tokens (``input_ids``) and the target's tokens plus EOS (``labels``). A batch's outputs are [B, 1 + G]: the
mean negative log-likelihood of each row's generated tokens, then the G = ``max_target_length`` generated
token ids (-1 after EOS), so the guard's fingerprint covers both the text and how sure the model was.
"""

from __future__ import annotations

import string
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset
from torch import nn
from torch.nn import functional as F
from transformers import PreTrainedTokenizerBase

from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.families.generation import IGNORE, greedy, require_language_model, target_logits
from seqadapt.kinds.base import HeadContext, TaskKind, mapped
from seqadapt.kinds.collate import PadCollator
from seqadapt.kinds.squad_metric import exact_match
from seqadapt.kinds.text_inputs import request_texts, require_columns
from seqadapt.kinds.text_metrics import text_scores

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec
    from seqadapt.model import SeqAdaptModule


def fill_prompt(prompt: str, texts: str | Mapping[str, str]) -> str:
    """``prompt`` with each placeholder replaced by its text and ``{{`` / ``}}`` read as literal braces: ``texts``
    maps each placeholder's name to its text (a single text is ``{input}``'s). These are the only template grammar a
    task definition may hold (:func:`seqadapt.data.tasks.check_prompt` refuses anything else when it is read),
    applied as a plain substitution rather than ``str.format``, so no format spec, conversion, attribute or index
    in a prompt is ever evaluated and an input's own braces stay its text. For valid prompts it equals
    ``prompt.format(**texts)``."""
    values = {"input": texts} if isinstance(texts, str) else texts
    parts = []
    for literal, field, _, _ in string.Formatter().parse(prompt):
        parts.append(literal)
        if field is not None:
            parts.append(values[field])
    return "".join(parts)


def placeholders(spec: TaskSpec) -> dict[str, str]:
    """Each name the task's prompt fills -> the column (and request field) its text comes from: ``{input}`` is
    ``input_field``'s, and each of ``text_fields`` is its own column's."""
    if spec.text_fields:
        return {name: name for name in spec.text_fields}
    return {"input": spec.input_field}


def label_words(spec: TaskSpec, split: str, values: list[Any]) -> list[Any]:
    """``values`` (a target, or a list of acceptable ones, per row) through ``label_map``, when the definition has
    one: a Hub dataset's label ids ("0", "1") would otherwise be the text trained on and generated. As for a
    classification task, keys are strings and a value absent from the map is an error naming the values and the fix,
    not a target left as its id."""
    if not spec.label_map:
        return values

    def mapped(target: Any) -> Any:
        if isinstance(target, (list, tuple)):
            return [mapped(t) for t in target]
        return None if target is None else spec.label_map.get(str(target), target)

    unknown = Counter(str(t) for target in values for t in (target if isinstance(target, (list, tuple)) else [target])
                      if t is not None and str(t) not in spec.label_map)
    if unknown:
        raise TaskDataError(
            f"task '{spec.name}' ({split} split): {sum(unknown.values())} targets are not keys of label_map "
            f"{_shown(list(spec.label_map))}: {dict(unknown.most_common(5))}. Add them to 'label_map' in "
            f"tasks/{spec.name}.yaml, or fix target_field ({spec.target_field!r}) there"
        )
    return [mapped(target) for target in values]


def _shown(value: Any, width: int = 200) -> str:
    """``repr(value)`` cut to ``width`` characters: a message names a long prompt or label_map without holding it
    (seqadapt.data.listing.clip also folds whitespace, and importing it here would be circular)."""
    text = repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _check_text_fields(spec: TaskSpec) -> None:
    """``text_fields``, where given, is a list of distinct column names: each becomes a placeholder of the prompt
    and a field of a request, so a bare string or a repeated or blank name has no one meaning."""
    fields = spec.text_fields
    if not fields:
        return
    if isinstance(fields, str) or not all(isinstance(name, str) and name.strip() for name in fields) \
            or len(set(fields)) != len(fields):
        one = f" (text_fields: [{fields}] for one column)" if isinstance(fields, str) else ""
        raise TaskDefinitionError(
            f"task '{spec.name}': text_fields must be a list of distinct column names, e.g. [premise, hypothesis]"
            f"{one}, not {_shown(fields)}; fix tasks/{spec.name}.yaml"
        )


class LanguageModelHead(nn.Module):
    """A text-to-text task's 'head': no parameters of its own, only what generating needs. The language model is
    held outside the module tree (a head's tensors are the task's own; the model's belong to the backbone)."""

    def __init__(self, context: HeadContext, max_new_tokens: int) -> None:
        super().__init__()
        if context.model is None or context.family is None or context.tokenizer is None:
            raise ValueError("a text_to_text task needs the module's backbone and tokenizer: build SeqAdaptModule "
                             "with tokenizer=... (seqadapt's runs and load_stream do)")
        require_language_model(context.model, context.family, "a text_to_text task")
        self._lm = (context.model, context.family)  # a tuple: not registered as a submodule
        self.tokenizer, self.max_new_tokens = context.tokenizer, max_new_tokens

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("text_to_text tasks generate with their own pass: they cannot share a backbone pass with "
                           "other tasks (run them through TaskKind.run or train_outputs)")

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        model, family = self._lm
        ids, nll = greedy(model, family, input_ids, attention_mask, self.max_new_tokens, self.tokenizer.eos_token_id,
                          self.tokenizer.pad_token_id)
        return torch.cat([nll.unsqueeze(1), ids.to(nll.dtype)], dim=1)

    def teacher_forced(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        model, family = self._lm
        return target_logits(model, family, input_ids, attention_mask, labels)

    def texts(self, outputs: torch.Tensor) -> list[str]:
        """The generated text of each row of a batch's outputs."""
        ids = outputs[:, 1:].long()
        return [self.tokenizer.decode(row[row >= 0].tolist(), skip_special_tokens=True).strip() for row in ids]


class TextToTextKind(TaskKind):
    """Rows map an input text to a target text; scored by exact match (primary), token F1 and ROUGE-L."""

    name = "text_to_text"
    primary_metric = "exact_match"
    calibratable = False
    shares_passes = False

    def check_spec(self, spec: TaskSpec) -> None:
        if spec.labels:
            raise TaskDefinitionError(f"task '{spec.name}' (text_to_text) declares labels {list(spec.labels)}; its "
                                      f"answers are free text, so remove 'labels' from tasks/{spec.name}.yaml")
        _check_text_fields(spec)
        named = {field for _, field, _, _ in string.Formatter().parse(spec.prompt) if field is not None}
        missing = [name for name in placeholders(spec) if name not in named]
        if missing and not spec.text_fields:
            raise TaskDefinitionError(f"task '{spec.name}': prompt {spec.prompt!r} has no '{{input}}' placeholder "
                                      f"for the input text; e.g. prompt: \"Question: {{input}} Answer:\"")
        if missing:
            raise TaskDefinitionError(
                f"task '{spec.name}': prompt {_shown(spec.prompt)} has no placeholder for text_fields "
                f"{missing}; name each of {list(spec.text_fields)} in it as {{name}}, or remove it from text_fields"
            )
        if spec.max_target_length < 1:
            raise TaskDefinitionError(f"task '{spec.name}': max_target_length must be >= 1, got {spec.max_target_length}")

    def input_fields(self, spec: TaskSpec) -> tuple[str, ...]:
        return tuple(placeholders(spec).values())

    def positions_after_input(self, spec: TaskSpec, architecture: str) -> int:
        """A decoder trains on, and generates, the target after the prompt in the same sequence; an
        encoder-decoder's target has the decoder's own positions."""
        return spec.max_target_length if architecture == "decoder" else 0

    def prepare(self, spec: TaskSpec, rows: Dataset, split: str) -> Dataset:
        """Inputs through the prompt; a target may be a text or a list of acceptable texts (the first is trained
        on), each put through ``label_map`` where the definition has one."""
        columns = placeholders(spec)
        key = "text_fields" if spec.text_fields else "input_field"
        require_columns(spec, rows, split, {**{column: key for column in columns.values()},
                                            spec.target_field: "target_field"})
        inputs = {name: rows[column] for name, column in columns.items()}
        texts, targets = [], []
        for i, target in enumerate(label_words(spec, split, rows[spec.target_field])):
            golds = [str(t).strip() for t in (target if isinstance(target, (list, tuple)) else [target]) if t is not None]
            if not golds or not golds[0]:
                raise TaskDataError(f"task '{spec.name}' ({split} split): row {i} has an empty target "
                                    f"({spec.target_field}={target!r}); fix the data or target_field in tasks/{spec.name}.yaml")
            texts.append(fill_prompt(spec.prompt, {name: str(values[i]) for name, values in inputs.items()}))
            targets.append(golds)
        return Dataset.from_dict({"text": texts, "target": [golds[0] for golds in targets], "targets": targets})

    def check_train(self, spec: TaskSpec, train: Dataset) -> None:
        if len(train) == 0:
            raise TaskDataError(f"task '{spec.name}' has no training rows; raise data.train_size")

    def texts(self, rows: Dataset) -> list[str]:
        return list(rows["text"])

    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        return {"examples": len(rows), "distinct targets": len(set(rows["target"]))}

    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        return f"{row['text']} => {row['target']}"

    def encode(self, spec: TaskSpec, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        """The prompt's tokens, and the target's (after a space, as it follows the prompt in running text) + EOS."""
        def tokenize(batch: dict[str, list]) -> dict[str, Any]:
            inputs = tokenizer(batch["text"], truncation=True, max_length=max_length)
            targets = tokenizer([f" {t}" for t in batch["target"]], add_special_tokens=False, truncation=True,
                                max_length=spec.max_target_length - 1)["input_ids"]
            return {"input_ids": inputs["input_ids"], "attention_mask": inputs["attention_mask"],
                    "labels": [ids + [tokenizer.eos_token_id] for ids in targets]}

        return mapped(rows, tokenize, batched=True, remove_columns=rows.column_names)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> PadCollator:
        return PadCollator(tokenizer)

    def request(self, spec: TaskSpec, request: dict[str, Any], where: str) -> dict[str, Any]:
        """A request names the task's input fields (``input_field``, or each of ``text_fields``) as its rows do."""
        columns = placeholders(spec)
        texts = request_texts(spec, request, where, tuple(columns.values()))
        filled = fill_prompt(spec.prompt, {name: texts[column] for name, column in columns.items()})
        return {"text": filled, "target": "", "targets": [""]}

    def make_head(self, spec: TaskSpec, context: HeadContext, train: Dataset | None) -> nn.Module:
        return LanguageModelHead(context, spec.max_target_length)

    def run(self, module: SeqAdaptModule, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
            token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        return module.heads[task].generate(input_ids, attention_mask)

    def train_outputs(self, module: SeqAdaptModule, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return module.heads[task].teacher_forced(batch["input_ids"], batch["attention_mask"], batch["labels"])

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module, reduction: str = "mean") -> torch.Tensor:
        """Each example's mean cross-entropy over its target tokens, averaged or summed over examples."""
        per_token = F.cross_entropy(outputs.float().transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
        counted = (labels != IGNORE).sum(dim=1).clamp(min=1)
        per_example = per_token.sum(dim=1) / counted
        return per_example.mean() if reduction == "mean" else per_example.sum()

    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> dict[str, torch.Tensor]:
        real = labels != IGNORE
        return {"token_acc": ((outputs.argmax(dim=-1) == labels) & real).sum() / real.sum().clamp(min=1)}

    def confidence(self, outputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """exp(-mean NLL of the generated tokens) - 1: the generated tokens' geometric mean probability, in [-1, 0]."""
        return torch.exp(-outputs[:, 0].float()) - 1

    def correct(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor], head: nn.Module) -> torch.Tensor:
        """Whether the generated text matches the trained target after the SQuAD normalisation."""
        labels = targets["labels"]
        golds = [head.tokenizer.decode(row[row >= 0].tolist(), skip_special_tokens=True) for row in labels]
        return torch.tensor([exact_match(p, g) == 1.0 for p, g in zip(head.texts(outputs), golds)])

    def metrics(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> dict[str, float]:
        return text_scores(head.texts(outputs), rows["targets"])

    def predictions(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> list[dict[str, Any]]:
        return [{"generated": text, "nll": float(nll)} for text, nll in zip(head.texts(outputs), outputs[:, 0])]

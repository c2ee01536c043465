"""Classification of one text or a pair of texts: a label from a declared set, cross-entropy, accuracy."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset
from torch import nn
from torch.nn import functional as F
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.heads import ClassificationHead
from seqadapt.kinds import text_inputs
from seqadapt.kinds.base import HeadContext, TaskKind, warn_unseen

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec


class ClassificationKind(TaskKind):
    """Rows are ``{"text": str, "label": int}`` (plus ``text_pair`` for a pair); outputs are logits over the
    declared labels."""

    name = "classification"
    head_form, head_linear = "pooled", "classifier"
    primary_metric = "accuracy"
    distillable = True

    def check_spec(self, spec: TaskSpec) -> None:
        if len(spec.labels) < 2:
            raise TaskDefinitionError(f"task '{spec.name}' declares {len(spec.labels)} label(s); a classifier needs >= 2")
        if len(set(spec.labels)) != len(spec.labels):
            raise TaskDefinitionError(f"task '{spec.name}' declares duplicate labels: {list(spec.labels)}")
        text_inputs.check_text_fields(spec)

    def input_fields(self, spec: TaskSpec) -> tuple[str, ...]:
        return spec.inputs

    def prepare(self, spec: TaskSpec, rows: Dataset, split: str) -> Dataset:
        """Label names -> indices of ``spec.labels``; rows with a label in ``drop_labels`` are removed."""
        text_inputs.require_columns(spec, rows, split, {spec.label_field: "label_field"})
        raw = [str(value) for value in rows[spec.label_field]]
        keep = [i for i, value in enumerate(raw) if value not in spec.drop_labels]
        names = [spec.label_map.get(raw[i], raw[i]) for i in keep]
        index = {label: i for i, label in enumerate(spec.labels)}
        unknown = Counter(name for name in names if name not in index)
        if unknown:
            raise TaskDataError(
                f"task '{spec.name}' ({split} split): {sum(unknown.values())} rows have labels outside the declared "
                f"set {list(spec.labels)}: {dict(unknown.most_common(5))}. Add them to 'labels', map them with "
                f"'label_map', or list them in 'drop_labels' in tasks/{spec.name}.yaml"
            )
        columns = text_inputs.text_columns(spec, rows, split, keep)
        return Dataset.from_dict({**columns, "label": [index[name] for name in names]})

    def check_train(self, spec: TaskSpec, train: Dataset) -> None:
        """At least two classes, or no classifier; a declared label with no training example only warns, since
        the task still trains, but its head will never predict that label."""
        classes = set(train["label"])
        if len(classes) < 2:
            only = spec.labels[next(iter(classes))]
            raise TaskDataError(
                f"task '{spec.name}': all {len(train)} training examples have the label '{only}'; a classifier "
                "needs at least two classes. Check the source, label_map, or raise data.train_size."
            )
        warn_unseen(spec, classes, "label", "examples", len(train), "label_map and drop_labels")

    def texts(self, rows: Dataset) -> list[str]:
        return text_inputs.joined(rows)

    def dropped(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        if spec.label_field not in rows.column_names:
            return {}
        raw = Counter(str(value) for value in rows[spec.label_field])
        return {f"drop_labels '{value}'": raw[value] for value in spec.drop_labels if raw[value]}

    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        present = Counter(rows["label"])
        return {label: present[index] for index, label in enumerate(spec.labels)}

    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        return f"[{spec.labels[row['label']]}] {text_inputs.shown(row)}"

    def encode(self, spec: TaskSpec, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        return text_inputs.encode_texts(rows, tokenizer, max_length)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
        return DataCollatorWithPadding(tokenizer)

    def request(self, spec: TaskSpec, request: dict[str, Any], where: str) -> dict[str, Any]:
        return {**text_inputs.text_request(spec, request, where), "label": -1}

    def make_head(self, spec: TaskSpec, context: HeadContext, train: Dataset | None) -> nn.Module:
        return ClassificationHead(context.hidden_size, len(spec.labels), context.pooling, context.dropout)

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(outputs, labels, reduction=reduction)

    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> dict[str, torch.Tensor]:
        return {"acc": (outputs.argmax(dim=-1) == labels).float().mean()}

    def prototype_classes(self, spec: TaskSpec) -> int:
        return len(spec.labels)

    def prototype_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return labels.long()

    def confidence(self, outputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return -normalised_entropy(outputs.float())

    def correct(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor], head: nn.Module) -> torch.Tensor:
        return outputs.argmax(dim=-1) == targets["labels"]

    def metrics(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> dict[str, float]:
        return {"accuracy": int(self.correct(outputs, targets, head).sum()) / len(outputs)}

    def predictions(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> list[dict[str, Any]]:
        probabilities = torch.softmax(outputs.float(), dim=-1)
        return [
            {"label": spec.labels[int(row.argmax())], "probabilities": dict(zip(spec.labels, row.tolist()))}
            for row in probabilities
        ]


def normalised_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Predictive entropy over the last dimension divided by log(its size), so 2 and 8 classes share a scale."""
    entropy = -(torch.softmax(logits, dim=-1) * torch.log_softmax(logits, dim=-1)).sum(dim=-1)
    return entropy / torch.log(torch.tensor(float(max(logits.shape[-1], 2))))

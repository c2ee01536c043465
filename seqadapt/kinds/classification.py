"""Single-text classification: a text field, a label from a declared set, cross-entropy, accuracy."""

from __future__ import annotations

import hashlib
import warnings
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset
from torch import nn
from torch.nn import functional as F
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from seqadapt.backbone import tensor_bytes
from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.heads import ClassificationHead
from seqadapt.kinds.base import TaskKind

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec


@dataclass(frozen=True)
class ClassificationPrediction:
    text: str
    task: str
    label: str
    probabilities: dict[str, float]
    selected_by: str | None = None  # the selector that picked the task; None when the task was given


class ClassificationKind(TaskKind):
    """Rows are ``{"text": str, "label": int}``; outputs are logits over the declared labels."""

    name = "classification"
    primary_metric = "accuracy"

    def check_spec(self, spec: TaskSpec) -> None:
        if len(spec.labels) < 2:
            raise TaskDefinitionError(f"task '{spec.name}' declares {len(spec.labels)} label(s); a classifier needs >= 2")
        if len(set(spec.labels)) != len(spec.labels):
            raise TaskDefinitionError(f"task '{spec.name}' declares duplicate labels: {list(spec.labels)}")

    def prepare(self, spec: TaskSpec, rows: Dataset, split: str) -> Dataset:
        """Label names -> indices of ``spec.labels``; rows with a label in ``drop_labels`` are removed."""
        for column, key in ((spec.text_field, "text_field"), (spec.label_field, "label_field")):
            if column not in rows.column_names:
                raise TaskDataError(
                    f"task '{spec.name}' ({split} split): column '{column}' is not in the data "
                    f"(columns: {rows.column_names}); fix {key} in tasks/{spec.name}.yaml"
                )
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
        texts = rows[spec.text_field]
        return Dataset.from_dict({"text": [str(texts[i]) for i in keep], "label": [index[name] for name in names]})

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
        missing = [label for index, label in enumerate(spec.labels) if index not in classes]
        if missing:
            warnings.warn(
                f"task '{spec.name}': declared label(s) {missing} never occur in its {len(train)} training examples, "
                f"so it cannot learn them. Check label_map and drop_labels in tasks/{spec.name}.yaml, remove the "
                "label(s) from 'labels', or raise data.train_size.",
                UserWarning, stacklevel=3,
            )

    def texts(self, rows: Dataset) -> list[str]:
        return list(rows["text"])

    def dropped(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        if spec.label_field not in rows.column_names:
            return {}
        raw = Counter(str(value) for value in rows[spec.label_field])
        return {f"drop_labels '{value}'": raw[value] for value in spec.drop_labels if raw[value]}

    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        present = Counter(rows["label"])
        return {label: present[index] for index, label in enumerate(spec.labels)}

    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        return f"[{spec.labels[row['label']]}] {row['text']}"

    def encode(self, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        encoded = rows.map(
            lambda batch: tokenizer(batch["text"], truncation=True, max_length=max_length),
            batched=True, remove_columns=["text"],
        )
        return encoded.rename_column("label", "labels")

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
        return DataCollatorWithPadding(tokenizer)

    def unlabelled(self, inputs: list[str]) -> Dataset:
        return Dataset.from_dict({"text": list(inputs), "label": [-1] * len(inputs)})

    def make_head(self, spec: TaskSpec, hidden_size: int, pooling: str, dropout: float) -> nn.Module:
        return ClassificationHead(hidden_size, len(spec.labels), pooling, dropout)

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        return F.cross_entropy(outputs, labels, reduction=reduction)

    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"acc": (outputs.argmax(dim=-1) == labels).float().mean()}

    def prototype_classes(self, spec: TaskSpec) -> int:
        return len(spec.labels)

    def correct(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return outputs.argmax(dim=-1) == labels

    def metrics(self, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        return {"accuracy": int(self.correct(outputs, labels).sum()) / len(labels)}

    def fingerprint(self, outputs: torch.Tensor) -> str:
        return hashlib.sha256(tensor_bytes(outputs)).hexdigest()

    def prediction(self, spec: TaskSpec, text: str, output: torch.Tensor, selected_by: str | None) -> Any:
        probabilities = torch.softmax(output.float(), dim=-1)
        return ClassificationPrediction(
            text, spec.name, spec.labels[int(probabilities.argmax())],
            {label: float(p) for label, p in zip(spec.labels, probabilities)}, selected_by,
        )

"""Regression on one text or a pair of texts: a number per example, squared error, Pearson and Spearman.

The head predicts in the target's own units but learns a standardised target:
it keeps the training targets' mean and standard deviation as buffers (so they
travel in its ``state_dict`` into artefacts and the guard's fingerprints) and
the loss divides errors by that deviation. A task whose scores run from -4 to 4
and one whose scores run from 0 to 1 then train at the same scale, which matters
when several tasks share one optimiser and learning rate.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from datasets import Dataset, Value
from torch import nn
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.heads import Pooling, check_pooling, pool
from seqadapt.kinds import text_inputs
from seqadapt.kinds.base import HeadContext, TaskKind

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec

# Keys a classifier reads that mean nothing for a numeric target, and why each is refused.
_REFUSED = {
    "labels": "regression has no labels; remove 'labels'",
    "label_map": "regression reads label_field as a number; remove 'label_map' (convert the values in the file instead)",
    "drop_labels": "regression drops no rows by label; remove 'drop_labels' (filter the file instead)",
}


class RegressionHead(nn.Module):
    """Pooling, dropout and a linear layer to one standardised score, returned in the target's own units:
    ``mean + std * linear(...)``, with ``mean`` and ``std`` the training targets' (buffers, not learnt)."""

    def __init__(self, hidden_size: int, pooling: Pooling = "mean", dropout: float = 0.1) -> None:
        super().__init__()
        check_pooling(pooling)
        self.pooling = pooling
        self.dropout = nn.Dropout(dropout)
        self.regressor = nn.Linear(hidden_size, 1)
        self.register_buffer("mean", torch.tensor(0.0))
        self.register_buffer("std", torch.tensor(1.0))

    def fit_targets(self, targets: torch.Tensor) -> None:
        """Keep the mean and (population) standard deviation of ``targets``; a deviation of 0 keeps 1, so a
        constant target never divides by zero."""
        targets = targets.double()
        std = float(targets.std(correction=0))
        self.mean.fill_(float(targets.mean()))
        self.std.fill_(std if std > 0 else 1.0)

    def forward(self, hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        standardised = self.regressor(self.dropout(pool(hidden, attention_mask, self.pooling))).squeeze(-1)
        return self.mean + self.std * standardised


class RegressionKind(TaskKind):
    """Rows are ``{"text": str, "label": float}`` (plus ``text_pair`` for a pair); outputs are one score per
    example [B], in the target's units."""

    name = "regression"
    head_form, head_linear = "pooled_rescaled", "regressor"
    primary_metric = "pearson"
    calibratable = False  # one score, not logits: no temperature

    def check_spec(self, spec: TaskSpec) -> None:
        for key, problem in _REFUSED.items():
            if getattr(spec, key):
                raise TaskDefinitionError(f"task '{spec.name}': {problem} from tasks/{spec.name}.yaml")
        text_inputs.check_text_fields(spec)

    def input_fields(self, spec: TaskSpec) -> tuple[str, ...]:
        return spec.inputs

    def prepare(self, spec: TaskSpec, rows: Dataset, split: str) -> Dataset:
        """The label field as floats; a value that is not a finite number names its row (0-based, in the source)."""
        text_inputs.require_columns(spec, rows, split, {spec.label_field: "label_field"})
        labels = []
        for number, value in enumerate(rows[spec.label_field]):
            label = _finite(value)
            if label is None:
                raise TaskDataError(
                    f"task '{spec.name}' ({split} split): row {number} has {spec.label_field}={value!r}, not a finite "
                    f"number; check label_field in tasks/{spec.name}.yaml names the numeric column, or fix the row"
                )
            labels.append(label)
        columns = text_inputs.text_columns(spec, rows, split, list(range(len(rows))))
        return Dataset.from_dict({**columns, "label": labels})

    def check_train(self, spec: TaskSpec, train: Dataset) -> None:
        """At least two training examples with different targets: a constant target teaches nothing (and leaves
        Pearson and Spearman undefined)."""
        values = set(train["label"])
        if len(train) < 2 or len(values) < 2:
            shown = f"the target {next(iter(values))}" if values else "no target"
            raise TaskDataError(
                f"task '{spec.name}': all {len(train)} training example(s) have {shown}; regression needs at least "
                "two different targets. Check the source and label_field, or raise data.train_size."
            )

    def texts(self, rows: Dataset) -> list[str]:
        return text_inputs.joined(rows)

    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        return {"examples": len(rows)}

    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        return f"[{row['label']:.2f}] {text_inputs.shown(row)}"

    def encode(self, spec: TaskSpec, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        """Targets as float32, the dtype of the head's outputs (``from_dict`` gives float64)."""
        return text_inputs.encode_texts(rows.cast_column("label", Value("float32")), tokenizer, max_length)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> DataCollatorWithPadding:
        return DataCollatorWithPadding(tokenizer)

    def request(self, spec: TaskSpec, request: dict[str, Any], where: str) -> dict[str, Any]:
        return {**text_inputs.text_request(spec, request, where), "label": 0.0}

    def make_head(self, spec: TaskSpec, context: HeadContext, train: Dataset | None) -> nn.Module:
        head = RegressionHead(context.hidden_size, context.pooling, context.dropout)  # type: ignore[arg-type]
        if train is not None:
            head.fit_targets(torch.tensor(train["label"], dtype=torch.float64))
        return head

    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module, reduction: str = "mean") -> torch.Tensor:
        """Squared error of the standardised target, ``((outputs - labels) / std)^2`` per example."""
        per_example = ((outputs.float() - labels.float()) / head.std) ** 2
        if reduction == "mean":
            return per_example.mean()
        if reduction == "sum":
            return per_example.sum()
        raise ValueError(f"unknown reduction '{reduction}'; choose 'mean' or 'sum'")

    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> dict[str, torch.Tensor]:
        return {"rmse": ((outputs.detach().float() - labels.float()) ** 2).mean().sqrt()}

    def confidence(self, outputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """A single score has no predictive distribution, so no entropy: always -1, the least certain, so the
        ``entropy`` selectors never prefer a regression task (the statistics selectors treat it like any task)."""
        return torch.full((outputs.shape[0],), -1.0, device=outputs.device)

    def correct(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor], head: nn.Module) -> torch.Tensor:
        """Within half a standard deviation of the training targets of the truth."""
        return (outputs.float() - targets["labels"].float()).abs() <= 0.5 * head.std.to(outputs.device)

    def metrics(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> dict[str, float]:
        """Pearson (the score), Spearman and mean squared error, in the target's units, over the whole split."""
        predicted = outputs.double().numpy()
        truth = targets["labels"].double().numpy()
        return {
            "pearson": pearson(predicted, truth),
            "spearman": pearson(average_ranks(predicted), average_ranks(truth)),
            "mse": float(np.mean((predicted - truth) ** 2)),
        }

    def predictions(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> list[dict[str, Any]]:
        return [{"score": score} for score in outputs.double().tolist()]


def _finite(value: Any) -> float | None:
    """``value`` as a finite float (numbers and numeric text), else None; booleans are not numbers here."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson's correlation; 0.0 when either side is constant (or there are fewer than two values), where it
    is undefined: a model that predicts one score for everything has shown no correlation."""
    if len(x) < 2 or x.min() == x.max() or y.min() == y.max():  # tested exactly: a mean's rounding is not spread
        return 0.0
    dx, dy = x - x.mean(), y - y.mean()
    return float((dx * dy).sum()) / math.sqrt(float((dx * dx).sum()) * float((dy * dy).sum()))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, tied values sharing the mean of their ranks (so Spearman is the Pearson of these)."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    last = np.cumsum(counts)
    return (last - (counts - 1) / 2.0)[inverse]

"""The task-kind seam: everything that differs between kinds of task (classification, regression, tagging, QA…).

The rest of seqadapt (data splits, the module, evaluation, the guard,
selection, predict, report) asks a task's :class:`TaskKind` instead of
knowing what the task is. Adding a kind is one new module with a subclass and
one line in :mod:`seqadapt.kinds`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset
from torch import nn
from transformers import PreTrainedTokenizerBase

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec


class TaskKind(ABC):
    """How one kind of task reads, encodes, learns, scores, fingerprints and prints its examples."""

    name: str
    primary_metric: str

    # ------------------------------------------------------------- definition and data
    @abstractmethod
    def check_spec(self, spec: TaskSpec) -> None:
        """Raise :class:`~seqadapt.data.tasks.TaskDefinitionError` if ``spec`` cannot define a task of this kind."""

    @abstractmethod
    def prepare(self, spec: TaskSpec, rows: Dataset, split: str) -> Dataset:
        """Raw source rows -> this kind's canonical columns, validated; errors name the task, split and key."""

    @abstractmethod
    def check_train(self, spec: TaskSpec, train: Dataset) -> None:
        """Raise :class:`~seqadapt.data.splits.TaskDataError` if ``train`` cannot teach this task; warn
        (``UserWarning``) if it can, but not all of it (e.g. a declared label it never shows)."""

    @abstractmethod
    def texts(self, rows: Dataset) -> list[str]:
        """Each canonical row's input text: what counts as the same example when splits are checked for leakage."""

    @abstractmethod
    def dropped(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        """Raw rows that :meth:`prepare` leaves out on purpose, counted per reason (e.g. ``drop_labels 'plot'``)."""

    @abstractmethod
    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        """Canonical rows per target (per declared label for classification, zeros included): what a split holds."""

    @abstractmethod
    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        """One canonical row as a person reads it (e.g. ``[spam] WINNER!! …``), for ``seqadapt-tasks check``."""

    @abstractmethod
    def encode(self, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        """Canonical rows -> model inputs plus ``labels`` (tokenised with ``Dataset.map(batched=True)``)."""

    @abstractmethod
    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Pads a list of encoded rows into one batch of tensors."""

    @abstractmethod
    def unlabelled(self, inputs: list[str]) -> Dataset:
        """Canonical rows for inputs to predict, with placeholder targets."""

    # ------------------------------------------------------------- model
    @abstractmethod
    def make_head(self, spec: TaskSpec, hidden_size: int, pooling: str, dropout: float) -> nn.Module:
        """The task's head: token states [B, T, d] and attention mask [B, T] -> outputs."""

    @abstractmethod
    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
        """The training loss of ``outputs`` against ``labels``."""

    @abstractmethod
    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """What Lightning logs per step and epoch next to the loss (e.g. ``acc``)."""

    @abstractmethod
    def prototype_classes(self, spec: TaskSpec) -> int:
        """How many prototypes the task stores for task-ID-free selection (one per class for classification)."""

    # ------------------------------------------------------------- evaluation and serving
    @abstractmethod
    def correct(self, outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Per row, whether the output counts as right (what 'accuracy without task IDs' counts)."""

    @abstractmethod
    def metrics(self, outputs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
        """Every metric of a whole split; ``metrics(...)[primary_metric]`` is the task's score."""

    @abstractmethod
    def fingerprint(self, outputs: torch.Tensor) -> str:
        """SHA-256 of the exact outputs: what the guard compares bit for bit."""

    @abstractmethod
    def prediction(self, spec: TaskSpec, text: str, output: torch.Tensor, selected_by: str | None) -> Any:
        """One served prediction (a dataclass, printed by ``seqadapt-predict`` as one JSON line)."""

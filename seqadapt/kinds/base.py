"""The task-kind seam: everything that differs between kinds of task (classification, regression, tagging, QA…).

The rest of seqadapt (data splits, the module, evaluation, the guard,
selection, predict, report) asks a task's :class:`TaskKind` instead of
knowing what the task is. Adding a kind is one new module with a subclass and
one line in :mod:`seqadapt.kinds`.

Three words recur. A task's *canonical rows* are what :meth:`TaskKind.prepare`
makes of its source (one per example). *Features* are what
:meth:`TaskKind.encode` makes of rows for the model: one per row, except that
an extractive-QA context longer than ``max_length`` becomes several
overlapping windows, each naming its row in an ``example`` column. The
*targets* of a batch are every tensor of it that is not a model input:
``labels`` (what the loss reads) plus whatever the kind needs to score or
decode (e.g. ``word_index``, ``offsets``).
"""

from __future__ import annotations

import hashlib
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset
from datasets.fingerprint import generate_random_fingerprint
from torch import nn
from transformers import PreTrainedTokenizerBase

from seqadapt.backbone import tensor_bytes

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec
    from seqadapt.families import Family
    from seqadapt.model import SeqAdaptModule

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
# What a variable-length key of a batch is padded with: nothing a loss, a metric or a decoder reads.
PAD_VALUES = {"labels": -100, "word_index": -1, "offsets": -1}


def mapped(rows: Dataset, function: Callable[..., dict[str, Any]], **kwargs: Any) -> Dataset:
    """``rows.map(function, **kwargs)`` kept in memory and never cached. Otherwise ``datasets`` pickles the
    function, tokenizer included, to name a cache file (0.6 s a call for MiniLM's, and a batch served or
    evaluated maps once per task), though rows read into memory never use one."""
    return rows.map(function, keep_in_memory=True, load_from_cache_file=False,
                    new_fingerprint=generate_random_fingerprint(), **kwargs)


@dataclass(frozen=True)
class HeadContext:
    """What a head is built for: the backbone's width, the run's pooling and dropout, and, for heads that
    generate (text-to-text), the frozen language model, its family and its tokenizer (never registered in the
    head, so a task's tensors never include backbone weights)."""

    hidden_size: int
    pooling: str = "mean"
    dropout: float = 0.1
    model: nn.Module | None = None
    family: Family | None = None
    tokenizer: PreTrainedTokenizerBase | None = None


class RequestError(ValueError):
    """A prediction request that lacks a field the task needs or holds the wrong type; the message names it."""


class TaskKind(ABC):
    """How one kind of task reads, encodes, learns, scores, fingerprints and prints its examples."""

    name: str
    primary_metric: str

    # ------------------------------------------------------------- definition and data
    @abstractmethod
    def check_spec(self, spec: TaskSpec) -> None:
        """Raise :class:`~seqadapt.data.tasks.TaskDefinitionError` if ``spec`` cannot define a task of this kind."""

    @abstractmethod
    def input_fields(self, spec: TaskSpec) -> tuple[str, ...]:
        """The source fields one input consists of: what a ``seqadapt-predict`` request of this task holds."""

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

    def dropped(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        """Raw rows that :meth:`prepare` leaves out on purpose, counted per reason (e.g. ``drop_labels 'plot'``)."""
        return {}

    @abstractmethod
    def counts(self, spec: TaskSpec, rows: Dataset) -> dict[str, int]:
        """What a split holds, counted per target (per declared label for classification, zeros included)."""

    @abstractmethod
    def show(self, spec: TaskSpec, row: dict[str, Any]) -> str:
        """One canonical row as a person reads it (e.g. ``[spam] WINNER!! …``), for ``seqadapt-tasks check``."""

    @abstractmethod
    def encode(self, spec: TaskSpec, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
        """Canonical rows -> features: model inputs plus ``labels`` and any other targets (``Dataset.map``)."""

    @abstractmethod
    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Callable[[list[dict[str, Any]]], dict[str, torch.Tensor]]:
        """Pads a list of features into one batch of tensors."""

    @abstractmethod
    def request(self, spec: TaskSpec, request: dict[str, Any], where: str) -> dict[str, Any]:
        """One prediction request (the task's input fields) -> a canonical row with placeholder targets;
        a missing field or a wrong type is a :class:`RequestError` naming ``where`` (e.g. ``input line 3``)."""

    # ------------------------------------------------------------- model
    @abstractmethod
    def make_head(self, spec: TaskSpec, context: HeadContext, train: Dataset | None) -> nn.Module:
        """The task's head: token states [B, T, d] and attention mask [B, T] -> outputs. ``train`` (the task's
        canonical training rows; ``None`` when an artefact's tensors will be loaded into it) lets a head keep
        statistics of its targets, e.g. regression's mean and standard deviation."""

    shares_passes: bool = True  # rows of several tasks can share one backbone pass (mixed batches, joint training)

    def positions_after_input(self, spec: TaskSpec, architecture: str) -> int:
        """Positions a row takes after its ``max_length`` input tokens on a backbone of ``architecture`` (encoder,
        decoder or encoder_decoder), 0 for none: counted with ``data.max_length`` against the backbone's positions
        (:func:`seqadapt.config_check.check_max_length`)."""
        return 0

    def run(
        self, module: SeqAdaptModule, task: str, input_ids: torch.Tensor, attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The task's outputs for a batch under the current routing: its head over the token states heads read.
        A kind that generates overrides this (and then does not share passes)."""
        return module.heads[task](module.encode(input_ids, attention_mask, token_type_ids), attention_mask)

    def train_outputs(self, module: SeqAdaptModule, task: str, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """What the loss reads for a training or validation batch; the same as :meth:`run` unless the kind trains
        on something else than it answers with (teacher-forced logits vs generated text)."""
        return self.run(module, task, batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))

    @abstractmethod
    def loss(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module, reduction: str = "mean") -> torch.Tensor:
        """The training loss of ``outputs`` against ``labels``, per example (``reduction='sum'`` sums examples)."""

    @abstractmethod
    def step_metrics(self, outputs: torch.Tensor, labels: torch.Tensor, head: nn.Module) -> dict[str, torch.Tensor]:
        """What Lightning logs per step and epoch next to the loss (e.g. ``acc``)."""

    # Its head in the terms other libraries' heads are described in (seqadapt.exchange): one linear layer, named
    # ``head_linear`` in the head, over pooled token states ("pooled"; "pooled_rescaled" also rescales by the training
    # targets' mean and std), over every token ("per_token"), or giving each token a start and an end logit
    # ("spans"); ``None``: no head of its own (the backbone's language-model head answers).
    head_form: str | None = None
    head_linear: str = ""
    calibratable: bool = True  # outputs are logits a temperature can scale (calibrated entropy selection)
    distillable: bool = False  # outputs are one row of class logits per example: what LwF distils

    def prototype_classes(self, spec: TaskSpec) -> int:
        """How many classes the task's selection statistics keep (Gaussians, prototypes): one per task
        unless it has classes."""
        return 1

    def prototype_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """Which prototype each feature of a batch belongs to (all to the one prototype unless overridden)."""
        return torch.zeros(len(labels), dtype=torch.long, device=labels.device)

    @abstractmethod
    def confidence(self, outputs: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """How certain each output of a batch [B, ...] is, in [-1, 0] (minus its normalised entropy; ``attention_mask``
        [B, T] says which tokens are real): what the ``entropy`` selector compares across tasks and kinds."""

    # ------------------------------------------------------------- evaluation and serving
    @abstractmethod
    def correct(self, outputs: torch.Tensor, targets: dict[str, torch.Tensor], head: nn.Module) -> torch.Tensor:
        """Per feature, whether the output counts as right: what 'accuracy without task IDs' counts."""

    @abstractmethod
    def metrics(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> dict[str, float]:
        """Every metric of a whole split (``outputs`` and ``targets`` of its features in order, ``rows`` its
        canonical rows); ``metrics(...)[primary_metric]`` is the task's score."""

    def fingerprint(self, outputs: torch.Tensor) -> str:
        """SHA-256 of the exact outputs: what the guard compares bit for bit."""
        return hashlib.sha256(tensor_bytes(outputs)).hexdigest()

    @abstractmethod
    def predictions(
        self, spec: TaskSpec, outputs: torch.Tensor, targets: dict[str, torch.Tensor], rows: Dataset, head: nn.Module
    ) -> list[dict[str, Any]]:
        """One answer per canonical row (a JSON-ready dict, e.g. ``{"label": ..., "probabilities": ...}``)."""


def warn_unseen(spec: TaskSpec, seen: set[int], what: str, rows: str, train_size: int, fix: str) -> None:
    """Warn (``UserWarning``) about declared labels or tags (``what``) that no training row uses: the task still
    trains, but its head will never predict them. ``fix`` names the definition keys to check."""
    missing = [label for index, label in enumerate(spec.labels) if index not in seen]
    if missing:
        warnings.warn(
            f"task '{spec.name}': declared {what}(s) {missing} never occur in its {train_size} training {rows}, "
            f"so it cannot learn them. Check {fix} in tasks/{spec.name}.yaml, remove the {what}(s) from "
            "'labels', or raise data.train_size.",
            UserWarning, stacklevel=4,
        )


def targets_of(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Every tensor of a batch that is not a model input (nor a joint batch's ``task_index``)."""
    return {key: value for key, value in batch.items() if key not in MODEL_INPUTS and key != "task_index"}


def cat_padded(parts: list[torch.Tensor], value: float) -> torch.Tensor:
    """``parts`` concatenated along rows, each first padded with ``value`` to the largest size in every other
    dimension (batches of token-level outputs differ in length); equal shapes are a plain ``torch.cat``."""
    if not parts:
        raise ValueError("nothing to concatenate: the loader gave no batches")
    shape = [max(part.shape[d] for part in parts) for d in range(1, parts[0].dim())]
    padded = []
    for part in parts:
        if list(part.shape[1:]) != shape:
            pad: list[int] = []
            for d in reversed(range(1, part.dim())):
                pad += [0, shape[d - 1] - part.shape[d]]
            part = nn.functional.pad(part, pad, value=value)
        padded.append(part)
    return torch.cat(padded)

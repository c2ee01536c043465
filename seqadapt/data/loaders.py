"""DataLoaders over tasks' encoded ``datasets.Dataset`` s (their kinds' features), padded per batch."""

from __future__ import annotations

import torch
from datasets import Dataset, concatenate_datasets
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from seqadapt.data.tasks import TaskSpec
from seqadapt.kinds import kind_of

TaskRows = tuple[TaskSpec, Dataset]


def encode(spec: TaskSpec, rows: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
    """``rows`` of ``spec`` tokenised once by its kind (``Dataset.map``), as torch tensors: epochs never
    re-tokenise."""
    return kind_of(spec).encode(spec, rows, tokenizer, max_length).with_format("torch")


def mixed(parts: list[Dataset]) -> Dataset:
    """Encoded datasets of several tasks in one, each row tagged with its task's position in ``parts``."""
    return concatenate_datasets(
        [part.add_column("task_index", [index] * len(part)) for index, part in enumerate(parts)]
    ).with_format("torch")


def make_loader(
    tasks: TaskRows | list[TaskRows],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A loader that pads each batch to its longest feature; a list of (spec, rows) gives mixed-task batches,
    each feature tagged with its task's position in the list (``task_index``).

    Evaluation loaders are never shuffled: with a fixed batch size every
    re-evaluation sees the same batches, which is what makes outputs
    bit-identical across stages. The tasks of one loader share a kind (one
    collator pads them all).
    """
    if isinstance(tasks, tuple):
        spec, rows = tasks
        dataset, kind = encode(spec, rows, tokenizer, max_length), kind_of(spec)
    else:
        kinds = {kind_of(spec).name for spec, _ in tasks}
        if len(kinds) > 1:
            names = [spec.name for spec, _ in tasks]
            raise ValueError(f"tasks {names} are of different kinds {sorted(kinds)}; one batch holds one kind")
        kind = kind_of(tasks[0][0])
        dataset = mixed([kind.encode(spec, rows, tokenizer, max_length) for spec, rows in tasks])
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=kind.collator(tokenizer)
    )

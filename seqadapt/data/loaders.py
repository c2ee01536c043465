"""DataLoaders over a task kind's encoded ``datasets.Dataset`` s, padded per batch."""

from __future__ import annotations

import torch
from datasets import Dataset, concatenate_datasets
from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from seqadapt.kinds import TaskKind


def encode(rows: Dataset, kind: TaskKind, tokenizer: PreTrainedTokenizerBase, max_length: int) -> Dataset:
    """``rows`` tokenised once by ``kind`` (``Dataset.map``), as torch tensors: epochs never re-tokenise."""
    return kind.encode(rows, tokenizer, max_length).with_format("torch")


def mixed(parts: list[Dataset]) -> Dataset:
    """Encoded datasets of several tasks in one, each row tagged with its task's position in ``parts``."""
    return concatenate_datasets(
        [part.add_column("task_index", [index] * len(part)) for index, part in enumerate(parts)]
    ).with_format("torch")


def make_loader(
    rows: Dataset | list[Dataset],
    kind: TaskKind,
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A loader that pads each batch to its longest example; a list of datasets gives mixed-task batches.

    Evaluation loaders are never shuffled: with a fixed batch size every
    re-evaluation sees the same batches, which is what makes outputs
    bit-identical across stages.
    """
    if isinstance(rows, Dataset):
        dataset = encode(rows, kind, tokenizer, max_length)
    else:
        dataset = mixed([kind.encode(part, tokenizer, max_length) for part in rows])
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, collate_fn=kind.collator(tokenizer)
    )

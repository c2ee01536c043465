"""Tokenised datasets and DataLoaders with per-batch padding."""

from __future__ import annotations

import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

from seqadapt.data.splits import Examples


class EncodedExamples(Dataset):
    """Examples tokenised once up front, so epochs and re-evaluations never re-tokenise.

    With ``task_index`` every item also says which task it belongs to, for
    batches that mix tasks (joint training).
    """

    def __init__(
        self, examples: Examples, tokenizer: PreTrainedTokenizerBase, max_length: int, task_index: int | None = None
    ) -> None:
        encoded = tokenizer(examples.texts, truncation=True, max_length=max_length)
        keys = list(encoded.keys())
        extra = {} if task_index is None else {"task_index": task_index}
        self.items = [
            {**{key: encoded[key][i] for key in keys}, "labels": label, **extra}
            for i, label in enumerate(examples.labels)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        return self.items[index]


def make_loader(
    examples: Examples | list[Examples],
    tokenizer: PreTrainedTokenizerBase,
    *,
    max_length: int,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> DataLoader:
    """A loader that pads each batch to its longest example; a list of Examples gives mixed-task batches.

    Evaluation loaders are never shuffled: with a fixed batch size every
    re-evaluation sees the same batches, which is what makes logits
    bit-identical across stages.
    """
    if isinstance(examples, Examples):
        dataset: Dataset = EncodedExamples(examples, tokenizer, max_length)
    else:
        dataset = ConcatDataset([EncodedExamples(part, tokenizer, max_length, i) for i, part in enumerate(examples)])
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        generator=generator,
        collate_fn=DataCollatorWithPadding(tokenizer),
    )

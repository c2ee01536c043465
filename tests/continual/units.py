"""Small modules and one task's splits for the continual methods' unit tests."""

from __future__ import annotations

import random

from datasets import Dataset

from seqadapt.adapters import AdapterConfig, LoraConfig
from seqadapt.data import TaskSpec
from seqadapt.data.splits import TaskSplits
from seqadapt.model import SeqAdaptModule
from seqadapt.strategies import STRATEGIES
from seqadapt.stream import LoaderConfig
from seqadapt.stream.loaders import StreamLoaders
from tests.conftest import tiny_model

WORDS = ["red", "blue", "green", "cat", "dog", "rain", "sun", "wind", "tree", "stone"]


def spec(name: str, labels: int = 2) -> TaskSpec:
    return TaskSpec(name=name, labels=tuple(f"l{i}" for i in range(labels)), source={})


def rows(count: int, labels: int = 2, seed: int = 0) -> Dataset:
    rng = random.Random(seed)
    return Dataset.from_list([{"text": " ".join(rng.choices(WORDS, k=5)), "label": rng.randrange(labels)}
                              for _ in range(count)])


def one_task_module(strategy: str, tasks: tuple[str, ...] = ("a",)) -> SeqAdaptModule:
    adapter = LoraConfig(rank=4) if strategy == "olora" else AdapterConfig(bottleneck=8)
    module = SeqAdaptModule(tiny_model(), adapter, strategy=STRATEGIES[strategy])
    for name in tasks:
        module.add_task(spec(name))
    if tasks:
        module.set_active_task(tasks[-1])
    return module


def splits(name: str, train: int, seed: int = 0) -> TaskSplits:
    return TaskSplits(spec=spec(name), train=rows(train, seed=seed), val=rows(0), test=rows(8, seed=seed + 1))


def toy_splits(strategy: str, tokenizer, train: int, eval_batch_size: int = 16):
    """A one-task module, that task's splits and the loaders a stage would use."""
    module = one_task_module(strategy)
    loaders = StreamLoaders(tokenizer, LoaderConfig(max_length=12, batch_size=8, eval_batch_size=eval_batch_size))
    return module, splits("a", train), loaders

"""The stream's data loaders: each stage's shuffled training data, its validation data, and cached test data."""

from __future__ import annotations

from dataclasses import dataclass

from torch.utils.data import DataLoader
from transformers import PreTrainedTokenizerBase

from seqadapt.data.loaders import make_loader
from seqadapt.data.splits import TaskSplits


@dataclass(frozen=True)
class LoaderConfig:
    """Tokenisation and batching. ``eval_batch_size`` is fixed for the whole stream so outputs stay comparable."""

    max_length: int = 64
    batch_size: int = 32
    eval_batch_size: int = 64


class StreamLoaders:
    """Builds every loader a stream needs from one :class:`LoaderConfig`; test loaders are built once per task."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase, config: LoaderConfig) -> None:
        self.tokenizer = tokenizer
        self.config = config
        self._test: dict[str, DataLoader] = {}

    def _loader(self, tasks: list[TaskSplits], split: str, batch_size: int, **shuffle) -> DataLoader:
        rows = [(t.spec, getattr(t, split)) for t in tasks]
        return make_loader(
            rows[0] if len(rows) == 1 else rows, self.tokenizer,
            max_length=self.config.max_length, batch_size=batch_size, **shuffle,
        )

    def train(self, tasks: list[TaskSplits], seed: int) -> DataLoader:
        """The stage's training data, shuffled by ``seed``; several tasks give mixed-task batches."""
        return self._loader(tasks, "train", self.config.batch_size, shuffle=True, seed=seed)

    def val(self, tasks: list[TaskSplits]) -> DataLoader | None:
        """The stage's validation data, or ``None`` when a task has none."""
        if not all(len(t.val) for t in tasks):
            return None
        return self._loader(tasks, "val", self.config.eval_batch_size)

    def unshuffled_train(self, task: TaskSplits) -> DataLoader:
        """A task's training data in order: what its selection statistics are computed from."""
        return self._loader([task], "train", self.config.eval_batch_size)

    def test(self, task: TaskSplits) -> DataLoader:
        """A task's test data, the same batches every time it is evaluated."""
        if task.spec.name not in self._test:
            self._test[task.spec.name] = self._loader([task], "test", self.config.eval_batch_size)
        return self._test[task.spec.name]

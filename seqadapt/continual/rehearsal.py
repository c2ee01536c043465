"""What rehearsal methods share: a memory of each learned task's rows, filled after its stage, sampled with a
generator seeded by each stage's seed (so a stage's draws depend on its seed alone), and written to the run folder."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import torch

from seqadapt.continual.memory import MEMORY_FILE, RowMemory
from seqadapt.continual.plugin import ContinualPlugin

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

    from seqadapt.data.splits import TaskSplits
    from seqadapt.model import SeqAdaptModule
    from seqadapt.stream.loaders import StreamLoaders


class Rehearsal(ContinualPlugin):
    """A :class:`~seqadapt.continual.memory.RowMemory` of ``rows_per_task`` rows per task and its draws."""

    def __init__(self, rows_per_task: int) -> None:
        self.memory = RowMemory(rows_per_task)
        self.generator = torch.Generator()
        self.tokenizer: PreTrainedTokenizerBase | None = None

    def before_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        self.generator.manual_seed(seed)
        self.tokenizer = loaders.tokenizer

    def memory_loss(self, module: SeqAdaptModule, rows: int) -> torch.Tensor:
        """The summed loss of ``rows`` rows drawn from every earlier task's memory, each through its own head."""
        return self.memory.summed_loss(module, self.memory.sample(rows, self.generator), self.tokenizer)

    def after_stage(self, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders, seed: int) -> None:
        for task in tasks:
            self.memory.add(task, loaders, seed)

    def stored_bytes(self, task: str) -> int:
        return self.memory.task_bytes(task)

    def save(self, directory: Path) -> list[Path]:
        return [self.memory.save(directory)]

    def restore(self, directory: Path, module: SeqAdaptModule, tasks: list[TaskSplits], loaders: StreamLoaders) -> None:
        self.memory.load(Path(directory) / MEMORY_FILE, tasks, loaders)

"""A rehearsal memory: a reservoir of k training rows per learned task (Vitter's algorithm R over the task's
training rows in order, seeded), their summed loss through each task's own head, and its file in a run folder.

Rows are kept as the task's canonical rows (plain text and labels, not tensors), so the file is JSON that is
parsed, never unpickled, and the bytes it takes are what it weighs on disk.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from datasets import Dataset

from seqadapt.artefacts import ArtefactError
from seqadapt.data.loaders import encode
from seqadapt.io import atomic_write
from seqadapt.untrusted_json import check_type, read_json_object

if TYPE_CHECKING:
    from seqadapt.data.splits import TaskSplits
    from seqadapt.model import SeqAdaptModule
    from seqadapt.stream.loaders import StreamLoaders

MEMORY_FILE = "replay_memory.json"
MAX_MEMORY_BYTES = 256 * 2**20  # 50 rows of 50 tasks of long documents stay far below


def reservoir(size: int, k: int, seed: int) -> list[int]:
    """Indices of ``k`` of ``size`` rows seen one after another, each kept with probability k / size (algorithm R)."""
    rng = random.Random(seed)
    kept = list(range(min(k, size)))
    for index in range(k, size):
        slot = rng.randint(0, index)
        if slot < k:
            kept[slot] = index
    return sorted(kept)


class RowMemory:
    """Per task, ``rows_per_task`` rows of its training data, and the same rows encoded for its kind."""

    def __init__(self, rows_per_task: int) -> None:
        if isinstance(rows_per_task, bool) or not isinstance(rows_per_task, int) or rows_per_task < 1:
            raise ValueError(f"strategy.rows_per_task must be a whole number >= 1, got {rows_per_task!r}")
        self.rows_per_task = rows_per_task
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self._encoded: dict[str, Dataset] = {}

    @property
    def tasks(self) -> list[str]:
        return list(self.rows)

    def add(self, task: TaskSplits, loaders: StreamLoaders, seed: int) -> None:
        """Keep a reservoir of ``task``'s training rows, drawn with ``seed``."""
        train = task.train
        kept = train.select(reservoir(len(train), self.rows_per_task, seed))
        self.rows[task.spec.name] = kept.to_list()
        config = loaders.config
        self._encoded[task.spec.name] = encode(task.spec, kept, loaders.tokenizer, config.max_length)

    def sample(self, count: int, generator: torch.Generator) -> dict[str, list[int]]:
        """``count`` rows drawn uniformly, with replacement, from every task's memory: row indices per task."""
        slots = [(task, index) for task, rows in self.rows.items() for index in range(len(rows))]
        picked: dict[str, list[int]] = {}
        for draw in torch.randint(len(slots), (count,), generator=generator).tolist():
            task, index = slots[draw]
            picked.setdefault(task, []).append(index)
        return picked

    def summed_loss(self, module: SeqAdaptModule, picked: dict[str, list[int]], tokenizer: Any) -> torch.Tensor:
        """The loss of the picked rows summed over rows, each task's rows through its own adapter and head."""
        device = next(module.parameters()).device
        total = torch.zeros((), device=device)
        for task, indices in picked.items():
            kind = module.kind(task)
            batch = kind.collator(tokenizer)([self._encoded[task][i] for i in indices])
            batch = {key: value.to(device) for key, value in batch.items()}
            with module.routed_to(task):
                outputs = kind.train_outputs(module, task, batch)
            total = total + kind.loss(outputs, batch["labels"], module.heads[task], reduction="sum")
        return total

    def load(self, path: Path, tasks: list[TaskSplits], loaders: StreamLoaders) -> None:
        """Read the memory :meth:`save` wrote of ``tasks`` (the tasks learned so far), as received data: size
        capped, the tasks and their order these, at most ``rows_per_task`` rows each, every row of its task's
        columns and types."""
        data = read_json_object(path, MAX_MEMORY_BYTES)
        check_type(data, dict[str, Any], str(path))
        if data.get("rows_per_task") != self.rows_per_task:
            raise ArtefactError(f"{path} keeps {data.get('rows_per_task')!r} rows per task; this run keeps "
                                f"{self.rows_per_task}: resume with the run's own strategy.rows_per_task")
        rows = data.get("rows")
        check_type(rows, dict[str, list[dict[str, Any]]], str(path), "rows")
        names = [task.spec.name for task in tasks]
        if list(rows) != names:
            raise ArtefactError(f"{path} holds the memory of tasks {list(rows)}; the run has learned {names}")
        for task in tasks:
            kept = rows[task.spec.name]
            if len(kept) != min(self.rows_per_task, len(task.train)):
                raise ArtefactError(f"{path} holds {len(kept)} rows of '{task.spec.name}', not "
                                    f"{min(self.rows_per_task, len(task.train))}")
            try:
                dataset = Dataset.from_list(kept, features=task.train.features)
            except (ValueError, TypeError, KeyError) as err:
                raise ArtefactError(f"{path}: the rows of '{task.spec.name}' are not rows of its columns "
                                    f"{sorted(task.train.column_names)}: {err}") from None
            self.rows[task.spec.name] = dataset.to_list()
            self._encoded[task.spec.name] = encode(task.spec, dataset, loaders.tokenizer, loaders.config.max_length)

    def task_bytes(self, task: str) -> int:
        """What ``task``'s rows weigh as stored (UTF-8 JSON)."""
        return len(json.dumps(self.rows.get(task, []), ensure_ascii=False).encode())

    def save(self, directory: Path) -> Path:
        """The memory as one JSON file in ``directory`` (atomically)."""
        path = Path(directory) / MEMORY_FILE
        path.parent.mkdir(exist_ok=True)
        atomic_write(path, json.dumps({"rows_per_task": self.rows_per_task, "rows": self.rows}, ensure_ascii=False))
        return path

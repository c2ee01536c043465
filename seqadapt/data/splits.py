"""Deterministic train/val/test splits of a task's raw datasets, in its kind's canonical columns."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset

from seqadapt.data.listing import listed
from seqadapt.data.tasks import TaskSpec
from seqadapt.errors import TaskDataError
from seqadapt.kinds import TaskKind, kind_of


@dataclass(frozen=True)
class SplitSizes:
    """How many examples each split keeps; ``None`` keeps all that are available.

    ``drop_leaked`` removes, after the seeded selection, the train and val rows whose text also occurs in test
    and the train rows whose text also occurs in val, so no score is measured on a text the task trained on;
    train and val may then hold fewer rows than asked. Off, the selection is exactly what it always was.
    """

    train: int | None = 1000
    val: int | None = 200
    test: int | None = 400
    seed: int = 0
    drop_leaked: bool = False


SIZE_KEYS = ("train_size", "val_size", "test_size")  # the ``data`` settings a task's splits are sized by


def task_split_sizes(data: Mapping[str, Any], task: str) -> SplitSizes:
    """``task``'s split sizes under the ``data`` settings: its own entry in ``data.task_sizes`` where it has one,
    else ``data.train_size``, ``val_size`` and ``test_size``. A grown run keeps each earlier task's sizes there
    while new tasks take other ones (see :mod:`seqadapt.overrides`)."""
    own = (data.get("task_sizes") or {}).get(task) or {}
    train, val, test = (own[key] if key in own else data[key] for key in SIZE_KEYS)
    return SplitSizes(
        train=train, val=val, test=test, seed=data["split_seed"],
        drop_leaked=bool(data.get("drop_leaked", False)),  # older run_config.yaml files have no such key
    )


@dataclass(frozen=True)
class TaskSplits:
    """A task and its three splits, each a ``datasets.Dataset`` in the task kind's canonical columns."""

    spec: TaskSpec
    train: Dataset
    val: Dataset
    test: Dataset

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskSplits):
            return NotImplemented
        return self.spec == other.spec and all(
            getattr(self, split).to_dict() == getattr(other, split).to_dict() for split in ("train", "val", "test")
        )


def build_splits(spec: TaskSpec, raw: dict[str, Dataset], sizes: SplitSizes) -> TaskSplits:
    """Seeded, reproducible train/val/test splits.

    A source's own test split is kept as the test pool; otherwise the test
    examples are carved out of the shuffled data first. Validation examples
    always come from the training pool, so test examples are never seen in fit.
    """
    kind = kind_of(spec)
    rng = np.random.default_rng(sizes.seed)
    if "train" not in raw and "all" not in raw:
        raise TaskDataError(
            f"task '{spec.name}': its source gives the split(s) {listed(sorted(raw))}; name the files 'train' "
            "(plus an optional 'test') or 'all' in the task definition"
        )
    if "test" in raw and "train" in raw:
        pool = kind.prepare(spec, raw["train"], "train")
        test_pool = kind.prepare(spec, raw["test"], "test")
        test = test_pool.select(rng.permutation(len(test_pool))[: sizes.test])
        rest = pool.select(rng.permutation(len(pool)))
    else:
        whole = "all" if "all" in raw else "train"  # a lone train file is split like 'all'
        everything = kind.prepare(spec, raw[whole], whole)
        order = rng.permutation(len(everything))
        n_test = len(order) if sizes.test is None else min(sizes.test, len(order) // 2)
        test = everything.select(order[:n_test])
        rest = everything.select(order[n_test:])
    n_val = 0 if sizes.val is None else min(sizes.val, len(rest) // 5)
    val = rest.select(range(n_val))
    train = rest.select(np.arange(n_val, len(rest))[: sizes.train])
    if sizes.drop_leaked:
        in_test = set(kind.texts(test))
        val = without_texts(kind, val, in_test)
        train = without_texts(kind, train, in_test | set(kind.texts(val)))

    if len(train) == 0:
        raise TaskDataError(f"task '{spec.name}' has no training examples; check its source files and drop_labels")
    if len(test) == 0:
        raise TaskDataError(f"task '{spec.name}' has no test examples; check its source files and split sizes")
    kind.check_train(spec, train)
    return TaskSplits(spec=spec, train=train, val=val, test=test)


def without_texts(kind: TaskKind, rows: Dataset, texts: set[str]) -> Dataset:
    """``rows`` less those whose text (as the task's kind reads it) is in ``texts``, order kept."""
    return rows.select([i for i, text in enumerate(kind.texts(rows)) if text not in texts])

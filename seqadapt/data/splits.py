"""Label checking and deterministic train/val/test splits of a task's raw tables."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqadapt.data.tasks import TaskSpec


class TaskDataError(ValueError):
    """A task's examples cannot be used as declared; the message says what to change."""


@dataclass(frozen=True)
class SplitSizes:
    """How many examples each split keeps; ``None`` keeps all that are available."""

    train: int | None = 1000
    val: int | None = 200
    test: int | None = 400
    seed: int = 0


@dataclass(frozen=True)
class Examples:
    texts: list[str]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.texts)


@dataclass(frozen=True)
class TaskSplits:
    spec: TaskSpec
    train: Examples
    val: Examples
    test: Examples


def _to_examples(spec: TaskSpec, frame: pd.DataFrame, split: str) -> Examples:
    for column, key in ((spec.text_field, "text_field"), (spec.label_field, "label_field")):
        if column not in frame.columns:
            raise TaskDataError(
                f"task '{spec.name}' ({split} split): column '{column}' is not in the data "
                f"(columns: {list(frame.columns)}); fix {key} in tasks/{spec.name}.yaml"
            )
    raw = frame[spec.label_field].astype(str)
    keep = ~raw.isin(spec.drop_labels)
    names = raw[keep].map(lambda value: spec.label_map.get(value, value))
    index = {label: i for i, label in enumerate(spec.labels)}
    unknown = Counter(name for name in names if name not in index)
    if unknown:
        raise TaskDataError(
            f"task '{spec.name}' ({split} split): {sum(unknown.values())} rows have labels outside the declared "
            f"set {list(spec.labels)}: {dict(unknown.most_common(5))}. Add them to 'labels', map them with "
            f"'label_map', or list them in 'drop_labels' in tasks/{spec.name}.yaml"
        )
    texts = frame.loc[keep, spec.text_field].astype(str).tolist()
    return Examples(texts=texts, labels=[index[name] for name in names])


def _take(examples: Examples, order: np.ndarray) -> Examples:
    return Examples(texts=[examples.texts[i] for i in order], labels=[examples.labels[i] for i in order])


def build_splits(spec: TaskSpec, frames: dict[str, pd.DataFrame], sizes: SplitSizes) -> TaskSplits:
    """Seeded, reproducible train/val/test splits.

    A source's own test split is kept as the test pool; otherwise the test
    examples are carved out of the shuffled data first. Validation examples
    always come from the training pool, so test examples are never seen in fit.
    """
    rng = np.random.default_rng(sizes.seed)
    if "train" not in frames and "all" not in frames:
        raise TaskDataError(
            f"task '{spec.name}': its source gives the split(s) {sorted(frames)}; name the files 'train' "
            "(plus an optional 'test') or 'all' in the task definition"
        )
    if "test" in frames and "train" in frames:
        pool = _to_examples(spec, frames["train"], "train")
        test_pool = _to_examples(spec, frames["test"], "test")
        test = _take(test_pool, rng.permutation(len(test_pool))[: sizes.test])
        rest = _take(pool, rng.permutation(len(pool)))
    else:
        whole = "all" if "all" in frames else "train"  # a lone train file is split like 'all'
        everything = _to_examples(spec, frames[whole], whole)
        order = rng.permutation(len(everything))
        n_test = len(order) if sizes.test is None else min(sizes.test, len(order) // 2)
        test = _take(everything, order[:n_test])
        rest = _take(everything, order[n_test:])
    n_val = 0 if sizes.val is None else min(sizes.val, len(rest) // 5)
    val = _take(rest, np.arange(n_val))
    train = _take(rest, np.arange(n_val, len(rest))[: sizes.train])

    if len(train) == 0:
        raise TaskDataError(f"task '{spec.name}' has no training examples; check its source files and drop_labels")
    if len(test) == 0:
        raise TaskDataError(f"task '{spec.name}' has no test examples; check its source files and split sizes")
    classes = set(train.labels)
    if len(classes) < 2:
        only = spec.labels[next(iter(classes))]
        raise TaskDataError(
            f"task '{spec.name}': all {len(train)} training examples have the label '{only}'; a classifier "
            "needs at least two classes. Check the source, label_map, or raise data.train_size."
        )
    return TaskSplits(spec=spec, train=train, val=val, test=test)

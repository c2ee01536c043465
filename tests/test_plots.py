"""The run's pictures use their width: the score matrix fills its figure, whatever its task names' lengths."""

from __future__ import annotations

from types import SimpleNamespace

import matplotlib.image
import numpy as np

from seqadapt.plots import score_heatmap

TASKS = ["trec", "epistemic_reasoning", "vader_tweets", "wnut16", "disfl_qa"]


def blank_column_share(path) -> float:
    """The share of the picture's pixel columns that hold nothing but white."""
    pixels = matplotlib.image.imread(str(path))[..., :3]
    return float(np.mean(np.all(pixels > 0.98, axis=(0, 2))))


def record(tasks: list[str]) -> SimpleNamespace:
    """What the heatmap reads of a run's record: a lower-triangular score matrix over ``tasks``."""
    matrix = [[0.9 if j <= i else None for j in range(len(tasks))] for i in range(len(tasks))]
    stages = [SimpleNamespace(stage=i + 1, task=task) for i, task in enumerate(tasks)]
    return SimpleNamespace(tasks=tasks, score_matrix=matrix, stages=stages, strategy="adapter", metrics={"acc": 0.9},
                           labelled=lambda: [f"{task} (accuracy)" for task in tasks])


def test_the_score_matrix_leaves_no_wide_empty_margin(tmp_path):
    for tasks in (TASKS, TASKS[:2], [f"task_{i}" for i in range(20)]):
        path = score_heatmap(record(tasks), tmp_path / f"{len(tasks)}.png")
        assert blank_column_share(path) < 0.15, tasks  # the docs' 5-task picture had about a third blank

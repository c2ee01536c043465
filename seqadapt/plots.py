"""Pictures of a run: the score matrix as an annotated heatmap, each task's score across stages, and
task-ID-free inference across stages."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; no display on the machines this runs on
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from seqadapt.io import atomic_write  # noqa: E402
from seqadapt.record import RunRecord  # noqa: E402

LABELLED_TASKS = 12  # beyond: a long stream's plots drop cell values and legends and shrink, so they stay legible
# and redrawing them after each stage does not grow with the square of the number of tasks
PLOT_FILES = {
    "score_matrix": "score_matrix.png",
    "score_curves": "score_curves.png",
    "task_selection": "task_selection.png",
}


def save_figure(fig: plt.Figure, path: Path) -> Path:
    """``fig`` as a PNG at ``path``, written atomically (a crash never leaves half a picture), then closed."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write(Path(path), buffer.getvalue())
    return Path(path)


def _matrix(results: RunRecord) -> np.ndarray:
    return np.array([[np.nan if v is None else v for v in row] for row in results.score_matrix], dtype=float)


def _stage_labels(results: RunRecord) -> list[str]:
    return [f"{s.stage}. {s.task}" for s in results.stages]


def score_heatmap(results: RunRecord, path: Path) -> Path:
    """``R[i][j]`` with values written in the cells; rows are stages, columns tasks."""
    matrix = _matrix(results)
    tasks = results.tasks
    long = len(tasks) > LABELLED_TASKS
    cell = (0.22, 0.22) if long else (1.3, 0.7)
    fig, ax = plt.subplots(figsize=(1.6 + 2 * long + cell[0] * len(tasks), 1.2 + 2 * long + cell[1] * len(matrix)))
    image = ax.imshow(matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto")  # cells as sized, not square
    for (i, j), value in np.ndenumerate(matrix):
        if not long and not np.isnan(value):
            ax.text(j, i, f"{value:.3f}", ha="center", va="center", color="white" if value < 0.6 else "black")
    ax.set_xticks(range(len(tasks)), results.labelled(), rotation=30 + 60 * long, ha="right", fontsize=6 if long else None)
    ax.set_yticks(range(len(matrix)), _stage_labels(results), fontsize=6 if long else None)
    ax.set_xlabel("evaluated task")
    ax.set_ylabel("after training stage")
    ax.set_title(f"Score matrix {results.strategy}  ACC={results.metrics.get('acc', float('nan')):.3f}")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def _save_stage_lines(fig: plt.Figure, ax: plt.Axes, ylabel: str, title: str, path: Path) -> Path:
    """The shared look of accuracy-across-stages line plots, written to ``path``."""
    ax.set_ylim(min(0.0, float(ax.dataLim.ymin)), 1.02)  # a Pearson correlation may be negative
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if len(ax.get_lines()) <= 2 * LABELLED_TASKS:  # a legend of a long stream's every task would hide the plot
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def score_curves(results: RunRecord, path: Path) -> Path:
    """One line per task from the stage it was learned on: flat lines mean nothing was forgotten."""
    matrix = _matrix(results)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    stages = np.arange(1, len(matrix) + 1)
    for j, task in enumerate(results.labelled()):
        column = matrix[:, j]
        seen = ~np.isnan(column)
        ax.plot(stages[seen], column[seen], marker="o" if len(matrix) <= LABELLED_TASKS else None, label=task)
    if len(matrix) <= LABELLED_TASKS:
        ax.set_xticks(stages, _stage_labels(results), rotation=20, ha="right")
    else:
        ax.set_xlabel("stage")
    return _save_stage_lines(fig, ax, "test score (each task's metric)", "Score of each task across stages", path)


def task_selection_curves(results: RunRecord, path: Path) -> Path:
    """Per selector, task-ID accuracy (solid) and accuracy without task IDs (dashed) against the accuracy with them."""
    stages = [s for s in results.stages if s.task_selection]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    x = np.array([s.stage for s in stages])
    ax.plot(x, [s.task_selection["with_task_id"]["accuracy"] for s in stages], color="black", marker="o",
            label="accuracy with task IDs")
    for color, selector in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"], results.selectors):
        records = [s.task_selection["selectors"][selector] for s in stages]
        ax.plot(x, [r["task_id_accuracy"] for r in records], color=color, marker="o", label=f"{selector}: task ID")
        ax.plot(x, [r["accuracy"] for r in records], color=color, marker="s", linestyle="--",
                label=f"{selector}: accuracy without task IDs")
    if len(stages) <= LABELLED_TASKS:
        ax.set_xticks(x, [f"{s.stage}. {s.task}" for s in stages], rotation=20, ha="right")
    else:
        ax.set_xlabel("stage")
    return _save_stage_lines(fig, ax, "mean over tasks seen so far", "Inference without task IDs", path)


def write_run_plots(results: RunRecord, output_dir: Path) -> dict[str, Path]:
    """Every plot the run's record supports, written into ``output_dir``; returns their paths by name."""
    output_dir = Path(output_dir)
    plots = {
        "score_matrix": score_heatmap(results, output_dir / PLOT_FILES["score_matrix"]),
        "score_curves": score_curves(results, output_dir / PLOT_FILES["score_curves"]),
    }
    if any(stage.task_selection for stage in results.stages):
        plots["task_selection"] = task_selection_curves(results, output_dir / PLOT_FILES["task_selection"])
    return plots


def existing_plots(output_dir: Path) -> dict[str, Path]:
    """The run's plots that exist in ``output_dir``, by name."""
    paths = {name: Path(output_dir) / file for name, file in PLOT_FILES.items()}
    return {name: path for name, path in paths.items() if path.is_file()}

"""The methods table: one row per strategy over every task order and seed of a sweep (``experiment=cl_methods``).

Each row gives the continual-learning metrics (ACC, BWT, forgetting, FWT where the runs had single-task
references, learning accuracy) and the costs a method is chosen by — parameters trained, bytes stored per task
(its own parameters plus what the method keeps for it: a replay memory, a Fisher) and training seconds per
run — as mean ± standard deviation over runs. ``seqadapt-report`` writes it beside the per-order table.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from seqadapt.io import atomic_write_csv
from seqadapt.plots import save_figure
from seqadapt.record import RunRecord

Stat = tuple[float, float] | None


def _per_task(run: RunRecord, read: Callable[[dict[str, Any]], float]) -> float:
    return statistics.fmean(read(budget) for budget in run.params_per_task.values())


COLUMNS: dict[str, tuple[str, Callable[[RunRecord], float | None]]] = {
    "acc": ("ACC", lambda run: run.metrics.get("acc")),
    "bwt": ("BWT", lambda run: run.metrics.get("bwt")),
    "forgetting": ("forgetting", lambda run: run.metrics.get("forgetting")),
    "fwt": ("FWT", lambda run: run.metrics.get("fwt")),
    "learning_accuracy": ("LA", lambda run: run.metrics.get("learning_accuracy")),
    "trained_params": ("params trained / task", lambda run: _per_task(
        run, lambda b: b.get("trainable_params", b["total_params"])) if run.params_per_task else None),
    "stored_bytes": ("bytes stored / task", lambda run: _per_task(
        run, lambda b: b["bytes"] + b.get("method_bytes", 0)) if run.params_per_task else None),
    "train_seconds": ("train s / run", lambda run: sum(stage.train_seconds for stage in run.stages) or None),
}


def mean_std(values: list[float]) -> Stat:
    """Mean and sample standard deviation (0 for one value); ``None`` for none."""
    if not values:
        return None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_cell(value: Stat) -> str:
    """A score's mean ± std as the reports print it (— for none)."""
    return "—" if value is None else f"{value[0]:+.4f} ± {value[1]:.4f}".lstrip("+")


def method_rows(runs: list[RunRecord], order: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """One row per strategy (``order`` first, then the rest by name): each column's mean and std over its runs."""
    groups: dict[str, list[RunRecord]] = {}
    for run in runs:
        groups.setdefault(run.strategy, []).append(run)
    ranked = sorted(groups, key=lambda s: (order.index(s) if s in order else len(order), s))
    rows = []
    for strategy in ranked:
        members = groups[strategy]
        row: dict[str, Any] = {"strategy": strategy, "runs": len(members),
                               "orders": len({tuple(r.tasks) for r in members}), "seeds": len({r.seed for r in members})}
        for key, (_, read) in COLUMNS.items():
            row[key] = mean_std([value for value in map(read, members) if value is not None])
        rows.append(row)
    return rows


def _cell(key: str, value: Stat) -> str:
    if value is not None and key in ("trained_params", "stored_bytes", "train_seconds"):
        return f"{value[0]:,.0f} ± {value[1]:,.0f}"
    return mean_std_cell(value)


def to_markdown(rows: list[dict[str, Any]]) -> str:
    header = ["strategy", "runs (orders × seeds)", *[label for label, _ in COLUMNS.values()]]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [_cell(key, row[key]) for key in COLUMNS]
        lines.append(f"| {row['strategy']} | {row['runs']} ({row['orders']} × {row['seeds']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    lines = [["strategy", "runs", *[f"{key}_{s}" for key in COLUMNS for s in ("mean", "std")]]]
    for row in rows:
        values = ["" if row[key] is None else f"{row[key][i]:.6f}" for key in COLUMNS for i in (0, 1)]
        lines.append([row["strategy"], row["runs"], *values])
    atomic_write_csv(path, lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """ACC against bytes stored per task (log scale), and forgetting per strategy: error bars are std over runs."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for row in rows:
        if row["acc"] is None or row["stored_bytes"] is None:
            continue
        left.errorbar(row["stored_bytes"][0], row["acc"][0], yerr=row["acc"][1], fmt="o", capsize=3)
        left.annotate(row["strategy"], (row["stored_bytes"][0], row["acc"][0]), textcoords="offset points",
                      xytext=(5, 4), fontsize=8)
    left.set(xscale="log", xlabel="bytes stored per task (own parameters + method memory)", ylabel="ACC",
             title="Accuracy after the last task vs storage")
    left.grid(alpha=0.3)
    shown = [row for row in rows if row["forgetting"] is not None]
    right.bar([row["strategy"] for row in shown], [row["forgetting"][0] for row in shown],
              yerr=[row["forgetting"][1] for row in shown], capsize=3)
    right.set(title="Forgetting (mean drop from best score)", ylabel="forgetting")
    right.tick_params(axis="x", rotation=30)
    right.grid(axis="y", alpha=0.3)
    fig.suptitle("Continual-learning methods (mean ± std over task orders and seeds)")
    fig.tight_layout()
    save_figure(fig, path)

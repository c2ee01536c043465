"""The parameter/performance trade-off (Houlsby et al. 2019, Fig. 3): each task's test score against the parameters
training it updates, per method, from single-task runs that all start from the same frozen backbone.

``seqadapt experiment=tradeoff`` runs the grid (one run per task x grid point x seed) and writes this report
when the sweep ends; ``seqadapt-report DIR`` writes it again from any sweep of single-task runs.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from seqadapt.io import atomic_write, atomic_write_csv  # noqa: E402
from seqadapt.plots import save_figure  # noqa: E402
from seqadapt.record import RunRecord  # noqa: E402

FULL = "full FT"
METHOD_ORDER = ("houlsby adapter", "pfeiffer adapter", "LoRA", "parallel adapter", "(IA)³", "top-k FT",
                "LayerNorm only", FULL)
REACH = 0.99  # the share of full fine-tuning's score the summary asks each method to reach


@dataclass(frozen=True)
class Point:
    """One grid point on one task: its mean ± std score over seeds at ``params`` trainable parameters."""

    task: str
    metric: str
    method: str
    size: str
    params: int
    scores: tuple[float, ...]
    seeds: tuple[int, ...]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores)

    @property
    def std(self) -> float:
        return statistics.stdev(self.scores) if len(self.scores) > 1 else 0.0


def point_name(config: dict[str, Any]) -> tuple[str, str]:
    """A run's method and its size as the plot names them, from its config (``results.json``'s ``config``)."""
    strategy = config.get("strategy", {})
    name = strategy.get("name", "adapter")
    if name == "finetune_top_k":
        return "top-k FT", f"k={strategy.get('top_k', 1)}"
    if name != "adapter":
        return {"finetune": FULL, "layernorm": "LayerNorm only"}.get(name, name), ""
    adapter = config.get("adapter", {})
    method = adapter.get("method", "bottleneck")
    if method == "lora":
        return "LoRA", f"r={adapter['rank']}"
    if method == "parallel":
        return "parallel adapter", f"m={adapter['bottleneck']}"
    if method == "ia3":
        return "(IA)³", ""
    size = adapter["bottleneck"] if adapter.get("bottleneck") is not None else f"d/{adapter['reduction_factor']}"
    return f"{adapter.get('placement', 'houlsby')} adapter", f"m={size}"


def is_tradeoff(runs: list[RunRecord]) -> bool:
    """Every run trained a single task: a trade-off sweep (ACC and BWT say nothing there)."""
    return bool(runs) and all(len(run.tasks) == 1 for run in runs)


def _rate(run: RunRecord) -> float | None:
    return run.config.get("optim", {}).get("learning_rate")


def points(runs: list[RunRecord]) -> list[Point]:
    """One point per (task, method, size), seeds pooled; sorted by task, method, then parameters. Where a sweep
    ran one method at several learning rates, the rate joins the size (``m=64 lr=0.0003``): never pooled."""
    named = [(run, *point_name(run.config)) for run in runs]
    rates: dict[str, set[float | None]] = {}
    for run, method, _ in named:
        rates.setdefault(method, set()).add(_rate(run))
    groups: dict[tuple[str, str, str], list[RunRecord]] = {}
    for run, method, size in named:
        if len(rates[method]) > 1:
            size = f"{size} lr={_rate(run):g}".strip()
        groups.setdefault((run.tasks[0], method, size), []).append(run)
    result = []
    for (task, method, size), members in groups.items():
        budget = members[0].params_per_task[task]
        evaluation = members[0].stages[0].evaluations[0]
        result.append(Point(task, evaluation.metric, method, size, budget.get("trainable_params", budget["total_params"]),
                            tuple(run.score_matrix[-1][0] for run in members), tuple(sorted(run.seed for run in members))))

    def rank(point: Point) -> tuple[str, int, int]:
        order = METHOD_ORDER.index(point.method) if point.method in METHOD_ORDER else len(METHOD_ORDER)
        return point.task, order, point.params

    return sorted(result, key=rank)


def reach(points_: list[Point], share: float = REACH) -> dict[str, dict[str, Point | None]]:
    """Per task and method, the smallest point whose mean reaches ``share`` of full fine-tuning's mean (None:
    no point does); empty for a task without a full fine-tuning run."""
    result: dict[str, dict[str, Point | None]] = {}
    for task in dict.fromkeys(p.task for p in points_):
        full = [p for p in points_ if p.task == task and p.method == FULL]
        if not full:
            continue
        target = share * full[0].mean
        mine = [p for p in points_ if p.task == task]
        result[task] = {method: next((p for p in mine if p.method == method and p.mean >= target), None)
                        for method in dict.fromkeys(p.method for p in mine)}
    return result


def _short(params: int) -> str:
    if params >= 1e6:
        return f"{params / 1e6:.2f}M"
    return f"{params / 1e3:.1f}K" if params >= 1e3 else str(params)


def to_markdown(points_: list[Point]) -> str:
    """A table of every point (rows: method and size; columns: tasks), then where each method reaches 99%."""
    tasks = list(dict.fromkeys(p.task for p in points_))
    rows = list(dict.fromkeys((p.method, p.size) for p in points_))
    cells = {(p.task, p.method, p.size): p for p in points_}
    header = [f"{task} ({next(p.metric for p in points_ if p.task == task)})" for task in tasks]
    lines = ["| method | size | " + " | ".join(f"{h} | params" for h in header) + " |",
             "|---|---|" + "---|---|" * len(tasks)]
    for method, size in rows:
        values = []
        for task in tasks:
            point = cells.get((task, method, size))
            values += ["—", "—"] if point is None else [f"{point.mean:.4f} ± {point.std:.4f}", _short(point.params)]
        lines.append(f"| {method} | {size} | " + " | ".join(values) + " |")
    reached = reach(points_)
    if reached:
        methods = list(dict.fromkeys(p.method for p in points_ if p.method != FULL))
        lines += ["", f"Smallest budget reaching {REACH:.0%} of full fine-tuning's mean score (— : none of the "
                  "sizes run):", "", "| method | " + " | ".join(reached) + " |", "|---|" + "---|" * len(reached)]
        for method in methods:
            found = [reached[task].get(method) for task in reached]
            lines.append(f"| {method} | " + " | ".join("—" if p is None else f"{p.size or 'yes'} ({_short(p.params)})"
                                                          for p in found) + " |")
    return "\n".join(lines) + "\n"


def write_csv(points_: list[Point], path: Path) -> None:
    header = ["task", "metric", "method", "size", "trainable_params", "mean", "std", "seeds", "scores"]
    rows = [[p.task, p.metric, p.method, p.size, p.params, f"{p.mean:.6f}", f"{p.std:.6f}", " ".join(map(str, p.seeds)),
             " ".join(f"{s:.6f}" for s in p.scores)] for p in points_]
    atomic_write_csv(path, [header, *rows])


def plot(points_: list[Point], path: Path) -> None:
    """One panel per task: score (mean ± std over seeds) against trainable parameters on a log axis, a line per
    method; full fine-tuning as a dashed line, 99% of it dotted."""
    tasks = list(dict.fromkeys(p.task for p in points_))
    columns = min(len(tasks), 2)
    rows = -(-len(tasks) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(6.5 * columns, 4.2 * rows), squeeze=False)
    for ax, task in zip(axes.flat, tasks):
        mine = [p for p in points_ if p.task == task]
        for method in dict.fromkeys(p.method for p in mine):
            line = [p for p in mine if p.method == method]
            ax.errorbar([p.params for p in line], [p.mean for p in line], yerr=[p.std for p in line],
                        marker="o", markersize=4, capsize=3, label=method)
            if method == FULL:
                ax.axhline(line[0].mean, color="black", linestyle="--", linewidth=0.8)
                ax.axhline(REACH * line[0].mean, color="black", linestyle=":", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_title(task)
        ax.set_xlabel("trainable parameters per task")
        ax.set_ylabel(mine[0].metric)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(tasks):]:
        ax.set_visible(False)
    axes.flat[0].legend(fontsize=7)
    fig.suptitle("Score vs trainable parameters (mean ± std over seeds; dashed: full FT, dotted: 99% of it)")
    fig.tight_layout()
    save_figure(fig, path)


def write(runs: list[RunRecord], out: Path, root: Path) -> dict[str, Path]:
    """``tradeoff.md``, ``tradeoff.csv`` and ``tradeoff.png`` for ``runs`` in ``out``, each written atomically."""
    points_ = points(runs)
    paths = {"markdown": out / "tradeoff.md", "csv": out / "tradeoff.csv", "plot": out / "tradeoff.png"}
    atomic_write(paths["markdown"], f"{to_markdown(points_)}\n{len(runs)} single-task runs under `{root}`.\n")
    write_csv(points_, paths["csv"])
    plot(points_, paths["plot"])
    return paths

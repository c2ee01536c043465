"""``seqadapt-report DIR``: one table over every run under a (multirun) directory, or one run's summary and history.

Runs are grouped by strategy and task order; ACC, BWT and forgetting are given
as mean ± standard deviation over seeds. Writes ``report.md``, ``report.csv``
and ``report.png`` next to the runs (or to ``--out``), each atomically; with more than one strategy, also
``methods.md``, ``methods.csv`` and ``methods.png``: one row per strategy over every order and seed, with costs
(:mod:`seqadapt.methods_table`). A sweep of single-task
runs (``experiment=tradeoff``) gets the parameter/performance trade-off instead:
``tradeoff.md``, ``tradeoff.csv`` and ``tradeoff.png`` (:mod:`seqadapt.tradeoff`).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from hydra.experimental.callback import Callback  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from seqadapt import methods_table, tradeoff  # noqa: E402
from seqadapt.cli import described
from seqadapt.io import atomic_write, atomic_write_csv  # noqa: E402
from seqadapt.plots import save_figure  # noqa: E402
from seqadapt.record import RESULTS_FILE, RunRecord  # noqa: E402
from seqadapt.summary import format_summary  # noqa: E402
from seqadapt.task_history import history_lines, version_lines  # noqa: E402

METRICS = ("acc", "bwt", "forgetting")
STRATEGY_ORDER = ("adapter", "shared_adapter", "finetune", "joint", "ewc", "lwf", "replay", "agem", "olora")


def collect(root: Path) -> list[RunRecord]:
    """Every finished run's record under ``root``; unfinished runs are skipped."""
    records = (RunRecord.load(path) for path in sorted(Path(root).rglob(RESULTS_FILE)))
    return [record for record in records if record.finished]


def aggregate(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per (strategy, order) with mean and std of each metric over seeds."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for run in runs:
        groups.setdefault((run.strategy, " > ".join(run.tasks)), []).append(run)

    def rank(key: tuple[str, str]) -> tuple[int, str]:
        strategy, order = key
        return (STRATEGY_ORDER.index(strategy) if strategy in STRATEGY_ORDER else len(STRATEGY_ORDER), order)

    rows = []
    for strategy, order in sorted(groups, key=rank):
        members = groups[(strategy, order)]
        row: dict[str, Any] = {"strategy": strategy, "order": order, "seeds": sorted(r.seed for r in members)}
        for metric in METRICS:
            values = [r.metrics[metric] for r in members if r.metrics.get(metric) is not None]
            row[metric] = methods_table.mean_std(values)
        rows.append(row)
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| strategy | task order | seeds | ACC | BWT | forgetting |", "|---|---|---|---|---|---|"]
    for row in rows:
        cells = [methods_table.mean_std_cell(row[m]) for m in METRICS]
        lines.append(f"| {row['strategy']} | {row['order']} | {len(row['seeds'])} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_csv(rows: list[dict[str, Any]], path: Path) -> None:
    lines = [["strategy", "order", "seeds", *[f"{m}_{s}" for m in METRICS for s in ("mean", "std")]]]
    for row in rows:
        values = [("" if row[m] is None else f"{row[m][i]:.6f}") for m in METRICS for i in (0, 1)]
        lines.append([row["strategy"], row["order"], " ".join(map(str, row["seeds"])), *values])
    atomic_write_csv(path, lines)


def plot(rows: list[dict[str, Any]], path: Path) -> None:
    """Bars of ACC and BWT per strategy, one bar per task order, error bars = std over seeds."""
    orders = sorted({row["order"] for row in rows})
    strategies = list(dict.fromkeys(row["strategy"] for row in rows))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.8 / max(1, len(orders))
    for ax, metric in zip(axes, ("acc", "bwt")):
        for k, order in enumerate(orders):
            xs, heights, errors = [], [], []
            for i, strategy in enumerate(strategies):
                match = [r for r in rows if r["strategy"] == strategy and r["order"] == order and r[metric]]
                if match:
                    xs.append(i + (k - (len(orders) - 1) / 2) * width)
                    heights.append(match[0][metric][0])
                    errors.append(match[0][metric][1])
            ax.bar(xs, heights, width, yerr=errors, capsize=3, label=f"order {k + 1}")
        ax.set_xticks(range(len(strategies)), strategies)
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_title(metric.upper())
        ax.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("Strategies compared (mean ± std over seeds)")
    fig.tight_layout()
    save_figure(fig, path)


def write_report(root: Path, out: Path | None = None) -> dict[str, Path]:
    """The strategies table of ``root``'s runs; for a sweep of single-task runs, the trade-off report instead
    (:mod:`seqadapt.tradeoff`)."""
    runs = collect(root)
    if not runs:
        raise FileNotFoundError(f"no finished run (results.json with every stage done) under {root}")
    out = Path(out or root)
    out.mkdir(parents=True, exist_ok=True)
    if tradeoff.is_tradeoff(runs):
        return tradeoff.write(runs, out, root)
    rows = aggregate(runs)
    paths = {"markdown": out / "report.md", "csv": out / "report.csv", "plot": out / "report.png"}
    orders = sorted({row["order"] for row in rows})
    legend = "\n".join(f"- order {k + 1}: {order}" for k, order in enumerate(orders))
    atomic_write(paths["markdown"], f"{to_markdown(rows)}\n{len(runs)} runs under `{root}`.\n\n{legend}\n")
    write_csv(rows, paths["csv"])
    plot(rows, paths["plot"])
    if len({run.strategy for run in runs}) > 1:  # strategies compared: the methods table over orders and seeds
        methods = methods_table.method_rows(runs, STRATEGY_ORDER)
        paths |= {"methods_markdown": out / "methods.md", "methods_csv": out / "methods.csv",
                  "methods_plot": out / "methods.png"}
        atomic_write(paths["methods_markdown"], f"{methods_table.to_markdown(methods)}\n{len(runs)} runs under `{root}`.\n")
        methods_table.write_csv(methods, paths["methods_csv"])
        methods_table.plot(methods, paths["methods_plot"])
    return paths


class ReportAtSweepEnd(Callback):
    """A Hydra callback (``hydra.callbacks``) that writes the report of a multirun when its last job ends, so one
    command (``seqadapt experiment=tradeoff``) leaves the table, CSV and plot beside its runs."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        paths = write_report(Path(config.hydra.sweep.dir))
        print("\n".join(f"wrote {path}" for path in paths.values()))


def parser() -> argparse.ArgumentParser:
    """The command line of ``seqadapt-report`` (also what the documentation's CLI reference prints)."""
    command = argparse.ArgumentParser(prog="seqadapt-report", description=described(__doc__))
    command.add_argument("root", type=Path, help="a multirun directory (searched recursively for finished runs), "
                                                 "or one run's directory (prints its summary)")
    command.add_argument("--out", type=Path, default=None, help="where to write the report (default: root)")
    return command


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if (args.root / RESULTS_FILE).is_file():  # one run: its summary, as the run printed it at the end, and history
        record = RunRecord.load(args.root / RESULTS_FILE)
        print("\n".join([format_summary(record, args.root), "", *history_lines(record), *version_lines(args.root, record)]))
        return
    paths = write_report(args.root, args.out)
    print(paths["markdown"].read_text())
    print("\n".join(f"wrote {path}" for path in paths.values()))


if __name__ == "__main__":
    main()

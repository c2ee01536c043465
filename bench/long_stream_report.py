"""bench.long_stream's report: the targets with what was measured, cost against T as a table and a plot, and
where task-ID-free selection breaks down at the last stage (its confusions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

SHOWN_STAGES = (1, 2, 5, 10, 20, 30, 40, 50)
PARTS = ("train_seconds", "eval_seconds", "guard_seconds", "selection_seconds", "writing_seconds", "end_check_seconds")


def writing(row: dict[str, Any]) -> float:
    """What the stage spent beyond its measured parts: results.json, artefacts, plots, the log line."""
    return row["wall_seconds"] - sum(row[p] for p in PARTS if p != "writing_seconds")


def slope(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ``ys`` against ``xs``."""
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / spread if spread else 0.0


def targets(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    s, stages = results["summary"], results["stages"]
    later = [row for row in stages if row["stage"] > 1]
    guard_slope = slope([r["stage"] for r in later], [r["guard_seconds"] for r in later]) if len(later) > 1 else 0.0
    last = results["final_selection"]["selectors"]["mahalanobis"]
    return [
        (f"guard <= 10% of stage {s['tasks']} (default settings)",
         f"{s['guard_share_last_without_end_check']:.1%} (own check); the end-of-stream full check "
         f"{s['end_check_seconds']:.1f} s more, once per run", _holds(s["guard_share_last_without_end_check"] <= 0.10)),
        ("total guard time at most linear in T",
         f"{s['guard_seconds_total']:.1f} s over {s['tasks']} stages; per stage median {s['guard_seconds_median']:.2f} s, "
         f"slope {guard_slope * 1000:+.1f} ms per task", _holds(guard_slope * s["tasks"] <= s["guard_seconds_median"])),
        (f"stage {s['tasks']} without training <= 1.2x stage 5",
         f"{s['non_train_seconds']['last']:.2f} s vs {s['non_train_seconds']['stage_5']:.2f} s = "
         f"{s['non_train_ratio']:.2f}x", _holds(s["non_train_ratio"] <= 1.2)),
        ("selection statistics <= 2.7 MB per task", f"{s['statistics_bytes_per_task'] / 1e6:.2f} MB",
         _holds(s["statistics_bytes_per_task"] <= 2.7e6)),
        ("serving load <= 2x (backbone + T x artefact read)",
         f"{s['load_seconds']:.2f} s vs {s['load_parts_seconds']:.2f} s = {s['load_ratio']:.2f}x", _holds(s["load_ratio"] <= 2)),
        (f"task-ID accuracy at T = {s['tasks']} (reported)",
         f"{last['task_id_accuracy']:.3f}; accuracy without IDs {last['accuracy']:.3f}, with IDs "
         f"{results['final_selection']['with_task_id']['accuracy']:.3f}", "-"),
    ]


def _holds(ok: bool) -> str:
    return "yes" if ok else "NO"


def cost_table(results: dict[str, Any]) -> list[str]:
    rows = ["| T | train s | eval s | guard s (check) | selection s | writing s | end check s | stage s | peak RSS MB "
            "| run folder MB | task ID | acc. w/o IDs | acc. with IDs |", "|" + "---|" * 13]
    for row in results["stages"]:
        if row["stage"] not in SHOWN_STAGES and row["stage"] != len(results["stages"]):
            continue
        rows.append(
            f"| {row['stage']} | {row['train_seconds']:.1f} | {row['eval_seconds']:.2f} | {row['guard_seconds']:.2f} "
            f"({row['guard_kind']}) | {row['selection_seconds']:.2f} | {writing(row):.2f} | {row['end_check_seconds']:.1f} "
            f"| {row['wall_seconds']:.1f} | {row['peak_rss_mb']:.0f} | {row['run_bytes'] / 1e6:.1f} "
            f"| {_fraction(row['task_id_accuracy'])} | {_fraction(row['accuracy_without_ids'])} "
            f"| {_fraction(row['accuracy_with_ids'])} |")
    return rows


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def confusions(selection: dict[str, Any], shown: int = 10) -> list[str]:
    """The worst-identified tasks and the pairs most often confused, from the last stage's confusion matrix."""
    tasks, result = selection["candidates"], selection["selectors"]["mahalanobis"]
    matrix = result["confusion"]
    worst = sorted(tasks, key=lambda t: result["per_task"][t]["task_id_accuracy"])[:shown]
    pairs = sorted(((matrix[i][j], tasks[i], tasks[j]) for i in range(len(tasks)) for j in range(len(tasks))
                    if i != j and matrix[i][j]), reverse=True)[:shown]
    lines = ["| task | task ID | examples |", "|---|---|---|"]
    lines += [f"| {t} | {result['per_task'][t]['task_id_accuracy']:.3f} | {sum(matrix[tasks.index(t)])} |" for t in worst]
    lines += ["", "| true task | chosen instead | examples |", "|---|---|---|"]
    lines += [f"| {a} | {b} | {n} |" for n, a, b in pairs]
    return lines


def markdown(results: dict[str, Any]) -> str:
    s, serving, settings = results["summary"], results["serving"], results["settings"]
    load, batch = serving["load"], serving["batch"]
    lines = [
        f"# A {s['tasks']}-task stream's cost as it grows (`python -m bench.long_stream`)", "",
        f"`tasks=long50` on MiniLM, {settings['train']}/{settings['val']}/{settings['test']} rows per task, "
        f"{settings['epochs']} epoch(s), default guard; {results['machine']['cpus']} CPUs, "
        f"{results['machine']['threads']} torch threads, torch {results['machine']['torch']}. Stream "
        f"{s['stream_seconds'] / 60:.1f} min, every guard verdict passed: {s['all_passed']}, BWT {s['bwt']}.", "",
        "| target | measured | holds |", "|---|---|---|", *[f"| {a} | {b} | {c} |" for a, b, c in targets(results)], "",
        "## Cost per stage", "", *cost_table(results), "",
        "## Serving the finished run", "",
        f"Load (fresh process): {load['seconds']:.2f} s for {load['tasks']} tasks (backbone load and hash "
        f"{load['backbone_seconds']:.2f} s, one artefact read {load['artefact_read_seconds'] * 1000:.1f} ms), "
        f"resident memory {load['rss_mb']:.0f} MB.",
        f"A {batch['rows']}-row batch mixing {batch['tasks']} tasks: {batch['told_seconds'] * 1000:.0f} ms told the "
        f"tasks, {batch['mahalanobis_seconds'] * 1000:.0f} ms chosen by mahalanobis.", "",
        "| candidate tasks | first call (model built) s | mahalanobis ms per input |", "|---|---|---|",
        *[f"| {r['tasks']} | {r['first_call_seconds']:.3f} | {r['ms_per_input']:.3f} |" for r in serving["selection_by_candidates"]],
        "", f"## Where task-ID-free selection breaks down (after stage {s['tasks']})", "",
        *confusions(results["final_selection"]), "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    stages = results["stages"]
    t = [row["stage"] for row in stages]
    figure, (cost, memory, accuracy) = plt.subplots(1, 3, figsize=(16, 4.5), constrained_layout=True)
    bottom = [0.0] * len(t)
    for part, label in (("train_seconds", "train"), ("eval_seconds", "evaluation"), ("guard_seconds", "guard"),
                        ("selection_seconds", "selection measured"), ("writing_seconds", "writing")):
        values = [writing(row) if part == "writing_seconds" else row[part] for row in stages]
        cost.bar(t, values, bottom=bottom, label=label, width=0.9)
        bottom = [b + v for b, v in zip(bottom, values)]
    cost.set(xlabel="stage T", ylabel="seconds", title="Cost of stage T (end-of-stream check not shown)")
    cost.legend(fontsize=8)
    memory.plot(t, [row["peak_rss_mb"] for row in stages], label="peak RSS (MB)")
    memory.plot(t, [row["run_bytes"] / 1e6 for row in stages], label="run folder (MB)")
    memory.set(xlabel="stage T", title="Memory and disk")
    memory.legend(fontsize=8)
    for key, label in (("task_id_accuracy", "task ID (mahalanobis)"), ("accuracy_without_ids", "accuracy without IDs"),
                       ("accuracy_with_ids", "accuracy with IDs")):
        points = [(row["stage"], row[key]) for row in stages if row[key] is not None]
        accuracy.plot([p[0] for p in points], [p[1] for p in points], label=label)
    accuracy.set(xlabel="tasks learned T", ylim=(0, 1.02), title="Serving without task IDs")
    accuracy.legend(fontsize=8)
    figure.savefig(path, dpi=110)
    plt.close(figure)

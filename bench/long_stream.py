"""A 50-task stream's cost as it grows: ``python -m bench.long_stream`` writes bench/long_stream/results.{json,md}
and cost_vs_tasks.png.

One run of ``experiment=long_stream`` (``tasks=long50``) on the packaged MiniLM under the default guard (a rotating check per stage, a full
check at the end), every stage measured as it ends by :class:`CostLog` (a stream callback, given through the
``callbacks`` config group as a user would): train (with the selection statistics' fit), evaluation of the new
task, guard, end-of-stream check, task-selection measurement and the rest (writing results, artefacts and
plots) in seconds; resident memory; the run folder's bytes. Then the finished run is served in a fresh
process: load time against the backbone's load and one artefact's read, resident memory, and the latency of a
32-row batch mixing 10 tasks, told the task and chosen by ``mahalanobis``; and the selector's time per input
against the number of candidate tasks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir

from bench.common import process_status_mb
from bench.long_stream_report import markdown, plot
from seqadapt.stream import StreamCallback

ROOT = Path(__file__).resolve().parent.parent
COST_FILE = "cost.jsonl"
MIXED_TASKS, BATCH_ROWS = 10, 32


def memory_mb() -> tuple[float, float]:
    """This process's resident memory now and at its peak (VmRSS, VmHWM), in MB; (0, 0) where /proc is missing."""
    try:
        return process_status_mb("VmRSS"), process_status_mb("VmHWM")
    except (OSError, RuntimeError):
        return 0.0, 0.0


def folder_bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in Path(folder).rglob("*") if path.is_file())


class CostLog(StreamCallback):
    """Appends one JSON line per stage to ``path``: what the stage cost, after everything it wrote."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_stage_end(self, run: Any, stage: Any, record: Any) -> None:
        rss, peak = memory_mb()
        task = stage.tasks[0].spec.name
        selection = record.task_selection or {"selectors": {}, "with_task_id": {}}
        chosen = selection["selectors"].get("mahalanobis", {})
        row = {
            "stage": stage.number, "task": task, "wall_seconds": run.stage_seconds(),
            "train_seconds": record.train_seconds, "eval_seconds": record.eval_seconds,
            "guard_seconds": record.guard_seconds, "end_check_seconds": record.end_check_seconds,
            "selection_seconds": record.selection_seconds, "guard_kind": record.guard.kind,
            "re_evaluated": record.guard.re_evaluated, "passed": record.guard.passed,
            "rss_mb": rss, "peak_rss_mb": peak, "run_bytes": folder_bytes(run.output_dir),
            "artefact_bytes": folder_bytes(run.output_dir / "artefacts" / task),
            "statistics_bytes": sum(b.numel() * b.element_size() for b in run.module.selection[task].buffers()),
            "task_id_accuracy": chosen.get("task_id_accuracy"), "accuracy_without_ids": chosen.get("accuracy"),
            "accuracy_with_ids": selection["with_task_id"].get("accuracy"),
        }
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


def stream_overrides(args: argparse.Namespace, run_dir: Path) -> list[str]:
    return [
        "experiment=long_stream", f"data.train_size={args.train}", f"data.val_size={args.val}",
        f"data.test_size={args.test}", f"trainer.max_epochs={args.epochs}", "+trainer.enable_progress_bar=false",
        "+callbacks.cost._target_=bench.long_stream.CostLog", f"+callbacks.cost.path={run_dir / COST_FILE}",
        *args.overrides,
    ]


def run_stream(args: argparse.Namespace, run_dir: Path) -> dict[str, Any]:
    """The long stream in ``run_dir`` (its first ``args.tasks`` tasks); its results.json."""
    from seqadapt.cli.train import run

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=stream_overrides(args, run_dir))
    if args.tasks:
        cfg.tasks.order = list(cfg.tasks.order)[: args.tasks]
    run(cfg, run_dir)
    return json.loads((run_dir / "results.json").read_text())


def serve_child(run_dir: Path) -> None:
    """In a fresh process: load the finished run as serving does and time it; print the measurements as JSON."""
    from bench.long_stream_serving import measure_serving

    print(json.dumps(measure_serving(run_dir, MIXED_TASKS, BATCH_ROWS)))


def bench_serving(run_dir: Path) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.long_stream", "--serve-child", str(run_dir)]
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=ROOT)
    return json.loads(done.stdout.strip().splitlines()[-1])


def summary(stages: list[dict[str, Any]], results: dict[str, Any], serving: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets, each from the measured rows."""
    def non_train(row: dict[str, Any]) -> float:  # evaluation + guard + selection + writing, not the end check
        return row["wall_seconds"] - row["train_seconds"] - row["end_check_seconds"]

    last, fifth = stages[-1], stages[min(4, len(stages) - 1)]
    guard = [row["guard_seconds"] for row in stages]
    load = serving["load"]
    parts = load["backbone_seconds"] + len(stages) * load["artefact_read_seconds"]
    return {
        "tasks": len(stages),
        "guard_share_last": last["guard_seconds"] / last["wall_seconds"],
        "guard_share_last_without_end_check": last["guard_seconds"] / (last["wall_seconds"] - last["end_check_seconds"]),
        "guard_seconds_total": sum(guard), "guard_seconds_median": statistics.median(guard[1:] or guard),
        "end_check_seconds": last["end_check_seconds"],
        "non_train_seconds": {"stage_5": non_train(fifth), "last": non_train(last)},
        "non_train_ratio": non_train(last) / non_train(fifth),
        "statistics_bytes_per_task": max(row["statistics_bytes"] for row in stages),
        "load_seconds": load["seconds"], "load_parts_seconds": parts, "load_ratio": load["seconds"] / parts,
        "stream_seconds": results["wall_seconds"], "bwt": results["metrics"]["bwt"],
        "all_passed": all(row["passed"] for row in stages),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.long_stream", description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=0, help="the stream's first N tasks (0: all of tasks=long50)")
    parser.add_argument("--train", type=int, default=200)
    parser.add_argument("--val", type=int, default=50)
    parser.add_argument("--test", type=int, default=100)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "long_stream")
    parser.add_argument("--keep", type=Path, help="run the stream in this folder and keep it (default: a temporary one)")
    parser.add_argument("--serve-child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="more config overrides, e.g. backbone=tiny_random (tests)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.serve_child:
        serve_child(args.serve_child)
        return
    results = bench_long_stream(args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    plot(results, args.out / "cost_vs_tasks.png")
    text = markdown(results)
    (args.out / "results.md").write_text(text)
    print(text)


def bench_long_stream(args: argparse.Namespace) -> dict[str, Any]:
    """Run, serve and summarise; the run folder is removed afterwards unless ``args.keep`` names it."""
    work = Path(tempfile.mkdtemp(prefix="long_stream_"))
    run_dir = args.keep or work / "run"
    try:
        started = time.perf_counter()
        results = run_stream(args, run_dir)
        stages = [json.loads(line) for line in (run_dir / COST_FILE).read_text().splitlines()]
        serving = bench_serving(run_dir)
        last = results["stages"][-1]["task_selection"]
        return {
            "settings": {k: getattr(args, k) for k in ("tasks", "train", "val", "test", "epochs")},
            "machine": {"cpus": os.cpu_count(), "threads": results["environment"].get("torch_threads"),
                        "torch": results["environment"].get("torch")},
            "seconds": time.perf_counter() - started, "stages": stages, "serving": serving,
            "final_selection": last, "summary": summary(stages, results, serving),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

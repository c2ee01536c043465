"""A finished run's task-ID-free accuracy on rows no split of the run used: its tasks' held-out training-pool rows.

    .venv/bin/python -m bench.selection_held_out RUN_DIR              # 2,000 rows per task, the run's selectors
    .venv/bin/python -m bench.selection_held_out RUN_DIR --held-out 500 --select mahalanobis,prototype

Why: a stream measures selectors on its tasks' test splits, 400 rows per task on
the default stream, where a gap of one point between accuracy with and without
task IDs is four rows per task. The same trained adapters, heads and stored
statistics, served as ``seqadapt-predict`` serves them (nothing is refitted),
scored on the rows of each training pool that follow the run's training split
(``bench.tune_selection``'s held-out rows; never a validation or test row)
tell a selector's gap apart from the test split's sampling noise. Writes
``RUN_DIR/selection_held_out.{json,md}`` beside the run's test-split numbers.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from bench.tune_selection import held_out_splits, scored_rows
from seqadapt.artefacts import RUN_CONFIG
from seqadapt.data import make_loader
from seqadapt.record import RESULTS_FILE
from seqadapt.selection import evaluate_selection
from seqadapt.serving import load_stream


def held_out_selection(run_dir: Path, held_out: int, selectors: list[str] | None = None) -> dict[str, Any]:
    """The run's last stage's selection report (``evaluate_selection``) on held-out rows, and on its test split."""
    cfg = OmegaConf.load(run_dir / RUN_CONFIG)
    tested = json.loads((run_dir / RESULTS_FILE).read_text())["stages"][-1].get("task_selection") or {}
    selectors = selectors or list(tested.get("selectors", ())) or list(cfg.selection.selectors)
    loaded = load_stream(run_dir)
    tasks, kept_validation = held_out_splits(cfg, held_out)
    missing = sorted({t.spec.name for t in tasks} - set(loaded.tasks))
    if missing:
        raise SystemExit(f"{run_dir}: no artefact for {missing}; held-out rows are scored once the whole stream has finished")
    loaders = {t.spec.name: make_loader((t.spec, t.val), loaded.tokenizer, max_length=cfg.data.max_length,
                                        batch_size=cfg.data.eval_batch_size) for t in tasks}
    report = evaluate_selection(loaded.module, loaders, selectors)
    return {"run_dir": str(run_dir), "rows": scored_rows(held_out, kept_validation),
            "held_out": report, "test": tested}


def gap_rows(name: str, report: dict[str, Any], selectors: list[str]) -> list[str]:
    if not report:
        return []
    told, lines = report["with_task_id"]["accuracy"], []
    for selector in selectors:
        if selector in report["selectors"]:
            s = report["selectors"][selector]
            lines.append(f"| {name} ({report['examples']:,} rows) | `{selector}` | {s['task_id_accuracy']:.4f} | "
                         f"{s['accuracy']:.4f} | {told:.4f} | {100 * (s['accuracy'] - told):+.2f} |")
    return lines


def to_markdown(result: dict[str, Any]) -> str:
    selectors = list(result["held_out"]["selectors"])
    lines = [f"`{result['run_dir']}`, after its last stage; held-out: {result['rows']}.", "",
             "| rows | selector | task ID | accuracy without task IDs | with task IDs | gap (points) |",
             "|---|---|---|---|---|---|"]
    lines += gap_rows("held-out", result["held_out"], selectors) + gap_rows("test split", result["test"], selectors)
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--held-out", type=int, default=2000, help="rows per task after its training split (0: validation)")
    parser.add_argument("--select", default=None, help="comma-separated selectors (default: those the run measured)")
    args = parser.parse_args(argv)
    result = held_out_selection(args.run_dir, args.held_out, args.select.split(",") if args.select else None)
    (args.run_dir / "selection_held_out.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.run_dir / "selection_held_out.md").write_text(to_markdown(result))
    print(to_markdown(result))


if __name__ == "__main__":
    main()

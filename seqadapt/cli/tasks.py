"""``seqadapt-tasks check [names…]``: read task definitions and their data, print what a run would get.

No model is loaded: a definition's mistakes (a wrong column, a label that never occurs, texts in two splits)
show in seconds, with their fixes, instead of after a backbone download or a stage of training. Exit code 0
when every task would train, 1 when any would not (warnings alone keep 0).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seqadapt.data.check import check_tasks, format_report
from seqadapt.data.splits import SplitSizes
from seqadapt.data.tasks import DEFAULT_TASK_DIR


def parser() -> argparse.ArgumentParser:
    """The command line of ``seqadapt-tasks`` (also what the documentation's CLI reference prints)."""
    command = argparse.ArgumentParser(prog="seqadapt-tasks", description="Inspect task definitions without a model.")
    commands = command.add_subparsers(dest="command", required=True)
    check = commands.add_parser(
        "check", help="read each task's definition and data; print splits, labels, dropped rows, leakage, problems",
        description="Exit code 0 when every task would train, 1 when any has an error (warnings alone keep 0).",
    )
    check.add_argument("names", nargs="*", help="task names (default: every definition in the task dir)")
    check.add_argument("--task-dir", type=Path, default=DEFAULT_TASK_DIR, help="default: the repository's tasks/")
    check.add_argument("--drop-leaked", action="store_true",
                       help="drop train/val rows whose text is also in val/test (data.drop_leaked=true), "
                            "and count what is left")
    defaults = SplitSizes()
    for split in ("train", "val", "test"):
        check.add_argument(f"--{split}-size", type=int, default=getattr(defaults, split),
                           help=f"data.{split}_size (default {getattr(defaults, split)})")
    check.add_argument("--split-seed", type=int, default=defaults.seed, help=f"data.split_seed (default {defaults.seed})")
    return command


def main(argv: list[str] | None = None) -> None:
    command = parser()
    args = command.parse_args(argv)
    if not args.names and not any(Path(args.task_dir).glob("*.yaml")):
        command.exit(1, f"seqadapt-tasks: no task definitions (*.yaml) in {args.task_dir}; give --task-dir DIR\n")
    sizes = SplitSizes(train=args.train_size, val=args.val_size, test=args.test_size, seed=args.split_seed,
                       drop_leaked=args.drop_leaked)
    reports = check_tasks(args.names, args.task_dir, sizes)
    for report in reports:
        print(format_report(report), end="\n\n")
    failed = [report.name for report in reports if not report.ok]
    warned = sum(problem.level == "warning" for report in reports for problem in report.problems)
    print(f"{len(reports)} task(s) checked: {len(reports) - len(failed)} ok"
          + (f", {len(failed)} with errors ({', '.join(failed)})" if failed else "")
          + (f"; {warned} warning(s)" if warned else ""))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

"""``seqadapt-verify RUN_DIR``: the regression test that a run's tasks are preserved, for users' CI.

Loads the run as serving does, rebuilds each task's test split, evaluates it again and compares with what was
recorded when the task was learned (:mod:`seqadapt.preservation`); prints one line per task (PASS or FAIL, the
score when learned and now, why) and exits 0 when every task is preserved, 1 when any is not, 2 when nothing
could be checked. ``--junit FILE`` also writes the verdicts as JUnit XML for CI dashboards.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import datasets
import transformers

from seqadapt.comparison import TaskCheck, Tolerance
from seqadapt.io import NotARegularFileError
from seqadapt.junit import write_junit
from seqadapt.lock import RunLockedError
from seqadapt.preservation import RunCheck, VerifyUsageError, check_run
from seqadapt.saved_config import SavedConfigError

PROG = "seqadapt-verify"
EPILOG = (
    "In the environment a task was evaluated in when learned (device, torch version, thread count, precision), its "
    "test outputs must hash exactly as recorded. Elsewhere they are compared with the reference outputs stored in "
    "its artefact: every output within --tolerance, at least --min-agreement of the test examples judged the same "
    "(right or wrong) and the score within --score-tolerance; an artefact written before reference outputs were "
    "stored is compared by score alone. A test split whose rows changed is reported as a data change. Exit status: "
    "0 every task preserved, 1 any task changed, refused or with changed data, 2 nothing checked (not a run folder, "
    "an unknown task, a folder being written)."
)


def fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, not {value}")
    return value


def non_negative(text: str) -> float:
    value = float(text)
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value}")
    return value


def task_names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give task names separated by commas, e.g. --tasks trec,sms_spam")
    return names


def parser() -> argparse.ArgumentParser:
    default = Tolerance()
    parser = argparse.ArgumentParser(prog=PROG, epilog=EPILOG, description=(
        "Check that every task of a finished run still gives what it gave when it was learned."))
    parser.add_argument("run_dir", type=Path, help="a run folder (holds run_config.yaml and artefacts/)")
    parser.add_argument("--tasks", type=task_names, metavar="A,B", help="only these tasks (default: every task "
                                                                         "with an artefact)")
    parser.add_argument("--junit", type=Path, metavar="FILE", help="also write JUnit XML there, one testcase per task")
    parser.add_argument("--tolerance", type=non_negative, default=default.max_abs_diff, metavar="ABS",
                        help="largest absolute difference of any output from its reference (default %(default)g)")
    parser.add_argument("--min-agreement", type=fraction, default=default.min_agreement, metavar="SHARE",
                        help="least share of test examples judged the same as when learned (default %(default)g)")
    parser.add_argument("--score-tolerance", type=non_negative, default=default.max_score_diff, metavar="ABS",
                        help="largest absolute difference of the primary score (default %(default)g)")
    parser.add_argument("--compare", choices=("auto", "exact", "tolerance"), default="auto",
                        help="auto: exact in the recorded environment, else within the tolerance (default); "
                             "tolerance: also where the record cannot see a difference (e.g. the CPU model)")
    parser.add_argument("--device", default="auto", help="where to evaluate: auto (the recorded device if it is "
                                                         "here, else cpu), cpu, cuda, ...")
    return parser


def line(check: TaskCheck) -> str:
    """One task's line: PASS or FAIL, then its explanation."""
    return f"{'PASS' if check.passed else 'FAIL'}  {check.explanation}  ({check.seconds:.1f} s)"


def summary(checked: RunCheck) -> str:
    environment = checked.environment
    where = f"{environment['device']}, torch {environment['torch']}, {environment['torch_threads']} thread(s)"
    failed = [check.task for check in checked.failed]
    verdict = (f"every task preserved ({len(checked.tasks)})" if not failed else
               f"{len(failed)} of {len(checked.tasks)} task(s) not preserved: {', '.join(failed)}")
    retired = f"; retired, so not checked: {', '.join(checked.retired)}" if checked.retired else ""
    return f"{PROG}: {checked.run_dir}: {verdict}{retired}; evaluated on {where} in {checked.seconds:.1f} s"


def main(argv: list[str] | None = None) -> None:
    command = parser()
    args = command.parse_args(argv)
    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    tolerance = Tolerance(args.tolerance, args.min_agreement, args.score_tolerance)
    try:
        checked = check_run(args.run_dir, args.tasks, tolerance, device=args.device, compare=args.compare)
    except (VerifyUsageError, RunLockedError, SavedConfigError, NotARegularFileError) as err:
        command.exit(2, f"{PROG}: error: {err}\n")
    for check in checked.tasks:
        print(line(check))
    print(summary(checked))
    if args.junit is not None:
        write_junit(args.junit, checked)
    sys.exit(0 if checked.passed else 1)


if __name__ == "__main__":
    main()

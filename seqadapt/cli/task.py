"""``seqadapt-task``: retrain, retire or restore one task of a finished run, and show the run's history.

    seqadapt-task retrain RUN_DIR --task NAME [trainer.max_epochs=4 data.train_size=2000 ...]
    seqadapt-task retire  RUN_DIR --task NAME
    seqadapt-task restore RUN_DIR --task NAME [--version N]
    seqadapt-task history RUN_DIR

Every operation holds the run folder's writer lock, verifies every other served task unchanged (re-evaluated,
bit-identical to how it was learned) and changes nothing when anything fails (see :mod:`seqadapt.task_ops`).
Exit codes: 0 done; 1 a task did not answer as it was learned (nothing changed); 2 usage or bad input.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from seqadapt.cli import described
from seqadapt.artefacts import ArtefactError, task_artefact_dir
from seqadapt.config_check import ConfigError
from seqadapt.console import configure_console
from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.lock import RunLock, RunLockedError
from seqadapt.opened_run import TaskOperationError, VerificationError
from seqadapt.record import RESULTS_FILE, HistoryEntry, RecordError, RunRecord
from seqadapt.retrain_settings import ALLOWED, RetrainSettingError
from seqadapt.saved_config import SavedConfigError
from seqadapt.task_history import entry_line, history_lines, version_lines
from seqadapt.task_ops import restore, retire, retrain
from seqadapt.versions import retired_tasks, versions_dir

BAD_INPUT = (TaskOperationError, RetrainSettingError, ArtefactError, RecordError, SavedConfigError, RunLockedError,
             TaskDefinitionError, TaskDataError, ConfigError)


def parser() -> argparse.ArgumentParser:
    command = argparse.ArgumentParser(prog="seqadapt-task", description=described(__doc__),
                                      epilog="Exit codes: 0 done; 1 a task did not answer as it was learned (the run "
                                             "is unchanged); 2 usage or bad input.")
    operations = command.add_subparsers(dest="operation", required=True, metavar="OPERATION")
    for name, text in (("retrain", "train a new version of a task (the old one is kept)"),
                       ("retire", "stop serving a task (its artefact is kept)"),
                       ("restore", "make a kept version current again (rollback), or serve a retired task again"),
                       ("history", "what was done to the run's tasks, and their versions")):
        sub = operations.add_parser(name, help=text, description=text)
        sub.add_argument("run_dir", type=Path, help="a finished run's directory")
        if name != "history":
            sub.add_argument("--task", required=True, help="the task's name")
    operations.choices["retrain"].add_argument(
        "overrides", nargs="*", help=f"how the new version trains, as on seqadapt's command line; may change {ALLOWED}")
    operations.choices["restore"].add_argument("--version", type=int, default=None,
                                               help="the version to make current (default: the current one, un-retired)")
    return command


def done_line(entry: HistoryEntry, run_dir: Path) -> str:
    """What the operation did, in one sentence, and how to undo it."""
    task = entry.task
    if entry.operation == "retire":
        return (f"retired {task} (version {entry.version}) of {run_dir}: no longer served or selected; its artefact is "
                f"kept. Serve it again with: seqadapt-task restore {run_dir} --task {task}")
    kept = versions_dir(run_dir, task) / f"v{entry.previous_version}"
    undo = (f" Version {entry.previous_version} is kept in {kept}; roll back with: seqadapt-task restore {run_dir} "
            f"--task {task} --version {entry.previous_version}") if entry.previous_version != entry.version else ""
    done = "retrained" if entry.operation == "retrain" else "restored"
    return f"{done} {task}: version {entry.version} is current in {task_artefact_dir(run_dir, task)}.{undo}"


def show_history(run_dir: Path) -> None:
    with RunLock(run_dir, shared=True):
        record = RunRecord.load(run_dir / RESULTS_FILE)
        print("\n".join([*history_lines(record), *version_lines(run_dir, record)]))


def main(argv: list[str] | None = None) -> None:
    command = parser()
    args, extra = command.parse_known_args(argv)  # overrides may follow --task, which argparse alone refuses
    if extra and (args.operation != "retrain" or any(item.startswith("-") for item in extra)):
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides += extra
    configure_console()
    try:
        if args.operation == "history":
            show_history(args.run_dir)
            return
        if args.operation == "retrain":
            entry = retrain(args.run_dir, args.task, args.overrides)
        elif args.operation == "retire":
            entry = retire(args.run_dir, args.task)
        else:
            entry = restore(args.run_dir, args.task, args.version)
    except VerificationError as err:
        command.exit(1, f"seqadapt-task: error: {err}\n")
    except BAD_INPUT as err:
        command.exit(2, f"seqadapt-task: error: {err}\n")
    print(entry_line(entry))
    print(done_line(entry, args.run_dir))
    if entry.operation == "retrain" and args.task in retired_tasks(args.run_dir):
        print(f"{args.task} stays retired: serve version {entry.version} with: seqadapt-task restore {args.run_dir} "
              f"--task {args.task}")


if __name__ == "__main__":
    main()

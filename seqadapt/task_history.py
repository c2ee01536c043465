"""A run's task history and versions as a person reads them: ``seqadapt-task history`` and ``seqadapt-report``."""

from __future__ import annotations

from pathlib import Path

from seqadapt.artefacts import ArtefactError, has_artefact
from seqadapt.record import HistoryEntry, RunRecord
from seqadapt.versions import current_version, kept_versions, retired_tasks


def entry_line(entry: HistoryEntry) -> str:
    """One operation on one line: when, what, which versions; then what it measured, what differed from the
    run's settings, what it verified, and which seqadapt did it."""
    moved = entry.previous_version is not None and entry.previous_version != entry.version
    head = f"{entry.time}  {entry.operation:<7}  {entry.task}  " + (
        f"v{entry.previous_version} -> v{entry.version}" if moved else f"v{entry.version}")
    details = []
    if entry.score_after is not None:
        before = "-" if entry.score_before is None else f"{entry.score_before:.4f}"
        details.append(f"{entry.metric} {before} -> {entry.score_after:.4f}")
    details += [f"{key} {_value(change, 'run')} -> {_value(change, 'now')}" for key, change in entry.config_difference.items()]
    details.append(f"verified unchanged: {', '.join(entry.verified) or 'none'}")
    details += [f"without task IDs {name} {_number(result, 'task_id_accuracy')}/{_number(result, 'accuracy')}"
                for name, result in (entry.selection or {}).items()]
    details.append(f"seqadapt {entry.seqadapt_version}, {entry.seconds:.1f} s")
    return f"{head}  " + "; ".join(details)


def _value(change: object, side: str) -> str:
    return repr(change.get(side)) if isinstance(change, dict) else "?"


def _number(result: dict[str, float], key: str) -> str:
    value = result.get(key)
    return f"{value:.4f}" if isinstance(value, (int, float)) else "?"


def history_lines(record: RunRecord) -> list[str]:
    """The run's history, oldest first; one line saying there is none where no operation was done."""
    if not record.history:
        return ["history: no task retrained, retired or restored (seqadapt-task)"]
    return ["history (seqadapt-task; oldest first):", *(f"  {entry_line(entry)}" for entry in record.history)]


def version_lines(run_dir: Path, record: RunRecord) -> list[str]:
    """Per task: its versions (current marked) and whether it is retired, for tasks with more than the one
    version the stream trained or retired; nothing where every task is as the stream left it."""
    retired = retired_tasks(run_dir)
    lines = []
    for task in record.tasks:
        kept = sorted(kept_versions(run_dir, task))
        try:
            current = current_version(run_dir, task) if has_artefact(run_dir, task) else None
        except ArtefactError:
            current = None
        if not kept and current in (None, 1) and task not in retired:
            continue
        names = [f"v{k}" + (" (current)" if k == current else "") for k in sorted({*kept, *([current] if current else [])})]
        state = f"  RETIRED since {retired[task]['time']} (not served)" if task in retired else ""
        lines.append(f"  {task}: {', '.join(names)}{state}")
    return ["versions:", *lines] if lines else []

"""``seqadapt-tasks check``: what a task definition and its data amount to, before any model is loaded.

A newcomer's first task usually fails on the data, not the model: a wrong column, a label that never occurs,
the same text in train and test. :func:`check_task` reads a definition and its source as a run would
(:func:`~seqadapt.data.tasks.load_task_spec`, :func:`~seqadapt.data.sources.read_source`,
:func:`~seqadapt.data.splits.build_splits`) and turns every error and warning into a :class:`Problem` of a
:class:`TaskReport` instead of a traceback; :func:`format_report` prints it.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from datasets import Dataset

from seqadapt.data.listing import SHOWN_ITEMS, clip, clip_middle
from seqadapt.data.sources import read_source
from seqadapt.data.splits import SplitSizes, TaskSplits, build_splits
from seqadapt.data.tasks import DEFAULT_TASK_DIR, TaskSpec, available_tasks, load_task_spec
from seqadapt.kinds import TaskKind, kind_of

SPLITS = ("train", "val", "test")
SOURCE_ORDER = {"train": 0, "test": 1, "all": 2}  # how the raw source splits are listed, whatever the file's order
SHOWN_LEAKS = 5
SHOWN_ROWS = 3
SHOWN_LABELS = 20  # rows of the per-label table; a task may declare 100,000 labels
# What a run reads or builds and can refuse: our own errors are ValueErrors, a missing package or file an OSError.
EXPECTED_ERRORS = (ValueError, OSError)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a task, its message naming the file, key or row and the fix. An ``error`` stops a
    run; a ``warning`` lets it train, on data that is probably not what was meant."""

    level: Literal["error", "warning"]
    message: str


@dataclass(frozen=True)
class Leak:
    """Texts found in two splits: ``texts`` distinct ones, the first few of them in ``examples``. ``source``:
    the splits are the raw source's own files, before seqadapt samples from them."""

    first: str
    second: str
    texts: int
    examples: tuple[str, ...]
    source: bool = False

    def __str__(self) -> str:
        return f"{'source ' if self.source else ''}{self.first}/{self.second}"


@dataclass(frozen=True)
class TaskReport:
    """A task's definition and data as :func:`check_task` found them; fields stay empty past the first error."""

    name: str
    definition: Path
    source_sizes: dict[str, int] = field(default_factory=dict)  # raw source split -> rows
    dropped: dict[str, dict[str, int]] = field(default_factory=dict)  # raw split -> reason -> rows left out
    split_sizes: dict[str, int] = field(default_factory=dict)  # train/val/test as build_splits made them
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> target -> rows
    examples: tuple[str, ...] = ()
    source_leaks: tuple[Leak, ...] = ()  # the raw source's own train vs test
    leaks: tuple[Leak, ...] = ()  # between the built splits, before drop_leaked
    dropped_leaked: dict[str, int] = field(default_factory=dict)  # split -> rows drop_leaked removed
    problems: tuple[Problem, ...] = ()

    @property
    def ok(self) -> bool:
        """No error: the task would train (warnings allowed)."""
        return not any(problem.level == "error" for problem in self.problems)


def find_leaks(kind: TaskKind, splits: dict[str, Dataset]) -> tuple[Leak, ...]:
    """Every pair of ``splits`` (in their order) that shares texts, as the task's kind reads a row's text."""
    texts = {name: kind.texts(rows) for name, rows in splits.items()}
    names = list(splits)
    leaks = []
    for i, first in enumerate(names):
        for second in names[i + 1 :]:
            seen = set(texts[first])
            shared = list(dict.fromkeys(text for text in texts[second] if text in seen))
            if shared:
                leaks.append(Leak(first, second, len(shared), tuple(shared[:SHOWN_LEAKS])))
    return tuple(leaks)


def check_tasks(
    names: list[str] | None, task_dir: Path = DEFAULT_TASK_DIR, sizes: SplitSizes = SplitSizes()
) -> list[TaskReport]:
    """One report per named task; no names: every definition in ``task_dir``."""
    return [check_task(name, task_dir, sizes) for name in (names or available_tasks(task_dir))]


def check_task(name: str, task_dir: Path = DEFAULT_TASK_DIR, sizes: SplitSizes = SplitSizes()) -> TaskReport:
    """Read ``<task_dir>/<name>.yaml`` and its data, build its splits with ``sizes`` and report what came out."""
    report = TaskReport(name=name, definition=Path(task_dir) / f"{name}.yaml")
    try:
        spec = load_task_spec(name, task_dir)
        raw = read_source(spec)
    except EXPECTED_ERRORS as err:
        return replace(report, problems=(Problem("error", _message(err)),))
    kind = kind_of(spec)
    raw = dict(sorted(raw.items(), key=lambda item: (SOURCE_ORDER.get(item[0], len(SOURCE_ORDER)), item[0])))
    report = replace(
        report, source_sizes={split: len(rows) for split, rows in raw.items()},
        dropped={split: found for split, rows in raw.items() if (found := kind.dropped(spec, rows))},
        source_leaks=_source_leaks(spec, kind, raw),
    )
    built, problems = _build(spec, raw, replace(sizes, drop_leaked=False))
    if built is None:
        return replace(report, examples=_raw_examples(raw), problems=problems)
    leaks = find_leaks(kind, {split: getattr(built, split) for split in SPLITS})
    if sizes.drop_leaked and leaks:
        kept, problems = _build(spec, raw, sizes)
        if kept is None:
            return replace(report, leaks=leaks, problems=problems)
        dropped = {split: len(getattr(built, split)) - len(getattr(kept, split)) for split in SPLITS}
        report, built = replace(report, dropped_leaked={s: n for s, n in dropped.items() if n}), kept
    elif leaks:
        problems += (_leak_warning(spec, leaks),)
    return replace(
        report, leaks=leaks, problems=problems,
        split_sizes={split: len(getattr(built, split)) for split in SPLITS},
        label_counts={split: kind.counts(spec, getattr(built, split)) for split in SPLITS},
        examples=tuple(kind.show(spec, built.train[i]) for i in range(min(SHOWN_ROWS, len(built.train)))),
    )


def _build(spec: TaskSpec, raw: dict[str, Dataset], sizes: SplitSizes) -> tuple[TaskSplits | None, tuple[Problem, ...]]:
    """``build_splits``, its warnings and its error (if any) as problems."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            built = build_splits(spec, raw, sizes)
        except EXPECTED_ERRORS as err:
            return None, (Problem("error", _message(err)),)
    said = dict.fromkeys(str(warning.message) for warning in caught if issubclass(warning.category, UserWarning))
    return built, tuple(Problem("warning", message) for message in said)


def _source_leaks(spec: TaskSpec, kind: TaskKind, raw: dict[str, Dataset]) -> tuple[Leak, ...]:
    """Texts in both the source's own train and test files (a split seqadapt did not choose)."""
    if not {"train", "test"} <= set(raw):
        return ()
    try:
        prepared = {split: kind.prepare(spec, raw[split], split) for split in ("train", "test")}
    except EXPECTED_ERRORS:  # the same error stops build_splits, which reports it
        return ()
    return tuple(replace(leak, source=True) for leak in find_leaks(kind, prepared))


def _leak_warning(spec: TaskSpec, leaks: tuple[Leak, ...]) -> Problem:
    pairs = ", ".join(f"{leak}: {leak.texts}" for leak in leaks)
    return Problem(
        "warning",
        f"task '{spec.name}': texts in more than one split ({pairs}), so test and validation "
        "scores include examples it trained on. Set data.drop_leaked=true (--drop-leaked here) to drop them from "
        "train and val, or remove the duplicates from the source",
    )


def _raw_examples(raw: dict[str, Dataset]) -> tuple[str, ...]:
    """The first rows of the first raw split, as read: what a wrong column or label name looks like."""
    rows = next(iter(raw.values()))
    return tuple(str(rows[i]) for i in range(min(SHOWN_ROWS, len(rows))))


def _message(err: BaseException) -> str:
    return str(err) or type(err).__name__


def format_report(report: TaskReport) -> str:
    """The report as ``seqadapt-tasks check`` prints it: a verdict line, then one labelled block per finding."""
    errors = sum(problem.level == "error" for problem in report.problems)
    warned = len(report.problems) - errors
    verdict = (f"{errors} error(s)" if errors else "ok") + (f", {warned} warning(s)" if warned else "")
    lines = [f"{report.name}: {verdict}  ({_shown(report.definition)})"]
    if report.source_sizes:
        lines.append(_row("source", ", ".join(f"{split} {n} rows" for split, n in report.source_sizes.items())))
        lines.append(_row("dropped", _dropped_text(report.dropped)))
    if report.split_sizes:
        lines.append(_row("splits", ", ".join(f"{split} {n}" for split, n in report.split_sizes.items())))
        lines.extend(_label_table(report.label_counts))
    if report.source_sizes:
        lines.extend(_row("leakage" if i == 0 else "", text) for i, text in enumerate(_leak_lines(report)))
    lines.extend(_row("examples" if i == 0 else "", clip(row)) for i, row in enumerate(report.examples))
    lines.extend(_row(problem.level, clip_middle(problem.message)) for problem in report.problems)
    return "\n".join(lines)


def _dropped_text(dropped: dict[str, dict[str, int]]) -> str:
    return "; ".join(f"{split}: {_reasons(reasons)}" for split, reasons in dropped.items()) or "none"


def _reasons(reasons: dict[str, int]) -> str:
    said = ", ".join(f"{n} rows by {why}" for why, n in list(reasons.items())[:SHOWN_ITEMS])
    rest = list(reasons.values())[SHOWN_ITEMS:]
    return said + (f" and {sum(rest)} rows by {len(rest)} more reason(s)" if rest else "")


def _leak_lines(report: TaskReport) -> list[str]:
    lines = [
        f"{leak}: {leak.texts} text(s), e.g. " + ", ".join(repr(clip(text, 32)) for text in leak.examples)
        for leak in report.source_leaks + report.leaks
    ]
    if report.dropped_leaked:
        lines.append("drop_leaked removed " + ", ".join(f"{n} {split}" for split, n in report.dropped_leaked.items())
                     + " row(s); the splits above are what is left")
    return lines or ["none: no text is in two splits"]


def _label_table(counts: dict[str, dict[str, int]]) -> list[str]:
    """One row per target, the first :data:`SHOWN_LABELS` of them, then one row that sums the rest."""
    targets = list(next(iter(counts.values()), {}))
    shown, rest = [clip(target, 40) for target in targets[:SHOWN_LABELS]], targets[SHOWN_LABELS:]
    more = f"{len(rest)} more labels" if rest else ""
    width = max([len(target) for target in shown] + [5, len(more)])
    lines = [_row("per label", "".join(f"{split:>7}" for split in counts).rjust(width + 7 * len(counts)))]
    for target, name in zip(targets, shown):
        lines.append(_row("", f"{name:<{width}}" + "".join(f"{rows[target]:>7}" for rows in counts.values())))
    if rest:
        sums = (sum(rows[target] for target in rest) for rows in counts.values())
        lines.append(_row("", f"{more:<{width}}" + "".join(f"{total:>7}" for total in sums)))
    return lines


def _row(label: str, text: str) -> str:
    return f"  {label:<10} {text}"


def _shown(path: Path) -> str:
    """``path`` relative to the working directory when it is under it: shorter, and what a user types."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)

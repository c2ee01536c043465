"""The callbacks every stream runs, chosen once from its strategy, selectors and resume flag."""

from __future__ import annotations

from seqadapt.strategies import Strategy
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.resume import Resume
from seqadapt.stream.selection_probe import TaskSelectionProbe
from seqadapt.stream.writers import (
    ArtefactSaver, MethodStateWriter, PlotWriter, ResultsWriter, RunSummary, StageLogLine,
)


def standard_callbacks(
    strategy: Strategy, selectors: list[str], resume: bool, extra: list[StreamCallback]
) -> list[StreamCallback]:
    """Resume (if asked), the task-selection probe (if any selector), results.json, the log line, artefacts
    where the strategy isolates tasks (each stage then leaves a verified per-task artefact), a continual method's
    memory where it keeps one, plots, then
    ``extra`` (W&B, users' callbacks), and the run's summary last."""
    callbacks: list[StreamCallback] = [Resume()] if resume else []
    if selectors:
        callbacks.append(TaskSelectionProbe(selectors))
    callbacks += [ResultsWriter(), StageLogLine()]
    if strategy.isolates_tasks:
        callbacks.append(ArtefactSaver())
    if strategy.continual is not None:
        callbacks.append(MethodStateWriter())
    return [*callbacks, PlotWriter(), *extra, RunSummary()]

"""The callbacks every stream runs, chosen once from its strategy, selectors and resume flag."""

from __future__ import annotations

from seqadapt.strategies import Strategy
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.checkpoint_resume import CheckpointResume, CheckpointWriter
from seqadapt.stream.resume import Resume
from seqadapt.stream.selection_probe import TaskSelectionProbe
from seqadapt.stream.writers import ArtefactSaver, PlotWriter, ResultsWriter, RunSummary, StageLogLine


def standard_callbacks(
    strategy: Strategy, selectors: list[str], resume: bool, extra: list[StreamCallback]
) -> list[StreamCallback]:
    """Resume (if asked), the task-selection probe (if any selector), results.json, the log line, what a resume
    continues from — a verified artefact per task where the strategy isolates tasks, else the last stage's
    checkpoint (the model and its continual method's state) — plots, then ``extra`` (W&B, users' callbacks), and
    the run's summary last."""
    isolates = strategy.isolates_tasks
    callbacks: list[StreamCallback] = [Resume() if isolates else CheckpointResume()] if resume else []
    if selectors:
        callbacks.append(TaskSelectionProbe(selectors))
    callbacks += [ResultsWriter(), StageLogLine(), ArtefactSaver() if isolates else CheckpointWriter()]
    return [*callbacks, PlotWriter(), *extra, RunSummary()]

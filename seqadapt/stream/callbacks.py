"""Stream callbacks: each concern of a run (results, plots, artefacts, resume, W&B, the log) as named hooks.

A callback overrides the hooks it needs; :class:`~seqadapt.stream.run.StreamRun`
calls them in list order. Stage hooks run where stages are verified (global
rank 0 under DDP); stream hooks run on every process. Users add their own
from the ``callbacks`` config group (see docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqadapt.record import StageRecord
    from seqadapt.stream.plan import Stage
    from seqadapt.stream.run import StreamRun


class StreamCallback:
    """The hooks of a stream run, in the order they are called; every hook does nothing by default."""

    def on_stream_start(self, run: StreamRun) -> None:
        """Before the first stage (resume restores finished stages here)."""

    def on_stage_start(self, run: StreamRun, stage: Stage) -> None:
        """Before ``stage`` trains."""

    def on_stage_measured(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        """After ``stage`` trained and the guard gave its verdict; ``record`` may still be added to."""

    def on_stage_end(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        """After ``record`` joined ``run.record`` (its row of the matrix, the metrics), before the verdict is
        enforced: a failing stage is still written, logged and plotted."""

    def on_stream_end(self, run: StreamRun) -> None:
        """After the last stage, when every stage passed (or the guard only reports)."""

    def on_stream_finish(self, run: StreamRun, failed: bool) -> None:
        """Always last, also when a stage failed or the run was interrupted."""

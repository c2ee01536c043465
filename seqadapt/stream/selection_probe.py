"""The task-selection probe: after every stage, how well each selector serves inputs without task IDs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seqadapt.record import StageRecord
from seqadapt.selection import check_selectors, evaluate_selection
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.plan import Stage

if TYPE_CHECKING:
    from seqadapt.stream.run import StreamRun


class TaskSelectionProbe(StreamCallback):
    """Measures ``selectors`` on the test splits of every task seen so far; adds ``task_selection`` to the stage.

    Earlier stages' passes are remembered only where the strict guard proves
    them unchanged (tasks isolated from one another, guard mode ``strict``).
    """

    def __init__(self, selectors: list[str]) -> None:
        self.selectors = check_selectors(selectors)
        self._memo: dict[tuple[str, int], dict[str, Any]] | None = None

    def on_stream_start(self, run: StreamRun) -> None:
        check_selectors(self.selectors, run.module.selection.config, run.module.family.architecture)
        remembers = run.module.strategy.isolates_tasks and run.verifier.guard.mode == "strict"
        self._memo = {} if remembers else None

    def on_stage_measured(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        loaders = {t.spec.name: run.loaders.test(t) for t in stage.seen}
        selection = evaluate_selection(run.module, loaders, self.selectors, self._memo)
        record.task_selection, record.selection_seconds = selection, selection["seconds"]

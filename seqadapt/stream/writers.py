"""The callbacks that put a run on disk and in the log: results.json, plots, artefacts, one line per stage."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import TYPE_CHECKING

from seqadapt.artefacts import Reference, save_task_artefact
from seqadapt.distributed import is_rank_zero
from seqadapt.evaluation import rows_sha256
from seqadapt.plots import write_run_plots
from seqadapt.record import StageRecord
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.plan import Stage
from seqadapt.summary import format_summary

if TYPE_CHECKING:
    from seqadapt.stream.run import StreamRun

log = logging.getLogger("seqadapt")


class ResultsWriter(StreamCallback):
    """``results.json`` after every stage (atomically, before the verdict is enforced)."""

    def on_stage_end(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        run.record.save(run.output_dir)


class PlotWriter(StreamCallback):
    """The run's pictures, redrawn after every stage (see :mod:`seqadapt.plots`), after the stage's results and
    artefacts: a picture that cannot be drawn is logged and never costs a stage its artefact."""

    def on_stage_end(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        try:
            write_run_plots(run.record, run.output_dir)
        except Exception as err:  # noqa: BLE001 - matplotlib and the disk raise many kinds; results are safe
            log.warning("could not draw the plots of stage %d in %s: %s", stage.number, run.output_dir, err)


class RunSummary(StreamCallback):
    """The end-of-run summary in the log and on the console (see :mod:`seqadapt.summary`), also after a failure."""

    def on_stream_finish(self, run: StreamRun, failed: bool) -> None:
        if not is_rank_zero():
            return
        log.info("\n%s", format_summary(run.record, run.output_dir))
        if failed and run.record.completed_stages < len(run.plan):
            log.info(
                "stopped in stage %d of %d; finished stages are kept in %s (seqadapt resume=%s continues after them)",
                run.record.completed_stages + 1, len(run.plan), run.output_dir, run.output_dir,
            )


class ArtefactSaver(StreamCallback):
    """Each learned task's artefact, only for stages whose guard passed: an artefact is always a verified stage.
    It stores the task's test outputs as they were just evaluated (the stage verifier keeps them), the test rows'
    fingerprint and the environment, for ``seqadapt-verify`` in another environment (:mod:`seqadapt.preservation`)."""

    def on_stage_end(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        if not record.guard.passed:
            return
        splits = {t.spec.name: t for t in stage.tasks}
        for evaluation in record.evaluations:
            if evaluation.task in splits:
                reference = Reference(run.verifier.learned_outputs[evaluation.task],
                                      rows_sha256(splits[evaluation.task].test), run.record.environment)
                save_task_artefact(
                    run.module, evaluation, run.output_dir, stage=stage.number, backbone_name=run.record.backbone,
                    backbone_sha256=run.record.backbone_sha256, settings=asdict(run.loaders.config),
                    run_id=run.record.run_id, reference=reference, imported=record.imported,
                )


class StageLogLine(StreamCallback):
    """One line per stage in the log: scores, the guard's verdict, task-ID-free numbers, seconds."""

    def on_stage_end(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        learned = {t.spec.name for t in stage.tasks}
        scores = " ".join(f"{e.task} {e.metric}={e.score:.4f}" for e in record.evaluations if e.task in learned)
        verdict = record.guard
        if verdict.passed:
            how = {"full": "re-evaluated", "tensors": "tensors"}.get(
                verdict.kind, f"tensors, backbone hash, {len(verdict.re_evaluated)} re-evaluated")
            guard_text = f"guard ok ({len(verdict.checked)} earlier task(s) unchanged, {how})"
        elif not verdict.checked:  # e.g. fine-tuning's first stage: nothing earlier was at risk yet
            guard_text = "backbone changed (nothing earlier to check)"
        else:
            recorded = "FAILED" if run.verifier.guard.mode == "strict" else "recorded"
            guard_text = f"guard {recorded} {len(verdict.violations)} change(s)"
        selection = record.task_selection
        without_id = " ".join(
            f"{selector}={result['task_id_accuracy']:.3f}/{result['accuracy']:.3f}"
            for selector, result in (selection["selectors"] if selection else {}).items()
        )
        imported = f" (imported from {record.imported['format']} folder {record.imported['folder']})" if record.imported else ""
        log.info(
            "stage %d/%d %s%s: test %s | %s | task ID/acc without ID: %s | %.1fs", stage.number, stage.count,
            stage.name, imported, scores, guard_text, without_id or "off", run.stage_seconds(),
        )

"""Resume: continue a run in its folder after its last finished stage, every restored task re-verified."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from seqadapt.artefacts import ArtefactError, has_artefact, install_task, load_task_artefact, task_artefact_dir
from seqadapt.distributed import is_rank_zero
from seqadapt.record import RESULTS_FILE, RunRecord
from seqadapt.stream.callbacks import StreamCallback

if TYPE_CHECKING:
    from seqadapt.stream.run import StreamRun

log = logging.getLogger("seqadapt")


class Resume(StreamCallback):
    """Loads every finished stage from its artefact, re-verifies it, and carries its record over.

    A stage counts as finished when its artefact is complete; the matrix rows
    and stage records come from the run's ``results.json``. The loaded tasks
    are evaluated again and must reproduce, bit for bit, the score and outputs
    recorded in their manifests, on the same backbone.
    """

    def on_stream_start(self, run: StreamRun) -> None:
        if not run.module.strategy.isolates_tasks:
            raise ArtefactError(
                f"strategy '{run.module.strategy.name}' changes shared weights every stage, so its stages leave no "
                "per-task artefacts to resume from; start it again, or use strategy=adapter"
            )
        names = run.record.tasks
        path = run.output_dir / RESULTS_FILE
        previous = RunRecord.load(path) if path.is_file() else None
        if previous is not None and previous.tasks != names:
            raise ArtefactError(
                f"{run.output_dir} holds a run of tasks {previous.tasks}, not {names}; "
                "resume with the config that run was started with"
            )
        restored = 0
        while restored < len(names) and has_artefact(run.output_dir, names[restored]):
            restored += 1
        if restored == 0:
            log.info("resume: no finished stage in %s, starting from stage 1", run.output_dir)
            return
        if previous is None or previous.completed_stages < restored:
            raise ArtefactError(f"{path} is missing or older than the artefacts beside it; start a new run")
        self._restore(run, previous, restored)

    def _restore(self, run: StreamRun, previous: RunRecord, restored: int) -> None:
        tasks = run.tasks[:restored]
        for index, task in enumerate(tasks):
            artefact = load_task_artefact(
                task_artefact_dir(run.output_dir, task.spec.name), backbone_sha256=run.record.backbone_sha256
            )
            if artefact.manifest["stage"] != index + 1 or artefact.spec != task.spec:
                raise ArtefactError(
                    f"artefact {artefact.directory} is stage {artefact.manifest['stage']} of another task definition; "
                    f"this stream has '{task.spec.name}' as stage {index + 1}"
                )
            install_task(run.module, artefact)
            run.verifier.learn(artefact.learned)
        verdict = run.verifier.check(restored, "resume", run.verifier.evaluate(tasks))
        if not verdict.passed:
            raise ArtefactError(
                "restored artefacts do not reproduce what was recorded when they were learned:\n  "
                + "\n  ".join(verdict.violations)
            )
        record = run.record
        record.stages, record.accuracy_matrix = previous.stages[:restored], previous.accuracy_matrix[:restored]
        record.completed_stages = restored
        record.resumed = {"stages_restored": restored, "verification": verdict.to_dict()}
        run.refresh_parameters()
        record.update_metrics(run.reference)
        log.info(
            "resume: restored %d finished stage(s) from %s; guard re-verified %s", restored,
            run.output_dir / "artefacts", ", ".join(verdict.checked),
        )
        if is_rank_zero():
            record.save(run.output_dir)

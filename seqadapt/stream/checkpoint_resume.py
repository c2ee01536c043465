"""Resume and growth for strategies that share weights: from the last stage's checkpoint, re-verified.

Fine-tuning, EWC, LwF, replay, A-GEM and O-LoRA change every earlier task each stage, so no per-task artefact
can stand for a stage (:mod:`seqadapt.stream.resume` resumes those that isolate tasks). Instead every stage
ends with :class:`CheckpointWriter`: the continual method's files (a replay memory, a Fisher) under
``<run>/continual/``, then the model's changeable tensors and the stages' records under ``<run>/checkpoint/``
(:mod:`seqadapt.stage_checkpoint`). :class:`CheckpointResume` reads them back: the learned tasks are added,
the tensors and the method's state restored, and every learned task re-evaluated; its test outputs must equal,
bit for bit, those the last stage recorded. The records of the finished stages come from the checkpoint,
results.json's differences are logged, and the next stage trains seeded by its index alone, so a resumed (or
grown) run equals one that ran in one go.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import torch

from seqadapt.artefacts import ArtefactError
from seqadapt.distributed import is_rank_zero
from seqadapt.record import RESULTS_FILE, RunRecord
from seqadapt.stage_checkpoint import (
    START_AGAIN, StageCheckpoint, has_checkpoint, install_checkpoint, load_checkpoint, save_checkpoint,
)
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.resume import (
    added_tasks, differences, keep_aside, keep_config_in_step, not_reproduced, previous_record, require_extension,
    widened,
)

if TYPE_CHECKING:
    from seqadapt.data.splits import TaskSplits
    from seqadapt.record import StageRecord
    from seqadapt.stream.plan import Stage
    from seqadapt.stream.run import StreamRun

log = logging.getLogger("seqadapt")
METHOD_DIR = "continual"


class CheckpointWriter(StreamCallback):
    """After every stage (rank 0): the method's files, then the checkpoint that records their SHA-256."""

    def on_stage_end(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        if not is_rank_zero():
            return
        module = run.module
        files = module.continual.save(run.output_dir / METHOD_DIR) if module.continual is not None else []
        save_checkpoint(
            run.output_dir, module, run.record.stages, run.record.score_matrix, run_id=run.record.run_id,
            backbone_sha256=run.record.backbone_sha256, environment=run.record.environment, method_files=files,
        )


class CheckpointResume(StreamCallback):
    """Restores the last finished stage from ``<run>/checkpoint`` and re-verifies every task it had learned."""

    def on_stream_start(self, run: StreamRun) -> None:
        previous, unreadable = previous_record(run.output_dir)
        require_extension(run, previous)
        if not has_checkpoint(run.output_dir):
            if previous is not None and previous.completed_stages:
                raise ArtefactError(
                    f"{run.output_dir} records {previous.completed_stages} finished stage(s) of strategy "
                    f"'{run.module.strategy.name}' but holds no checkpoint of its model (<run>/checkpoint, which "
                    f"seqadapt writes after every stage of such a strategy). {START_AGAIN}")
            log.info("resume: no finished stage in %s, starting from stage 1", run.output_dir)
        else:
            checkpoint = load_checkpoint(run.output_dir, run.output_dir / METHOD_DIR)
            check_fits(run, checkpoint, previous)
            restore(run, checkpoint)
            carry_records(run, previous, checkpoint)
            run.record.resumed["tasks_added"] = added_tasks(run, previous)
        if unreadable is not None:
            keep_aside(run.output_dir / RESULTS_FILE, unreadable)
        if is_rank_zero():
            keep_config_in_step(run)
            if run.record.completed_stages:
                run.record.save(run.output_dir)


def check_fits(run: StreamRun, checkpoint: StageCheckpoint, previous: RunRecord | None) -> None:
    """Refuse a checkpoint of another strategy, stream, backbone or run than this one continues."""
    manifest, where = checkpoint.manifest, checkpoint.directory
    if manifest["strategy"] != run.module.strategy.name:
        raise ArtefactError(f"{where} holds a strategy={manifest['strategy']} run; this one is "
                            f"strategy={run.module.strategy.name}: resume with the run's own config")
    planned = [stage.name for stage in run.plan[: checkpoint.stage]]
    recorded = [stage.task for stage in checkpoint.stages]
    if checkpoint.stage > len(run.plan) or planned != recorded:
        raise ArtefactError(f"{where} holds stages {recorded}; this stream plans {planned}: resume with the run's "
                            "own tasks.order, or grow it by appending tasks")
    if manifest["backbone_sha256"] != run.record.backbone_sha256:
        raise ArtefactError(f"{where} was trained on backbone {manifest['backbone_sha256'][:12]}…, this run loads "
                            f"{run.record.backbone_sha256[:12]}…: resume with the run's own backbone")
    owner = previous.run_id if previous is not None else None
    if owner is not None and manifest["run_id"] not in (None, owner):
        raise ArtefactError(f"{where} was written by run {manifest['run_id']}, but {run.output_dir / RESULTS_FILE} "
                            f"belongs to run {owner}: it was copied in from another run's folder")


def restore(run: StreamRun, checkpoint: StageCheckpoint) -> None:
    """Add the learned tasks, copy the tensors and the method's state in, and re-evaluate every learned task:
    its outputs must be those the checkpoint's last stage recorded."""
    learned = [task for stage in run.plan[: checkpoint.stage] for task in stage.tasks]
    module = run.module
    for task in learned:
        module.add_task(task.spec, task.train)
    install_checkpoint(module, checkpoint)
    recorded = checkpoint.manifest["environment"]
    if recorded.get("device") == "cuda" and torch.cuda.is_available():
        module.to("cuda")  # evaluate where the references were measured
    if module.continual is not None:
        module.continual.restore(run.output_dir / METHOD_DIR, module, learned, run.loaders)
    violations = changed_outputs(run, learned, checkpoint.stages[-1])
    if violations:
        raise ArtefactError(not_reproduced(violations, recorded, module.device.type))
    for index, stage in enumerate(checkpoint.stages):  # the guard's references: each task as it was learned
        own = {task.spec.name for task in run.plan[index].tasks}
        for evaluation in stage.evaluations:
            if evaluation.task in own:
                run.verifier.learn(evaluation)


def changed_outputs(run: StreamRun, learned: list[TaskSplits], last: StageRecord) -> list[str]:
    """The learned tasks whose test outputs differ now from those the last finished stage recorded."""
    recorded = {evaluation.task: evaluation.logits_sha256 for evaluation in last.evaluations}
    return [f"task '{evaluation.task}': test logits changed since stage {last.stage} ended"
            for evaluation in run.verifier.evaluate(learned) if recorded.get(evaluation.task) != evaluation.logits_sha256]


def carry_records(run: StreamRun, previous: RunRecord | None, checkpoint: StageCheckpoint) -> None:
    """The finished stages' records and matrix rows, as the checkpoint holds them; where results.json differs
    (or holds a stage the checkpoint does not: killed between the two writes) the log names it."""
    record, width = run.record, len(run.record.tasks)
    record.stages = list(checkpoint.stages)
    record.score_matrix = [row + [None] * (width - len(row)) for row in checkpoint.manifest["score_matrix"]]
    record.completed_stages = checkpoint.stage
    record.environment = checkpoint.manifest["environment"]
    if previous is not None and previous.run_id is not None:
        record.run_id = previous.run_id
    elif checkpoint.manifest["run_id"] is not None:
        record.run_id = checkpoint.manifest["run_id"]
    record.history = previous.history if previous is not None else []
    rebuilt = []
    if previous is not None:
        for index, stage in enumerate(record.stages):
            old = previous.stages[index].to_dict() if index < len(previous.stages) else None
            rebuilt += differences(old, stage.to_dict(), f"stages[{index}]")
            old_row = previous.score_matrix[index] if index < len(previous.score_matrix) else None
            rebuilt += differences(widened(old_row, previous, width), record.score_matrix[index], f"score_matrix[{index}]")
        if len(previous.stages) > checkpoint.stage:
            log.warning("resume: %s records %d stage(s), the checkpoint %d: stage %d onwards trains again",
                        run.output_dir / RESULTS_FILE, len(previous.stages), checkpoint.stage, checkpoint.stage + 1)
    if rebuilt:
        log.warning("resume: %s differs from the checkpoint in %s: %s. Took the checkpoint's (re-verified just now).",
                    run.output_dir / RESULTS_FILE, checkpoint.directory, "; ".join(path for path, _ in rebuilt[:8]))
    record.resumed = {"stages_restored": checkpoint.stage, "from": "checkpoint",
                      "verification": {"tasks": list(run.module.tasks), "outputs_identical": True},
                      "rebuilt_from_checkpoint": [path for path, _ in rebuilt]}
    run.refresh_parameters()
    record.update_metrics(run.reference)
    log.info("resume: restored stage %d of %d from %s; every learned task's outputs re-verified bit-identical",
             checkpoint.stage, len(run.plan), checkpoint.directory)

"""Weights & Biases: one run per stream, offline unless the user asks otherwise, as a stream callback.

Per run: the config, Lightning's per-stage train/val curves (through
``WandbLogger``), one ``stage/*`` record per stage, and at the end the
accuracy matrix as a ``wandb.Table``, the plots, and ACC/BWT/forgetting,
params-per-task and the last stage's task-ID-free inference numbers in the
summary. Runs of one experiment share a ``group``. A resumed or grown run is
a new W&B run in its run's group (``logger.group`` resolves against the saved
``run_name``): it logs the restored stages first, so its history and matrix
show the whole stream, and its summary says how many stages it restored.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pytorch_lightning.loggers import WandbLogger

from seqadapt.plots import existing_plots
from seqadapt.record import RunRecord, StageRecord
from seqadapt.stream.callbacks import StreamCallback

if TYPE_CHECKING:
    from seqadapt.stream.plan import Stage
    from seqadapt.stream.run import StreamRun

WandbMode = Literal["offline", "online", "disabled"]


@dataclass(frozen=True)
class WandbConfig:
    mode: WandbMode = "offline"
    project: str = "seqadapt"
    entity: str | None = None
    group: str | None = None
    name: str | None = None
    tags: tuple[str, ...] = ()


def selection_metrics(stage: StageRecord, prefix: str) -> dict[str, float]:
    """A stage's task-ID-free inference numbers as flat W&B keys (none if the stage measured none)."""
    selection = stage.task_selection
    if not selection:
        return {}
    record = {f"{prefix}/acc_with_task_id": selection["with_task_id"]["accuracy"]}
    for selector, result in selection["selectors"].items():
        record[f"{prefix}/task_id_acc/{selector}"] = result["task_id_accuracy"]
        record[f"{prefix}/acc_without_task_id/{selector}"] = result["accuracy"]
    return record


class WandbTracker(StreamCallback):
    """Owns the W&B run of one stream; always finished, also when the stream fails."""

    def __init__(self, config: WandbConfig, output_dir: Path, run_config: dict[str, Any]) -> None:
        import wandb

        if config.mode not in ("offline", "online", "disabled"):
            raise ValueError(f"unknown wandb mode '{config.mode}'; choose offline, online or disabled")
        self._wandb = wandb
        self.run = wandb.init(
            project=config.project, entity=config.entity, group=config.group, name=config.name,
            tags=list(config.tags), mode=config.mode, dir=str(output_dir), config=run_config,
            reinit="finish_previous",
        )
        self.lightning_logger = WandbLogger(experiment=self.run)

    def log_stage(self, stage: StageRecord) -> None:
        record = {
            "stage/index": stage.stage,
            "stage/guard_passed": int(stage.guard.passed),
            "stage/train_seconds": stage.train_seconds,
            "stage/eval_seconds": stage.eval_seconds,
            "stage/guard_seconds": stage.guard_seconds,
            "stage/end_check_seconds": stage.end_check_seconds,
            "stage/selection_seconds": stage.selection_seconds,
        }
        record.update({f"stage/score/{task}": score for task, score in stage.scores().items()})
        for evaluation in stage.evaluations:  # every metric of the task's kind, e.g. stage/spearman/sts
            record.update({f"stage/{name}/{evaluation.task}": value for name, value in evaluation.metrics.items()})
        record.update(selection_metrics(stage, "stage"))
        self.run.log(record)

    def log_results(self, results: RunRecord, plots: dict[str, Path]) -> None:
        rows = [[results.stages[i].task, *row] for i, row in enumerate(results.score_matrix)]
        record: dict[str, Any] = {"score_matrix": self._wandb.Table(columns=["after_stage", *results.tasks], data=rows)}
        record.update({f"plots/{name}": self._wandb.Image(str(path)) for name, path in plots.items()})
        self.run.log(record)
        self.run.summary.update({key: value for key, value in results.metrics.items() if value is not None})
        for task, budget in results.params_per_task.items():
            self.run.summary[f"params_per_task/{task}"] = budget["total_params"]
        self.run.summary["completed_stages"] = results.completed_stages
        if results.resumed is not None:  # the stages before these were trained by an earlier invocation
            self.run.summary["stages_restored"] = results.resumed["stages_restored"]
        if results.stages:
            self.run.summary.update(selection_metrics(results.stages[-1], "task_selection"))

    def finish(self, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)

    # ------------------------------------------------------------------ hooks
    def on_stream_start(self, run: StreamRun) -> None:
        for stage in run.record.stages:  # restored by resume: the dashboard shows the whole stream
            self.log_stage(stage)

    def on_stage_end(self, run: StreamRun, stage: Stage, record: StageRecord) -> None:
        self.log_stage(record)

    def on_stream_end(self, run: StreamRun) -> None:
        self.log_results(run.record, existing_plots(run.output_dir))

    def on_stream_finish(self, run: StreamRun, failed: bool) -> None:
        self.finish(failed=failed)

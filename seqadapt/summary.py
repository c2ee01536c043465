"""The end-of-run summary a person reads: the score matrix, ACC/BWT/forgetting, task-ID-free figures, wall
time, and where everything was written. Printed by ``seqadapt`` after a run and by ``seqadapt-report RUN_DIR``."""

from __future__ import annotations

import shlex
from pathlib import Path

from seqadapt.artefacts import artefact_dirs
from seqadapt.plots import existing_plots
from seqadapt.record import RESULTS_FILE, RunRecord


def matrix_table(record: RunRecord) -> list[str]:
    """The score matrix as aligned text: a row per stage, a column per task, blank before a task is learned."""
    names = record.labelled()
    widths = [max(6, len(name)) for name in names]
    labels = [f"{stage.stage}. {stage.task}" for stage in record.stages]
    first = max([len("after stage"), *(len(label) for label in labels)])
    lines = [f"{'after stage':<{first}}  " + "  ".join(f"{t:>{w}}" for t, w in zip(names, widths))]
    for label, row in zip(labels, record.score_matrix):
        cells = ("" if value is None else f"{value:.4f}" for value in row)
        lines.append((f"{label:<{first}}  " + "  ".join(f"{c:>{w}}" for c, w in zip(cells, widths))).rstrip())
    return lines


def metrics_line(record: RunRecord) -> str:
    names = {"acc": "ACC", "bwt": "BWT", "forgetting": "forgetting", "learning_accuracy": "LA", "fwt": "FWT"}
    parts = [f"{label} {record.metrics[key]:.4f}" for key, label in names.items() if record.metrics.get(key) is not None]
    return "  ".join(parts) if parts else "no metrics (no stage finished)"


def selection_lines(record: RunRecord) -> list[str]:
    """The last stage's task-ID-free figures, one line per selector, against the score with task IDs."""
    measured = [stage for stage in record.stages if stage.task_selection]
    if not measured:
        return ["without task IDs: not measured (selection.selectors=[])"]
    selection = measured[-1].task_selection
    lines = [f"without task IDs (after stage {measured[-1].stage}; with task IDs {selection['with_task_id']['accuracy']:.4f}):"]
    width = max(10, *map(len, selection["selectors"]))
    for name, result in selection["selectors"].items():
        lines.append(f"  {name:<{width}} task ID {result['task_id_accuracy']:.4f}   accuracy {result['accuracy']:.4f}")
    return lines


def where_lines(record: RunRecord, run_dir: Path) -> list[str]:
    """Where the run's files are, and the command that uploads its offline W&B run."""
    run_dir = Path(run_dir)
    lines = [f"results   {run_dir / RESULTS_FILE}"]
    plots = existing_plots(run_dir)
    if plots:
        lines.append("plots     " + ", ".join(str(path) for path in plots.values()))
    artefacts = sorted(path.name for path in artefact_dirs(run_dir))
    if artefacts:
        lines.append(f"artefacts {run_dir / 'artefacts'} ({', '.join(artefacts)})")
    for offline in sorted((run_dir / "wandb").glob("offline-run-*")):
        lines.append(f"W&B       {offline} (upload: wandb sync {shlex.quote(str(offline))})")
    return lines


def format_summary(record: RunRecord, run_dir: Path) -> str:
    """Everything above as one block of text."""
    done = f"{record.completed_stages}/{len(record.plan)} stages"
    header = f"seqadapt: {record.strategy} on {record.backbone}, seed {record.seed}, {done}, {record.wall_seconds:.0f} s"
    return "\n".join([header, "", *matrix_table(record), "", metrics_line(record), *selection_lines(record), "",
                      *where_lines(record, run_dir)])

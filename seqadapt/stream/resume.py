"""Resume: continue a run in its folder after its last finished stage, every restored task re-verified.

The verified artefacts are the source of truth, ``results.json`` only a
record derived from them. A stage counts as finished when its artefact
verifies (sealed manifest, weights of the recorded SHA-256, same backbone,
same task definition); the first one that is damaged is moved aside as
``artefacts/<task>.corrupt`` and trained again, with every stage after it, so
the run still ends as an uninterrupted one would. What results.json says about
the restored stages (their accuracy-matrix rows, evaluations, carried scores
and guard verdicts) is checked against the artefacts' learned evaluations and
rebuilt from them wherever it differs or is missing; only what no artefact
holds (timings, task selection, each stage's settings) is carried from the file as it is.

A stream whose order extends the folder's (``tasks.order`` = the saved order
plus new tasks) grows the run: the finished stages are restored and verified
the same way, then the new tasks train as the next stages, so the grown run
equals one that declared the whole order up front. Growing never repairs: a
damaged artefact is refused with the way out (resume the run as it is first).
Once the restored stages verify, ``run_config.yaml`` is rewritten to the
config the stream continues with (before results.json, so the two agree).

This is resume for strategies that isolate tasks; those that share weights resume from the last stage's
checkpoint instead (:mod:`seqadapt.stream.checkpoint_resume`), with the same growth and config rules.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from omegaconf import OmegaConf

from seqadapt.artefacts import (
    RUN_CONFIG,
    ArtefactError,
    CorruptArtefactError,
    TaskArtefact,
    check_written_by,
    has_artefact,
    install_task,
    load_task_artefact,
    set_aside,
    task_artefact_dir,
)
from seqadapt.distributed import is_rank_zero
from seqadapt.environment import current_environment, environment_differences
from seqadapt.io import atomic_write
from seqadapt.overrides import run_settings, same
from seqadapt.record import RESULTS_FILE, GuardVerdict, RecordError, RunRecord, StageRecord, TaskEvaluation
from seqadapt.saved_config import config_text, load_saved_config
from seqadapt.stream.callbacks import StreamCallback
from seqadapt.stream.plan import rotation

if TYPE_CHECKING:
    from seqadapt.stream.run import StreamRun

log = logging.getLogger("seqadapt")
SHOWN_DIFFERENCES = 8


class Resume(StreamCallback):
    """Loads every finished stage from its artefact, re-verifies it, and rebuilds its record from it.

    The loaded tasks are evaluated again and must reproduce, bit for bit, the
    score and outputs recorded in their manifests, on the same backbone; a
    failure there is refused (something other than the files changed), while a
    damaged artefact is set aside and its stage trained again.
    """

    def on_stream_start(self, run: StreamRun) -> None:
        previous, unreadable = previous_record(run.output_dir)
        require_extension(run, previous)
        added = added_tasks(run, previous)
        artefacts = verified_artefacts(run, previous.run_id if previous is not None else None, repair=not added)
        run.record.run_id = run_id_of(previous, artefacts) or run.record.run_id  # kept across resumes
        run.record.history = previous.history if previous is not None else []  # seqadapt-task's operations
        if artefacts:
            self._restore(run, previous, artefacts)
            run.record.resumed["tasks_added"] = added
        else:
            log.info("resume: no finished stage in %s, starting from stage 1", run.output_dir)
        if unreadable is not None:  # only now: a refused resume leaves the folder as it was
            keep_aside(run.output_dir / RESULTS_FILE, unreadable)
        if is_rank_zero():  # the config first: a results.json of the grown stream needs the grown config beside it
            keep_config_in_step(run)
            if artefacts:
                run.record.save(run.output_dir)

    def _restore(self, run: StreamRun, previous: RunRecord | None, artefacts: list[TaskArtefact]) -> None:
        restored = len(artefacts)
        for artefact in artefacts:
            install_task(run.module, artefact)
            run.verifier.learn(artefact.learned)
        recorded = previous.environment if previous is not None else {}
        if recorded.get("device") == "cuda" and torch.cuda.is_available():
            run.module.to("cuda")  # evaluate where the references were measured
        verdict = run.verifier.check(restored, "resume", run.verifier.evaluate(run.tasks[:restored]))
        if not verdict.passed:
            raise ArtefactError(not_reproduced(verdict.violations, recorded, run.module.device.type))
        record = run.record
        record.stages, record.score_matrix, rebuilt = carried_stages(run, previous, artefacts)
        record.completed_stages = restored
        record.resumed = {"stages_restored": restored, "verification": verdict.to_dict(), "rebuilt_from_artefacts": rebuilt}
        run.refresh_parameters()
        record.update_metrics(run.reference)
        log.info(
            "resume: restored %d finished stage(s) from %s; guard re-verified %s", restored,
            run.output_dir / "artefacts", ", ".join(verdict.checked),
        )


def require_extension(run: StreamRun, previous: RunRecord | None) -> None:
    """Refuse a stream whose tasks do not begin with the folder's run's: neither a resume nor a growth of it."""
    if previous is not None and run.record.tasks[: len(previous.tasks)] != previous.tasks:
        raise ArtefactError(
            f"{run.output_dir} holds a run of tasks {previous.tasks}, and this stream's tasks "
            f"{run.record.tasks} do not begin with them; resume with the config that run was started with, or "
            "grow it by appending tasks to its order"
        )


def added_tasks(run: StreamRun, previous: RunRecord | None) -> list[str]:
    """The tasks this resume adds to the run (a growth): those after the order the folder declares (its
    run_config.yaml's, else its results.json's), which this stream's order extends."""
    config = Path(run.output_dir) / RUN_CONFIG
    if config.is_file() or config.is_symlink():
        declared = list(OmegaConf.select(load_saved_config(config), "tasks.order", default=None) or [])
    else:
        declared = previous.tasks if previous is not None else run.record.tasks
    return run.record.tasks[len(declared):] if run.record.tasks[: len(declared)] == declared else []


def keep_config_in_step(run: StreamRun) -> None:
    """Rewrite the folder's run_config.yaml (atomically) where this resume runs the stream with other settings
    than it records (a growth, a changed number of epochs; see :mod:`seqadapt.overrides`), so a later plain resume
    continues the same stream. Called once the restored stages verified: a refused resume changes nothing."""
    path = Path(run.output_dir) / RUN_CONFIG
    if not run.record.config or not path.is_file():
        return
    saved = OmegaConf.to_container(load_saved_config(path))
    if same(run_settings(saved), run_settings(run.record.config)):
        return
    atomic_write(path, config_text(run.record.config))
    log.info("resume: %s now records the settings this run continues with (tasks.order %s)", path, run.record.tasks)


def not_reproduced(violations: list[str], recorded: dict[str, Any], device: str) -> str:
    """Why restored artefacts were refused: a different environment, said plainly, or a real change."""
    changed = environment_differences(recorded, current_environment(device))
    if changed:
        return (
            "restored artefacts do not reproduce their recorded outputs, and this resume runs in another "
            f"environment ({'; '.join(changed)}). Exact outputs depend on it, so this is no sign of forgetting. "
            "Resume with the recorded settings (e.g. OMP_NUM_THREADS=<threads>, trainer.accelerator=<device>, the "
            "same torch), or start a new run to re-baseline in this environment."
        )
    return "restored artefacts do not reproduce what was recorded when they were learned:\n  " + "\n  ".join(violations)


def previous_record(run_dir: Path) -> tuple[RunRecord | None, RecordError | None]:
    """The run's ``results.json`` (``None`` if there is none), or why it cannot be read."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        return None, None
    try:
        return RunRecord.load(path), None
    except RecordError as err:
        return None, err


def keep_aside(path: Path, error: RecordError) -> None:
    """An unreadable ``results.json`` is kept as ``results.json.corrupt`` (not deleted, not overwritten) and the
    record is rebuilt from the verified artefacts; the log says so."""
    kept = set_aside(path) if is_rank_zero() else path
    log.warning(
        "resume: cannot use %s (%s). Kept it as %s; the finished stages' records are rebuilt from their "
        "verified artefacts (their timings and task selection are not in the artefacts and are left out)",
        path, str(error).split(". Delete it")[0], kept,
    )


def run_id_of(previous: RunRecord | None, artefacts: list[TaskArtefact]) -> str | None:
    """The run's id: results.json's, else (unreadable, or written before runs had ids) its first artefact's."""
    if previous is not None and previous.run_id is not None:
        return previous.run_id
    return next((a.manifest["written_by_run"] for a in artefacts if "written_by_run" in a.manifest), None)


def verified_artefacts(run: StreamRun, run_id: str | None, repair: bool = True) -> list[TaskArtefact]:
    """The artefacts of the leading finished stages, each verified; the first damaged one ends the list and is
    moved aside (on rank 0) so its stage trains again, or, without ``repair`` (a growth), is refused with that way
    out. Artefacts that fit another model or stream, or that another run wrote (``run_id``: results.json's, else
    the first artefact's), are refused before anything is moved."""
    artefacts: list[TaskArtefact] = []
    owner = run.output_dir / RESULTS_FILE
    for index, task in enumerate(run.tasks):
        name, directory = task.spec.name, task_artefact_dir(run.output_dir, task.spec.name)
        if not has_artefact(run.output_dir, name):
            break
        try:
            artefact = load_task_artefact(directory, backbone_sha256=run.record.backbone_sha256)
        except (ArtefactError, OSError) as err:
            if not is_rank_zero() and not directory.is_dir():
                break  # rank 0 moved it aside while this rank read it
            if not isinstance(err, CorruptArtefactError):
                raise
            if not repair:
                raise ArtefactError(
                    f"cannot grow the run in {run.output_dir}: the artefact of its stage {index + 1} ({name}) does "
                    f"not verify: {err.problem} Resume the run first with its own tasks (seqadapt "
                    f"resume={run.output_dir}, no new tasks): it sets {name} aside and trains that stage again; then "
                    "grow it."
                ) from err
            if not is_rank_zero():
                break
            kept = set_aside(directory)
            log.warning(
                "resume: the artefact of stage %d (%s) does not verify, so the run continues from that stage: %s\n"
                "Moved %s aside to %s (kept, not deleted); stage %d and every stage after it are trained again.",
                index + 1, name, err.problem, directory, kept, index + 1,
            )
            break
        if artefact.manifest["stage"] != index + 1 or artefact.spec != task.spec:
            raise ArtefactError(
                f"artefact {artefact.directory} is stage {artefact.manifest['stage']} of another task definition; "
                f"this stream has '{name}' as stage {index + 1}"
            )
        check_written_by(directory, artefact.manifest, run_id, owner)
        if run_id is None and "written_by_run" in artefact.manifest:
            run_id, owner = artefact.manifest["written_by_run"], directory
        artefacts.append(artefact)
    return artefacts


def carried_stages(
    run: StreamRun, previous: RunRecord | None, artefacts: list[TaskArtefact]
) -> tuple[list[StageRecord], list[list[float | None]], list[str]]:
    """The restored stages' records and accuracy-matrix rows, as the artefacts prove them, and the
    ``results.json`` fields that had to be rebuilt (logged as a warning, naming the file and each field)."""
    learned = [artefact.learned for artefact in artefacts]
    stages, matrix, rebuilt = [], [], []
    for index in range(len(artefacts)):
        old = previous.stages[index] if previous is not None and index < len(previous.stages) else None
        stage = expected_stage(run, index, learned, old)
        if old is None:
            rebuilt.append((f"stages[{index}]", "missing"))
        else:
            rebuilt += differences(old.to_dict(), stage.to_dict(), f"stages[{index}]")
        row = run.record.row_of(stage)
        old_row = previous.score_matrix[index] if previous is not None and index < len(previous.score_matrix) else None
        rebuilt += differences(widened(old_row, previous, len(row)), row, f"score_matrix[{index}]")
        stages.append(stage)
        matrix.append(row)
    if rebuilt:
        shown = [f"{path} ({detail})" if detail else path for path, detail in rebuilt[:SHOWN_DIFFERENCES]]
        more = f" and {len(rebuilt) - SHOWN_DIFFERENCES} more" if len(rebuilt) > SHOWN_DIFFERENCES else ""
        log.warning(
            "resume: %s does not match the verified artefacts in %s: %s%s. Rebuilt those from the artefacts' "
            "manifests (each task's learned evaluation, re-verified just now).",
            run.output_dir / RESULTS_FILE, run.output_dir / "artefacts", "; ".join(shown), more,
        )
    return stages, matrix, [path for path, _ in rebuilt]


def widened(row: Any, previous: RunRecord | None, width: int) -> Any:
    """A row of results.json's matrix as this stream's matrix holds it: a grown run's rows are ``None`` for the
    tasks added after it."""
    if previous is not None and isinstance(row, list) and len(row) == len(previous.tasks):
        return row + [None] * (width - len(row))
    return row


def expected_stage(run: StreamRun, index: int, learned: list[TaskEvaluation], old: StageRecord | None) -> StageRecord:
    """Stage ``index``'s record as its artefacts prove it: the tasks learned before it were re-evaluated and
    unchanged (a full check, or a rotating check's share of them) or their tensors were (scores carried). Which
    check ran, and what a rotating one re-evaluated, is taken from the old record when it names them, else from
    the config. Timings and task selection are the old record's, which no artefact holds."""
    name, earlier = learned[index].task, learned[:index]
    kind = old.guard.kind if old is not None and old.guard.kind in ("full", "rotating", "tensors") else \
        run.verifier.check_kind(run.plan[index])
    kind = "full" if index == 0 else kind
    again = {e.task for e in earlier} if kind == "full" else set(_re_evaluated(run, index, kind, old))
    task = run.tasks[index]
    verifiable = {
        "stage": index + 1, "task": name, "train_examples": len(task.train), "test_examples": len(task.test),
        "evaluations": [*(e for e in earlier if e.task in again), learned[index]],
        "carried": {e.task: e.score for e in earlier if e.task not in again},
        "guard": GuardVerdict(index + 1, name, [e.task for e in earlier], [], kind,
                              [e.task for e in earlier if e.task in again and kind == "rotating"]),
    }
    if old is not None and old.stage == index + 1 and old.task == name:
        return replace(old, **verifiable)
    return StageRecord(train_seconds=0.0, train_processes=0, eval_seconds=0.0, guard_seconds=0.0, **verifiable)


def _re_evaluated(run: StreamRun, index: int, kind: str, old: StageRecord | None) -> list[str]:
    """The earlier tasks a rotating check of stage ``index`` re-evaluated: as its record says, else as the plan
    rotates them (:func:`~seqadapt.stream.plan.rotation`)."""
    if kind != "rotating":
        return []
    if old is not None and old.guard.kind == "rotating":
        return old.guard.re_evaluated
    stage = run.plan[index]
    return [stage.earlier[i].spec.name for i in rotation(stage, run.verifier.full_check_every, run.verifier.rotating)]


def differences(old: Any, new: Any, path: str) -> list[tuple[str, str]]:
    """(path, "file: x, artefacts: y") for every leaf where ``old`` (from results.json) differs from ``new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in [*new, *(k for k in old if k not in new)]
                for d in differences(old.get(key), new.get(key), f"{path}.{key}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [d for i, (a, b) in enumerate(zip(old, new)) for d in differences(a, b, f"{path}[{i}]")]
    if old == new and type(old) is type(new):
        return []
    return [(path, f"file: {_short(old)}, artefacts: {_short(new)}")]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

"""Whether a run's tasks are still what they were when learned: the check behind ``seqadapt-verify``, the pytest
plugin and :func:`seqadapt.testing.assert_preserved`, for a team's CI on another machine, months later.

Each task's artefact is loaded as serving loads it (:func:`seqadapt.serving.load_stream`: sealed, written by
this run, on the backbone it was trained on; one that does not verify is refused, naming why), its test split
rebuilt from the run's saved config and the source data, and evaluated again. What it is compared with
(:mod:`seqadapt.comparison`) depends on where this runs: in the environment the task was evaluated in when
learned, the outputs' SHA-256 must be the recorded one exactly; in another one, the outputs are compared with
the reference outputs its artefact stores, within a :class:`~seqadapt.comparison.Tolerance`, or, for an
artefact written before those were stored, its score alone. A test split whose rows are not those the task
was evaluated on (the source data or the task's definition changed) is a data change, reported as one and
never as forgetting.

The run folder's lock is held shared for the whole check (:class:`~seqadapt.lock.RunLock`): no run or resume
can change the artefacts meanwhile, and a folder being written is refused at once, naming its writer.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from transformers import PreTrainedTokenizerBase

from seqadapt.artefacts import RUN_CONFIG, ArtefactError, artefact_dirs, load_reference, read_manifest, task_artefact_dir
from seqadapt.build import build_tasks
from seqadapt.comparison import Measurement, TaskCheck, Tolerance, judge, recorded_environment
from seqadapt.data.splits import TaskSplits
from seqadapt.data.tasks import TaskSpec
from seqadapt.environment import current_environment
from seqadapt.errors import DataFileError, TaskDataError, TaskDefinitionError
from seqadapt.evaluation import rows_sha256, scored, task_outputs
from seqadapt.lock import RunLock
from seqadapt.model import SeqAdaptModule
from seqadapt.record import TaskEvaluation
from seqadapt.saved_config import load_saved_config
from seqadapt.serving import LoadedStream, load_stream, retired_note, run_record
from seqadapt.stream.loaders import LoaderConfig, StreamLoaders
from seqadapt.versions import retired_tasks

UNCOMPARED_DEFINITION_KEYS = ("description", "source")  # where the rows come from is judged by the rows themselves


class VerifyUsageError(ValueError):
    """Nothing can be checked as asked (not a run folder, a task it lacks); the message says what to give."""


@dataclass(frozen=True)
class RunCheck:
    """The verdict on a run: one :class:`TaskCheck` per task, in stage order, where it was measured, and the
    run's retired tasks (not served, so not checked)."""

    run_dir: Path
    environment: dict[str, Any]
    tasks: list[TaskCheck]
    seconds: float
    retired: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.tasks)

    @property
    def failed(self) -> list[TaskCheck]:
        return [check for check in self.tasks if not check.passed]

    def failure_report(self) -> str:
        """Which tasks are not preserved and why, one line each (an AssertionError's message)."""
        return (f"{len(self.failed)} of {len(self.tasks)} task(s) of {self.run_dir} not preserved:\n"
                + "\n".join(f"  {check.explanation}" for check in self.failed))


def check_run(
    run_dir: Path, tasks: list[str] | None = None, tolerance: Tolerance = Tolerance(), *, device: str = "auto",
    compare: str = "auto",
) -> RunCheck:
    """Check every task of ``run_dir`` that has an artefact (or ``tasks``) as the module docstring says.

    ``device``: ``auto`` evaluates where the run recorded its outputs when that device is here, else on the CPU.
    ``compare``: ``auto`` (exact in the recorded environment, else within ``tolerance``), ``exact`` or
    ``tolerance`` (for machines that differ in what the environment record does not hold, e.g. the CPU model).
    Raises :class:`VerifyUsageError`, :class:`~seqadapt.lock.RunLockedError` or
    :class:`~seqadapt.saved_config.SavedConfigError` when nothing can be checked.
    """
    started, run_dir = time.perf_counter(), Path(run_dir)
    if compare not in ("auto", "exact", "tolerance"):
        raise VerifyUsageError(f"compare must be auto, exact or tolerance, not {compare!r}")
    where = evaluation_device(device, require_run_folder(run_dir))
    with RunLock(run_dir, shared=True):
        names = tasks_to_check(run_dir, tasks)
        cfg = load_saved_config(run_dir / RUN_CONFIG)  # first: load_stream reads it too, as plain data only here
        stream, refused = _loaded(run_dir, names)
        environment, checks = current_environment(where.type), []
        if stream is not None:
            stream.module.to(where)
        for name in names:
            begun = time.perf_counter()
            if stream is None or name in refused:
                check = TaskCheck(name, "refused", "none", f"its artefact was refused: {refused[name]}")
            else:
                measured = _measured(stream.module, stream.tokenizer, cfg, run_dir, name)
                check = measured if isinstance(measured, TaskCheck) else judge(measured, environment, tolerance, compare)
            checks.append(replace(check, seconds=time.perf_counter() - begun))
        retired = sorted(retired_tasks(run_dir))
    return RunCheck(run_dir, environment, checks, time.perf_counter() - started, retired)


def run_tasks(run_dir: Path) -> list[str]:
    """The tasks of ``run_dir`` that have an artefact, in the run's stage order (results.json's, where readable)."""
    record = run_record(run_dir)
    order = record.tasks if record is not None else []
    names = [directory.name for directory in artefact_dirs(run_dir)]
    return sorted(names, key=lambda name: (order.index(name) if name in order else len(order), name))


def require_run_folder(run_dir: Path) -> Path:
    """``run_dir`` if it holds a run's saved config, else a :class:`VerifyUsageError` saying what to give."""
    if not (Path(run_dir) / RUN_CONFIG).is_file():
        what = "does not exist" if not Path(run_dir).exists() else f"has no {RUN_CONFIG}"
        raise VerifyUsageError(f"{run_dir} is not a seqadapt run folder: it {what}. Give the folder a run wrote "
                               f"(hydra.run.dir), which holds {RUN_CONFIG} and artefacts/")
    return Path(run_dir)


def tasks_to_check(run_dir: Path, tasks: list[str] | None) -> list[str]:
    """``tasks`` (all the run serves when ``None``), refused with the run's tasks when it names one the run
    lacks, and with how to serve it again when it names a retired one."""
    try:
        retired = retired_tasks(require_run_folder(run_dir))
    except ArtefactError as err:  # a damaged retired.json: which tasks are served is unknown
        raise VerifyUsageError(str(err)) from None
    asked = [name for name in tasks or () if name in retired]
    if asked:
        raise VerifyUsageError("; ".join(retired_note(run_dir, name, retired[name]) for name in asked))
    known = [name for name in run_tasks(run_dir) if name not in retired]
    unknown = [name for name in tasks or () if name not in known]
    if unknown or not known:
        raise VerifyUsageError(
            f"{run_dir} has no artefact for task(s) {unknown or 'any'}; its tasks are {known or 'none'} (only stages "
            "that finished and passed the guard leave one)"
        )
    return list(dict.fromkeys(tasks)) if tasks else known


def evaluation_device(requested: str, run_dir: Path) -> torch.device:
    """Where to evaluate: ``requested``, or for ``auto`` the device the run recorded when it is here, else CPU."""
    if requested == "auto":
        record = run_record(run_dir)
        recorded = record.environment.get("device") if record else None
        requested = recorded if recorded == "cuda" and torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(requested)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as err:
        raise VerifyUsageError(f"cannot evaluate on device {requested!r} here ({err}); give --device cpu") from None
    return device


def _loaded(run_dir: Path, names: list[str]) -> tuple[LoadedStream | None, dict[str, str]]:
    """The run's model with ``names`` installed as serving installs them, and each refused task with why."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # refusals and the environment are reported per task instead
        try:
            stream = load_stream(run_dir, names)
        except ArtefactError as err:  # none of them verifies
            return None, {name: str(err) for name in names}
    return stream, stream.refused


def _measured(
    module: SeqAdaptModule, tokenizer: PreTrainedTokenizerBase, cfg: DictConfig, run_dir: Path, name: str
) -> Measurement | TaskCheck:
    """Task ``name`` (installed in ``module``) evaluated again on its rebuilt test split; or, where it cannot
    be, the verdict that says why (its reference outputs refused, a data change)."""
    directory = task_artefact_dir(run_dir, name)
    manifest = read_manifest(directory)  # verified by load_stream a moment ago, under the same lock
    learned = TaskEvaluation.from_dict(manifest["learned"])
    try:
        reference = load_reference(directory, manifest)
    except ArtefactError as err:
        return TaskCheck(name, "refused", "none", f"its reference outputs were refused: {err}", learned.metric,
                         learned.score)
    split = rebuilt_test_split(cfg, manifest, learned)
    if isinstance(split, str):
        return TaskCheck(name, "data changed", "none", split, learned.metric, learned.score)
    settings = manifest["settings"]
    config = LoaderConfig(**{f.name: settings[f.name] for f in fields(LoaderConfig) if f.name in settings})
    outputs, targets = task_outputs(module, name, StreamLoaders(tokenizer, config).test(split))
    now = scored(module, name, outputs, targets, split.test)
    recorded = recorded_environment(manifest, run_record(run_dir))
    return Measurement(module, name, learned, now, outputs, targets, reference, recorded)


def rebuilt_test_split(cfg: DictConfig, manifest: dict[str, Any], learned: TaskEvaluation) -> TaskSplits | str:
    """The task's splits rebuilt from the run's saved config (``build_tasks`` on that task alone), under the
    definition it was learned with; or, as a data change, why they are not the ones it was evaluated on."""
    name = manifest["task"]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the training split's warnings were given when it was trained
            (rebuilt,) = build_tasks(OmegaConf.merge(cfg, {"tasks": {"order": [name]}}))
    except (TaskDefinitionError, DataFileError, TaskDataError, OSError) as err:
        return f"its test split cannot be rebuilt from the run's saved config: {err}"
    spec = TaskSpec.from_dict(manifest["spec"])
    differ = [f.name for f in fields(TaskSpec) if f.name not in UNCOMPARED_DEFINITION_KEYS
              and getattr(spec, f.name) != getattr(rebuilt.spec, f.name)]
    if differ:
        return (f"its definition now differs from the one it was learned with in {differ} (see "
                f"{name}.yaml in the run's task_dir): set those back to verify it as learned, or retrain it")
    recorded = manifest.get("reference", {}).get("test_rows_sha256")
    now = rows_sha256(rebuilt.test)
    if (recorded is not None and now != recorded) or len(rebuilt.test) != learned.examples:
        counted = f"{len(rebuilt.test)} rows now, {learned.examples} when learned"
        hashed = f"; rows SHA-256 {now[:12]}… now, {recorded[:12]}… when learned" if recorded else ""
        return (f"its test split's rows are not the ones it was evaluated on ({counted}{hashed}): "
                "the source data changed since it was learned, so its score cannot be compared. Restore that data, "
                "or retrain the task on the new data")
    return TaskSplits(spec, rebuilt.train, rebuilt.val, rebuilt.test)

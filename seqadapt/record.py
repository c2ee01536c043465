"""The typed run record: the one reader and writer of ``results.json``.

A :class:`RunRecord` holds what a stream decided (its plan), what each stage
measured (:class:`StageRecord`, with its :class:`TaskEvaluation` s and
:class:`GuardVerdict`) and the metrics derived from the score matrix. The
stream, resume, the report, the plots and W&B read and write results through
these classes, never through raw dicts, and every file carries a
``schema_version`` so an old or newer file is read or refused with a message
that says what to do.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from seqadapt import metrics
from seqadapt.io import atomic_write_json
from seqadapt.untrusted_json import UntrustedJsonError, check_type, construct, known_fields, read_json_object

# 0: files written before results.json carried a schema_version (same layout, no plan); 1: evaluations held
# `accuracy` and the matrix was `accuracy_matrix` (every task was a classifier); 2: `metric` + `score`, `score_matrix`;
# 3: `selection_sha256` (every selection statistic of the task) where 2 had `prototypes_sha256`
SCHEMA_VERSION = 3
RESULTS_FILE = "results.json"
MAX_RESULTS_BYTES = 256 * 2**20  # a 100-task stream's file is a few MB; a larger one is refused unread
CheckKind = Literal["full", "rotating", "tensors"]


class RecordError(ValueError):
    """``results.json`` is missing, damaged or of a schema this seqadapt cannot read; the message says what to do."""


@dataclass(frozen=True)
class TaskEvaluation:
    """What the guard compares: the task's primary score (``metric`` names it: accuracy, pearson, entity_f1,
    f1…), the exact test outputs' fingerprint and its selection data; ``metrics`` holds all its kind's metrics."""

    task: str
    metric: str
    score: float
    examples: int
    logits_sha256: str
    selection_sha256: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "evaluation", key: str = "") -> TaskEvaluation:
        """Read an evaluation, also one written before kinds other than classification (``accuracy``) or before
        selection statistics (``prototypes_sha256``); ``where`` and ``key`` name it in errors."""
        data = dict(data)
        if "accuracy" in data:
            data["metric"], data["score"] = "accuracy", data.pop("accuracy")
        if "prototypes_sha256" in data:  # before selection statistics: the class prototypes alone
            data["selection_sha256"] = data.pop("prototypes_sha256")
        return construct(cls, data, where, key)


@dataclass(frozen=True)
class GuardVerdict:
    """The forgetting guard's conclusion after one stage: which earlier tasks it checked and what changed."""

    stage: int
    trained_task: str
    checked: list[str]
    violations: list[str] = field(default_factory=list)
    kind: CheckKind = "full"
    re_evaluated: list[str] = field(default_factory=list)  # a rotating check's re-evaluated tasks (of ``checked``)

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "guard verdict", key: str = "") -> GuardVerdict:
        return construct(cls, data, where, key)


@dataclass
class StageRecord:
    """One stage: what it trained, how long each part took, its evaluations, the guard verdict, task selection.

    ``settings`` holds the config values that shaped how the stage trained (epochs, optimiser, batch size, its
    tasks' split sizes, by dotted key): a resume or growth may change them for the stages it trains
    (:mod:`seqadapt.overrides`). Files written before it lack it (empty).
    """

    stage: int
    task: str
    train_examples: int
    test_examples: int
    train_seconds: float
    train_processes: int
    eval_seconds: float
    guard_seconds: float  # the stage's own check; at the last stage, ``end_check_seconds`` completes the full one
    evaluations: list[TaskEvaluation]
    carried: dict[str, float]
    guard: GuardVerdict
    selection_seconds: float = 0.0
    task_selection: dict[str, Any] | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    end_check_seconds: float = 0.0
    imported: dict[str, Any] | None = None  # the folder the task was imported from (tasks.imports), not trained

    def scores(self) -> dict[str, float]:
        """Every task's score after this stage: evaluated now or carried over by a tensor check."""
        return {**self.carried, **{e.task: e.score for e in self.evaluations}}

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["evaluations"] = [asdict(e) for e in self.evaluations]
        data["guard"] = self.guard.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "stage record", key: str = "") -> StageRecord:
        check_type(data, cls, where, key)
        values = known_fields(cls, data)
        values["evaluations"] = [TaskEvaluation.from_dict(e, where, f"{key}.evaluations[{i}]")
                                 for i, e in enumerate(data["evaluations"])]
        values["guard"] = GuardVerdict.from_dict(data["guard"], where, f"{key}.guard")
        return cls(**values)


@dataclass(frozen=True)
class HistoryEntry:
    """One operation on a finished run's tasks (``seqadapt-task``): what it did to which task and version, when,
    with which settings differing from the run's, and what it measured. ``verified`` names the tasks re-evaluated
    and found bit-identical to how they were learned; ``selection`` is task-ID-free inference over the tasks
    served afterwards (selector -> task_id_accuracy, accuracy), ``None`` where the run measures none."""

    operation: Literal["retrain", "retire", "restore"]
    task: str
    version: int
    time: str
    seqadapt_version: str
    previous_version: int | None = None
    config_difference: dict[str, Any] = field(default_factory=dict)  # key -> {"run": value, "now": value}
    metric: str | None = None
    score_before: float | None = None
    score_after: float | None = None
    verified: list[str] = field(default_factory=list)
    selection: dict[str, dict[str, float]] | None = None
    seconds: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "history entry", key: str = "") -> HistoryEntry:
        return construct(cls, data, where, key)


@dataclass
class RunRecord:
    """A whole stream: its identity, its plan (the tasks of each stage), the score matrix and stage records.

    ``run_id`` is drawn when a run starts and kept when it is resumed; each
    artefact's manifest records it (``written_by_run``), so artefacts copied
    in from another run are told apart from the run's own.
    ``score_matrix[i][j]`` is task j's primary score (its evaluations name the metric) after stage i, ``None`` for a
    task not yet learned; it has one row per completed stage.
    """

    tasks: list[str]
    plan: list[list[str]]
    strategy: str = "adapter"
    backbone: str = "unnamed"
    backbone_sha256: str = ""
    seed: int = 0
    guard: dict[str, Any] = field(default_factory=dict)
    selectors: list[str] = field(default_factory=list)
    run_name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    score_matrix: list[list[float | None]] = field(default_factory=list)
    stages: list[StageRecord] = field(default_factory=list)
    completed_stages: int = 0
    params_per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    metrics: dict[str, float | None] = field(default_factory=dict)
    wall_seconds: float = 0.0
    environment: dict[str, Any] = field(default_factory=dict)  # device, precision, torch threads: output hashes depend on them
    resumed: dict[str, Any] | None = None
    history: list[HistoryEntry] = field(default_factory=list)  # seqadapt-task operations, oldest first
    run_id: str | None = field(default_factory=lambda: uuid.uuid4().hex)  # None: written before runs had one
    schema_version: int = SCHEMA_VERSION

    @property
    def finished(self) -> bool:
        return self.completed_stages == len(self.plan)

    @property
    def sequential(self) -> bool:
        """One task per stage: the order-dependent metrics (BWT, forgetting) are defined."""
        return all(len(stage) == 1 for stage in self.plan)

    def add_stage(self, stage: StageRecord, reference: list[float] | None = None) -> None:
        """Append ``stage`` and its row of the score matrix, then recompute the metrics."""
        self.stages.append(stage)
        self.completed_stages = len(self.stages)
        self.score_matrix.append(self.row_of(stage))
        self.update_metrics(reference)

    def task_metrics(self) -> dict[str, str]:
        """Each evaluated task's primary metric (its column of the score matrix is in it): what labels show."""
        return {e.task: e.metric for stage in self.stages for e in stage.evaluations}

    def labelled(self) -> list[str]:
        """The tasks as labels name them, with their metric: ``trec (accuracy)``, ``squad (f1)``."""
        metrics = self.task_metrics()
        return [f"{task} ({metrics[task]})" if task in metrics else task for task in self.tasks]

    def row_of(self, stage: StageRecord) -> list[float | None]:
        """``stage``'s row of the score matrix: each task's score after it, ``None`` where not yet learned."""
        scores = stage.scores()
        return [scores.get(task) for task in self.tasks]

    def update_metrics(self, reference: list[float] | None = None) -> None:
        """ACC, BWT, forgetting, learning accuracy (and FWT with a single-task ``reference``) from the matrix."""
        done = self.completed_stages
        if not self.sequential:
            self.metrics = metrics.joint_summary(self.score_matrix[0])
            return
        square = [row[:done] for row in self.score_matrix[:done]]
        self.metrics = metrics.summary(square, reference[:done] if reference else None)

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["stages"] = [stage.to_dict() for stage in self.stages]
        data["history"] = [asdict(entry) for entry in self.history]
        if self.resumed is None:
            del data["resumed"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = RESULTS_FILE) -> RunRecord:
        """Read a record of any schema version up to this one; a value of the wrong type is an
        :class:`~seqadapt.untrusted_json.UntrustedJsonError` naming its key."""
        version = data.get("schema_version", 0)
        if not isinstance(version, int) or version > SCHEMA_VERSION:
            raise RecordError(
                f"{source} has schema_version {version!r}; this seqadapt reads versions 0 to {SCHEMA_VERSION}. "
                "Upgrade seqadapt to read it (pip install -U seqadapt)."
            )
        data = {"run_id": None, **data}  # written before runs had an id
        if version == 0 and isinstance(data.get("tasks"), list):  # same layout; the plan was implied by the strategy
            tasks = data["tasks"]
            data["plan"] = [list(tasks)] if data.get("strategy") == "joint" else [[task] for task in tasks]
        if "accuracy_matrix" in data:  # versions 0 and 1: every task was a classifier, its score its accuracy
            data["score_matrix"] = data.pop("accuracy_matrix")
        check_type(data, cls, source)
        values = known_fields(cls, data)
        values["stages"] = [StageRecord.from_dict(stage, source, f"stages[{i}]") for i, stage in enumerate(data.get("stages", []))]
        values["history"] = [HistoryEntry.from_dict(entry, source, f"history[{i}]")
                             for i, entry in enumerate(data.get("history", []))]
        return cls(**{key: value for key, value in values.items() if key != "schema_version"})

    def save(self, directory: Path) -> Path:
        """Write ``<directory>/results.json`` atomically; returns its path."""
        path = Path(directory) / RESULTS_FILE
        atomic_write_json(path, self.to_dict())
        return path

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        """Read a results file (at most :data:`MAX_RESULTS_BYTES`), naming the file and the way out when it is
        empty, damaged, not a JSON object or holds a value of the wrong type."""
        path = Path(path)
        try:
            return cls.from_dict(read_json_object(path, MAX_RESULTS_BYTES), str(path))
        except FileNotFoundError:
            raise RecordError(f"{path} does not exist: the run wrote no stage yet, or this is not a run folder") from None
        except UntrustedJsonError as err:
            problem = err.problem if not err.key else f"{err.key} is {err.problem}"
            raise RecordError(f"{path} is empty or damaged ({problem}). {REBUILD}") from None


REBUILD = ("Delete it and resume the run (resume=<run dir>): finished stages are rebuilt from their verified "
           "artefacts.")

"""The typed run record: the one reader and writer of results.json, its schema version and its errors."""

import json

import pytest

from seqadapt.record import SCHEMA_VERSION, GuardVerdict, RecordError, RunRecord, StageRecord, TaskEvaluation
from tests.test_untrusted_json import NOT_AN_OBJECT


def stage(number: int, task: str, scores: dict[str, float], carried: dict[str, float] | None = None) -> StageRecord:
    return StageRecord(
        stage=number, task=task, train_examples=10, test_examples=5, train_seconds=1.0, train_processes=1,
        eval_seconds=0.1, guard_seconds=0.1,
        evaluations=[TaskEvaluation(task=t, metric="accuracy", score=a, examples=5, logits_sha256=t * 4) for t, a in scores.items()],
        carried=carried or {}, guard=GuardVerdict(stage=number, trained_task=task, checked=list(carried or {})),
    )


def two_stage_record() -> RunRecord:
    record = RunRecord(tasks=["a", "b"], plan=[["a"], ["b"]], strategy="adapter", seed=3)
    record.add_stage(stage(1, "a", {"a": 0.8}))
    record.add_stage(stage(2, "b", {"b": 0.6}, carried={"a": 0.7}))
    return record


def test_stages_fill_the_matrix_and_the_metrics():
    record = two_stage_record()
    assert record.score_matrix == [[0.8, None], [0.7, 0.6]]
    assert record.completed_stages == 2 and record.finished
    assert record.metrics["acc"] == pytest.approx(0.65) and record.metrics["bwt"] == pytest.approx(-0.1)


def test_a_joint_plan_has_one_row_and_no_order_metrics():
    record = RunRecord(tasks=["a", "b"], plan=[["a", "b"]], strategy="joint")
    record.add_stage(stage(1, "a+b", {"a": 0.9, "b": 0.5}))
    assert record.finished and not record.sequential
    assert record.metrics["acc"] == pytest.approx(0.7) and record.metrics["bwt"] is None


def test_save_and_load_round_trip_with_the_schema_version(tmp_path):
    record = two_stage_record()
    path = record.save(tmp_path)
    data = json.loads(path.read_text())
    assert data["schema_version"] == SCHEMA_VERSION and "resumed" not in data
    assert data["stages"][1]["guard"]["passed"] is True and data["completed_stages"] == 2
    assert RunRecord.load(path) == record


def test_a_file_without_schema_version_is_read_with_its_plan_implied(tmp_path):
    data = two_stage_record().to_dict()
    del data["schema_version"], data["plan"]
    (tmp_path / "results.json").write_text(json.dumps({**data, "strategy": "joint"}))
    assert RunRecord.load(tmp_path / "results.json").plan == [["a", "b"]]


def test_a_version_1_file_of_classifiers_is_read_as_accuracy_scores(tmp_path):
    record = two_stage_record()
    data = record.to_dict()
    data["schema_version"], data["accuracy_matrix"] = 1, data.pop("score_matrix")
    for stage in data["stages"]:
        for evaluation in stage["evaluations"]:
            del evaluation["metric"], evaluation["metrics"]
            evaluation["accuracy"] = evaluation.pop("score")
    (tmp_path / "results.json").write_text(json.dumps(data))
    loaded = RunRecord.load(tmp_path / "results.json")
    assert loaded.score_matrix == record.score_matrix and loaded.metrics == record.metrics
    assert loaded.stages[-1].evaluations == record.stages[-1].evaluations
    assert loaded.labelled() == ["a (accuracy)", "b (accuracy)"]


def test_a_newer_schema_is_refused_with_what_to_do(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps({**two_stage_record().to_dict(), "schema_version": 99}))
    with pytest.raises(RecordError, match=r"results.json has schema_version 99; this seqadapt reads versions 0 to .*Upgrade"):
        RunRecord.load(tmp_path / "results.json")


@pytest.mark.parametrize("content", ["", "{\"tasks\": [", "\xff"])
def test_an_empty_or_damaged_file_names_the_file_and_the_way_out(tmp_path, content):
    (tmp_path / "results.json").write_bytes(content.encode("latin-1"))
    with pytest.raises(RecordError, match=r"results.json is empty or damaged .*resume the run"):
        RunRecord.load(tmp_path / "results.json")


@NOT_AN_OBJECT
def test_a_file_that_is_not_a_json_object_names_the_file_and_the_way_out(tmp_path, content, problem):
    (tmp_path / "results.json").write_text(content)
    with pytest.raises(RecordError, match=rf"results.json is empty or damaged \({problem}\)\. Delete it and resume"):
        RunRecord.load(tmp_path / "results.json")


def wrong(path: list, value) -> dict:
    """A valid record's dict with the value at ``path`` replaced."""
    data = two_stage_record().to_dict()
    target = data
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "problem"),
    [(wrong(["tasks"], 5), "tasks is a JSON number (5), not an array"),
     (wrong(["stages", 1, "evaluations", 0, "score"], "high"), 'stages[1].evaluations[0].score is a JSON string ("high"), not a number'),
     (wrong(["stages", 0, "guard"], ["a"]), "stages[0].guard is a JSON array, not an object"),
     (wrong(["environment"], "cpu"), 'environment is a JSON string ("cpu"), not an object'),
     (wrong(["run_id"], 7), "run_id is a JSON number (7), not a string or null"),
     ({"schema_version": 3, "plan": []}, "an object without 'tasks'")],
    ids=["tasks", "score", "guard", "environment", "run_id", "no tasks"],
)
def test_a_value_of_the_wrong_type_is_named_by_its_key(tmp_path, data, problem):
    (tmp_path / "results.json").write_text(json.dumps(data))
    with pytest.raises(RecordError) as caught:
        RunRecord.load(tmp_path / "results.json")
    assert f"results.json is empty or damaged ({problem}). Delete it and resume" in str(caught.value)


def test_a_file_over_the_size_cap_is_refused(tmp_path, monkeypatch):
    path = two_stage_record().save(tmp_path)
    monkeypatch.setattr("seqadapt.record.MAX_RESULTS_BYTES", path.stat().st_size - 1)
    with pytest.raises(RecordError, match=rf"larger than the {path.stat().st_size - 1} bytes allowed "
                                          rf"\({path.stat().st_size} bytes\)\)\. Delete it"):
        RunRecord.load(path)


def test_each_run_gets_its_own_id_and_a_file_from_before_ids_still_loads(tmp_path):
    record, other = two_stage_record(), two_stage_record()
    assert len(record.run_id) == 32 and int(record.run_id, 16) >= 0 and record.run_id != other.run_id  # uuid4 hex
    assert RunRecord.load(record.save(tmp_path)).run_id == record.run_id
    data = record.to_dict()
    del data["run_id"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    assert RunRecord.load(tmp_path / "results.json").run_id is None

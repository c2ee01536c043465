"""W&B offline runs, read back from disk: what users' dashboards will show."""

import json
from pathlib import Path

import pytest

from seqadapt.record import GuardVerdict, RunRecord, StageRecord, TaskEvaluation
from seqadapt.tracking import WandbConfig, WandbTracker
from tests.wandb_reader import _records, read_offline_run


def test_tracker_logs_stage_results_and_finishes(tmp_path):
    tracker = WandbTracker(WandbConfig(group="g1", name="r1"), tmp_path, {"strategy": {"name": "adapter"}})
    stage = StageRecord(
        stage=1, task="a", train_examples=8, test_examples=4, train_seconds=1.5, train_processes=1, eval_seconds=0.5,
        guard_seconds=0.1, evaluations=[TaskEvaluation(task="a", metric="accuracy", score=0.75, examples=4, logits_sha256="0" * 64)],
        carried={}, guard=GuardVerdict(stage=1, trained_task="a", checked=[]),
        task_selection={
            "with_task_id": {"accuracy": 0.75},
            "selectors": {"entropy": {"task_id_accuracy": 0.9, "accuracy": 0.7}},
        },
    )
    tracker.log_stage(stage)
    results = RunRecord(tasks=["a"], plan=[["a"]], params_per_task={"a": {"total_params": 123}})
    results.add_stage(stage)
    tracker.log_results(results, {})
    tracker.finish()

    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    logged = read_offline_run(run_dir)
    assert logged["exit_code"] == 0
    assert logged["run"]["group"] == "g1" and logged["run"]["name"] == "r1"
    assert logged["config"]["strategy"] == {"name": "adapter"}
    assert logged["history"][0]["stage/score/a"] == 0.75 and logged["history"][0]["stage/guard_passed"] == 1
    assert logged["history"][1]["score_matrix/_type"] == "table-file"
    assert logged["summary"]["acc"] == 0.75 and logged["summary"]["bwt"] == 0.0
    assert "fwt" not in logged["summary"]  # undefined metrics are left out, not logged as null
    assert logged["summary"]["params_per_task/a"] == 123
    assert logged["history"][0]["stage/task_id_acc/entropy"] == 0.9
    assert logged["history"][0]["stage/acc_without_task_id/entropy"] == 0.7
    assert logged["summary"]["task_selection/task_id_acc/entropy"] == 0.9
    assert logged["summary"]["task_selection/acc_with_task_id"] == 0.75
    table = next((run_dir / "files" / "media" / "table").glob("score_matrix_*.table.json"))
    assert json.loads(table.read_text()) == {"columns": ["after_stage", "a"], "data": [["a", 0.75]]}


def test_failed_stream_finishes_its_run_with_nonzero_exit(tmp_path):
    tracker = WandbTracker(WandbConfig(), tmp_path, {})
    tracker.finish(failed=True)
    (run_dir,) = (tmp_path / "wandb").glob("offline-run-*")
    assert read_offline_run(run_dir)["exit_code"] == 1


def test_bad_mode_is_refused(tmp_path):
    with pytest.raises(ValueError, match="offline, online or disabled"):
        WandbTracker(WandbConfig(mode="sometimes"), tmp_path, {})


def test_reader_refuses_other_files(tmp_path):
    path = Path(tmp_path / "run-x.wandb")
    path.write_bytes(b"not a log")
    with pytest.raises(ValueError, match="not a W&B transaction log"):
        _records(path)

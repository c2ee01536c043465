import csv
import errno
import json
import os
import statistics

import pytest

from seqadapt.cli.report import aggregate, collect, main, write_report
from seqadapt.record import GuardVerdict, HistoryEntry, RunRecord, StageRecord, TaskEvaluation


def fabricate(root, name, strategy, seed, acc, bwt, forgetting, tasks=("a", "b"), completed=2):
    run = root / name
    run.mkdir(parents=True)
    metrics = {"acc": acc, "bwt": bwt, "forgetting": forgetting, "learning_accuracy": acc, "fwt": None}
    (run / "results.json").write_text(json.dumps({
        "tasks": list(tasks), "strategy": strategy, "seed": seed, "completed_stages": completed, "metrics": metrics,
    }))


@pytest.fixture
def runs(tmp_path):
    fabricate(tmp_path, "0", "adapter", 0, 0.80, 0.0, 0.0)
    fabricate(tmp_path, "1", "adapter", 1, 0.84, 0.0, 0.0)
    fabricate(tmp_path, "2", "finetune", 0, 0.60, -0.20, 0.22)
    fabricate(tmp_path, "3", "finetune", 1, 0.70, -0.10, 0.12)
    fabricate(tmp_path, "4", "finetune", 2, 0.10, -0.90, 0.90, completed=1)  # unfinished: must be ignored
    fabricate(tmp_path, "5", "joint", 0, 0.90, None, None, completed=1)
    return tmp_path


def test_aggregate_means_and_stds_over_seeds(runs):
    rows = {row["strategy"]: row for row in aggregate(collect(runs))}
    assert rows["adapter"]["acc"] == pytest.approx((0.82, statistics.stdev([0.80, 0.84])))
    assert rows["adapter"]["bwt"] == (0.0, 0.0)
    assert rows["finetune"]["seeds"] == [0, 1]
    assert rows["finetune"]["bwt"] == pytest.approx((-0.15, statistics.stdev([-0.20, -0.10])))
    assert rows["joint"]["bwt"] is None and rows["joint"]["acc"] == (0.90, 0.0)


def test_report_files(runs, tmp_path, capsys):
    out = tmp_path / "out"
    main([str(runs), "--out", str(out)])
    markdown = (out / "report.md").read_text()
    assert "| adapter | a > b | 2 | 0.8200 ± 0.0283 | 0.0000 ± 0.0000 | 0.0000 ± 0.0000 |" in markdown
    assert "| finetune | a > b | 2 | 0.6500 ± 0.0707 | -0.1500 ± 0.0707 | 0.1700 ± 0.0707 |" in markdown
    assert "| joint | a > b | 1 | 0.9000 ± 0.0000 | — | — |" in markdown
    rows = list(csv.DictReader(open(out / "report.csv")))
    assert [r["strategy"] for r in rows] == ["adapter", "finetune", "joint"]
    assert float(rows[1]["bwt_mean"]) == pytest.approx(-0.15)
    assert (out / "report.png").stat().st_size > 10_000
    assert "wrote" in capsys.readouterr().out


def test_empty_directory_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no finished run"):
        write_report(tmp_path)


def one_stage_record() -> RunRecord:
    record = RunRecord(tasks=["a"], plan=[["a"]], strategy="adapter", backbone="tiny")
    record.add_stage(StageRecord(
        stage=1, task="a", train_examples=4, test_examples=2, train_seconds=1.0, train_processes=1,
        eval_seconds=0.1, guard_seconds=0.1, evaluations=[TaskEvaluation("a", "accuracy", 0.5, 2, "0" * 64)], carried={},
        guard=GuardVerdict(stage=1, trained_task="a", checked=[]),
    ))
    return record


def test_one_run_directory_prints_the_run_summary(tmp_path, capsys):
    one_stage_record().save(tmp_path)
    main([str(tmp_path)])
    out = capsys.readouterr().out
    assert "seqadapt: adapter on tiny, seed 0, 1/1 stages" in out and "1. a" in out and "ACC 0.5000  BWT 0.0000" in out
    assert f"results   {tmp_path / 'results.json'}" in out and not (tmp_path / "report.md").exists()
    assert "history: no task retrained, retired or restored (seqadapt-task)" in out


def test_one_run_directory_shows_what_was_done_to_its_tasks(tmp_path, capsys):
    record = one_stage_record()
    record.history = [
        HistoryEntry("retrain", "a", 2, "2026-01-01T00:00:00+00:00", "0.1.0", previous_version=1, metric="accuracy",
                     config_difference={"trainer.max_epochs": {"run": 2, "now": 4}}, score_before=0.5, score_after=0.75,
                     verified=["b"], selection={"mahalanobis": {"task_id_accuracy": 0.9, "accuracy": 0.7}}, seconds=3.21),
        HistoryEntry("retire", "a", 2, "2026-01-02T00:00:00+00:00", "0.2.0", verified=["b"]),
    ]
    record.save(tmp_path)
    main([str(tmp_path)])
    out = capsys.readouterr().out.splitlines()
    assert out[out.index("history (seqadapt-task; oldest first):") + 1:][:2] == [
        "  2026-01-01T00:00:00+00:00  retrain  a  v1 -> v2  accuracy 0.5000 -> 0.7500; trainer.max_epochs 2 -> 4; "
        "verified unchanged: b; without task IDs mahalanobis 0.9000/0.7000; seqadapt 0.1.0, 3.2 s",
        "  2026-01-02T00:00:00+00:00  retire   a  v2  verified unchanged: b; seqadapt 0.2.0, 0.0 s",
    ]


def test_a_report_that_cannot_be_written_leaves_the_old_one_whole(runs, tmp_path, monkeypatch):
    out = tmp_path / "out"
    write_report(runs, out)
    before = {path.name: path.read_bytes() for path in out.iterdir()}
    fabricate(runs, "6", "joint", 1, 0.50, None, None, completed=2)  # the next report would differ

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match=r"no space left to write .*report\.md"):
        write_report(runs, out)
    assert {path.name: path.read_bytes() for path in out.iterdir()} == before

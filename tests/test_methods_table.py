"""The methods table: per strategy, mean ± std over every order and seed of its runs, costs included."""

import csv
import statistics

import pytest

from seqadapt.cli.report import write_report
from seqadapt.methods_table import method_rows, to_markdown
from seqadapt.record import RunRecord
from tests.test_record import stage


def run(strategy: str, order: list[str], seed: int, first: float, later: float, seconds: float, method_bytes: int):
    record = RunRecord(tasks=order, plan=[[t] for t in order], strategy=strategy, seed=seed)
    a, b = order
    record.add_stage(stage(1, a, {a: first}))
    record.add_stage(stage(2, b, {b: 0.6}, carried={a: later}))
    for s in record.stages:
        s.train_seconds = seconds
    record.params_per_task = {t: {"total_params": 100, "trainable_params": 1000, "bytes": 400,
                                  "method_bytes": method_bytes if t == a else 0} for t in order}
    return record


def runs():
    return [run("replay", ["a", "b"], 0, 0.8, 0.7, 10.0, 600), run("replay", ["b", "a"], 0, 0.9, 0.9, 12.0, 200),
            run("replay", ["a", "b"], 1, 0.8, 0.8, 14.0, 600), run("adapter", ["a", "b"], 0, 0.8, 0.8, 5.0, 0)]


def test_a_row_averages_over_orders_and_seeds_with_its_costs():
    rows = {row["strategy"]: row for row in method_rows(runs(), ("adapter",))}
    replay = rows["replay"]
    assert (replay["runs"], replay["orders"], replay["seeds"]) == (3, 2, 2)
    accs = [(0.7 + 0.6) / 2, (0.9 + 0.6) / 2, (0.8 + 0.6) / 2]  # the last row of each matrix, by hand
    assert replay["acc"] == pytest.approx((statistics.fmean(accs), statistics.stdev(accs)))
    assert replay["bwt"] == pytest.approx((statistics.fmean([-0.1, 0.0, 0.0]), statistics.stdev([-0.1, 0.0, 0.0])))
    assert replay["trained_params"] == (1000, 0.0)
    stored = [(400 + 600 + 400) / 2, (400 + 200 + 400) / 2, (400 + 600 + 400) / 2]  # own bytes + memory, per task
    assert replay["stored_bytes"] == pytest.approx((statistics.fmean(stored), statistics.stdev(stored)))
    assert replay["train_seconds"] == pytest.approx((statistics.fmean([20, 24, 28]), statistics.stdev([20, 24, 28])))
    assert replay["fwt"] is None
    assert [row["strategy"] for row in method_rows(runs(), ("adapter",))] == ["adapter", "replay"]
    assert "| replay | 3 (2 × 2) | 0.7000 ± 0.0500 |" in to_markdown(method_rows(runs()))


def test_seqadapt_report_writes_the_methods_table_beside_the_per_order_one(tmp_path):
    for index, record in enumerate(runs()):
        (tmp_path / str(index)).mkdir()
        record.save(tmp_path / str(index))
    paths = write_report(tmp_path)
    assert {"markdown", "methods_markdown", "methods_csv", "methods_plot"} <= set(paths)
    rows = list(csv.DictReader(open(paths["methods_csv"])))
    assert [r["strategy"] for r in rows] == ["adapter", "replay"]
    assert float(rows[1]["stored_bytes_mean"]) == pytest.approx(statistics.fmean([700, 500, 700]))
    assert paths["methods_plot"].stat().st_size > 10_000

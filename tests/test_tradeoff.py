"""The trade-off experiment: one command sweeps single-task runs over grid points and seeds and leaves the
report (table, CSV, plot) beside them; the report names each method and size and where each reaches 99% of full
fine-tuning."""

from __future__ import annotations

import csv
import errno
import os

import pytest

from seqadapt.tradeoff import FULL, Point, point_name, reach, to_markdown, write_csv
from tests.cli.test_train import compose_train, multirun


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["+tradeoff=houlsby_m8"], ("houlsby adapter", "m=8")),
        (["+tradeoff=lora_r4"], ("LoRA", "r=4")),
        (["+tradeoff=parallel_m16"], ("parallel adapter", "m=16")),
        (["+tradeoff=ia3"], ("(IA)³", "")),
        (["+tradeoff=top_k3"], ("top-k FT", "k=3")),
        (["+tradeoff=layernorm"], ("LayerNorm only", "")),
        (["+tradeoff=finetune"], (FULL, "")),
        (["adapter=pfeiffer"], ("pfeiffer adapter", "m=64")),
    ],
)
def test_every_grid_point_composes_and_is_named_by_its_method_and_size(overrides, expected):
    cfg = compose_train(["experiment=tradeoff", *overrides])
    assert point_name(cfg) == expected
    assert cfg.logger.backend == "none" and list(cfg.selection.selectors) == []


def test_ia3_and_lora_points_keep_their_scale_and_rate():
    lora = compose_train(["experiment=tradeoff", "+tradeoff=lora_r16"])
    assert lora.adapter.alpha / lora.adapter.rank == 2.0 and lora.optim.learning_rate == 1e-3
    assert compose_train(["experiment=tradeoff", "+tradeoff=ia3"]).optim.learning_rate == 3e-3
    assert compose_train(["experiment=tradeoff", "+tradeoff=top_k2"]).guard.mode == "report"


def _point(method: str, size: str, params: int, *scores: float) -> Point:
    return Point("t", "accuracy", method, size, params, scores, tuple(range(len(scores))))


def test_reach_finds_the_smallest_budget_at_99_percent_of_full_fine_tuning():
    points = [_point("LoRA", "r=1", 10, 0.80, 0.82), _point("LoRA", "r=8", 100, 0.891, 0.891),
              _point("LoRA", "r=64", 1000, 0.90), _point("(IA)³", "", 5, 0.5), _point(FULL, "", 10_000, 0.90, 0.90)]
    reached = reach(points)["t"]
    assert reached["LoRA"].params == 100  # 0.891 >= 0.99 * 0.90; the 10-parameter point falls short
    assert reached["(IA)³"] is None and reached[FULL].params == 10_000
    assert reach([_point("LoRA", "r=1", 10, 0.8)]) == {}  # no full fine-tuning run: nothing to reach
    markdown = to_markdown(points)
    assert "| LoRA | r=1 | 0.8100 ± 0.0141 | 10 |" in markdown and "| full FT |  | 0.9000 ± 0.0000 | 10.0K |" in markdown
    assert "| LoRA | r=8 (100) |" in markdown and "| (IA)³ | — |" in markdown


def test_one_command_sweeps_the_grid_and_writes_the_report(toy_task_dir, tmp_path):
    sweep = tmp_path / "sweep"
    done = multirun(toy_task_dir, sweep, "experiment=tradeoff", "+tradeoff=houlsby_m2,lora_r1,top_k1,finetune",
                    "tasks.order=[colors],[animals]", "seed=0,1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"wrote {sweep / 'tradeoff.png'}" in done.stdout
    with open(sweep / "tradeoff.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 8 and {row["seeds"] for row in rows} == {"0 1"}
    params = {(row["task"], row["method"]): int(row["trainable_params"]) for row in rows}
    for task in ("colors", "animals"):
        assert params[(task, "LoRA")] < params[(task, "houlsby adapter")] < params[(task, "top-k FT")] < params[(task, FULL)]
    assert (sweep / "tradeoff.png").stat().st_size > 10_000
    markdown = (sweep / "tradeoff.md").read_text()
    assert "| animals (accuracy) | params | colors (accuracy) | params |" in markdown  # tasks by name
    assert "Smallest budget reaching 99% of full fine-tuning" in markdown and "16 single-task runs" in markdown


def test_runs_of_one_method_at_several_learning_rates_are_never_pooled(toy_task_dir, tmp_path):
    sweep = tmp_path / "sweep"
    done = multirun(toy_task_dir, sweep, "experiment=tradeoff", "+tradeoff=lora_r1,ia3", "tasks.order=[colors]",
                    "optim.learning_rate=1e-3,1e-2")
    assert done.returncode == 0, done.stderr[-3000:]
    with open(sweep / "tradeoff.csv") as handle:
        sizes = sorted((row["method"], row["size"]) for row in csv.DictReader(handle))
    assert sizes == [("(IA)³", "lr=0.001"), ("(IA)³", "lr=0.01"), ("LoRA", "r=1 lr=0.001"), ("LoRA", "r=1 lr=0.01")]


def test_the_trade_off_table_is_replaced_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "tradeoff.csv"
    write_csv([_point("LoRA", "r=1", 10, 0.8)], path)
    before = path.read_bytes()

    def full_disk(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match=r"no space left to write .*tradeoff\.csv"):
        write_csv([_point("LoRA", "r=1", 10, 0.8), _point(FULL, "", 10_000, 0.9)], path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["tradeoff.csv"]

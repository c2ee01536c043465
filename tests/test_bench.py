"""The benchmark suite runs end to end (on a tiny backbone here; real numbers come from ``python -m bench.run``)."""

import json

import pytest

from bench import run as bench
from seqadapt.backbone import BackboneConfig
from tests.conftest import TINY


@pytest.fixture
def tiny_bench(monkeypatch):
    tiny = BackboneConfig(name="tiny", source="random", **bench.PACKAGE, model_config={"model_type": "bert", **TINY})
    monkeypatch.setattr(bench, "BACKBONES", {"minilm": tiny})
    monkeypatch.setattr(bench, "SEQ_LENS", (16,))


def test_every_section_measures_and_the_report_states_each_target(tiny_bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "bench_memory", lambda backbone, seq_len: {
        "backbone": backbone, "seq_len": seq_len, "adapter": {"peak_rss_mb": 1.0}, "finetune": {"peak_rss_mb": 2.0},
        "adapter_vs_finetune_peak": 0.5,
    })  # the child process is exercised on its own below
    bench.main(["--steps", "2", "--warmup", "1", "--guard-tasks", "1", "3", "--out", str(tmp_path)])
    results = json.loads((tmp_path / "results.json").read_text())
    (training,) = results["training"]
    assert training["step_seconds"]["adapter"] > 0 and training["step_seconds"]["finetune"] > 0
    assert training["trainable_params"]["adapter"] < training["trainable_params"]["finetune"]
    assert [row["tasks"] for row in results["guard"]["stages"]] == [1, 3]
    assert all(0 < row["guard_share"] < 1 for row in results["guard"]["stages"])
    assert results["artefact"]["artefact_bytes"] > 0
    markdown = (tmp_path / "results.md").read_text()
    assert len(results["verdicts"]) == 4 and markdown.count("| yes |") + markdown.count("| NO |") == 4


def test_memory_is_measured_in_a_fresh_process(tiny_bench):
    result = bench.bench_memory("minilm", 16, steps=1)  # the child loads the real packaged backbone
    assert result["adapter"]["peak_rss_mb"] > result["adapter"]["loaded_rss_mb"] > 50
    assert 0 < result["adapter_vs_finetune_peak"] < 1.5

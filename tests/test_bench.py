"""The benchmark suite runs end to end (on a tiny backbone here; real numbers come from ``python -m bench.run``)."""

import json

import pytest
import transformers

from bench import common
from bench import run as bench
from bench import selection_cost
from seqadapt.backbone import BackboneConfig
from tests.conftest import TINY


@pytest.fixture
def tiny_bench(monkeypatch):
    tiny = BackboneConfig(name="tiny", source="random", **common.PACKAGE, model_config={"model_type": "bert", **TINY})
    for module in (common, bench):  # bench.run reads the backbones directly and through common.build_module
        monkeypatch.setattr(module, "BACKBONES", {"minilm": tiny})
    monkeypatch.setattr(bench, "SEQ_LENS", (16,))
    monkeypatch.setattr(selection_cost, "PROJECTION_DIM", 32)


def test_every_section_measures_and_the_report_states_each_target(tiny_bench, tmp_path, monkeypatch):
    monkeypatch.setattr(bench, "bench_memory", lambda backbone, seq_len: {
        "backbone": backbone, "seq_len": seq_len, "adapter": {"peak_rss_mb": 1.0, "loaded_rss_mb": 0.5},
        "finetune": {"peak_rss_mb": 2.0, "loaded_rss_mb": 0.5},
        "adapter_vs_finetune_peak": 0.5,
    })  # the child process is exercised on its own below
    bench.main(["--steps", "2", "--warmup", "1", "--guard-tasks", "1", "3", "--out", str(tmp_path), "--skip-peers",
                "--selection-tasks", "2", "3", "--selection-inputs", "70", "--families"])
    results = json.loads((tmp_path / "results.json").read_text())
    (training,) = results["training"]
    assert training["step_seconds"]["adapter"] > 0 and training["step_seconds"]["finetune"] > 0
    assert training["trainable_params"]["adapter"] < training["trainable_params"]["finetune"]
    assert [row["tasks"] for row in results["guard"]["stages"]] == [1, 3]
    assert all(0 < row["full_check_share"] < 1 for row in results["guard"]["stages"])
    assert [row["tensor_check_kind"] for row in results["guard"]["stages"]] == ["full", "tensors"]
    assert results["guard"]["same_matrix"]
    sizes = [v["artefact_bytes"] for v in results["artefact"]["by_bottleneck"].values()]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] > 0  # m = 64, 48, 32
    selection = results["selection"]
    assert [row["tasks"] for row in selection["rows"]] == [2, 3]
    for row in selection["rows"]:
        assert set(row["ms_per_1000"]) == {"told the task", "entropy", "calibrated_entropy", "prototype", "mahalanobis", "ranpac"}
        assert all(ms > 0 for ms in row["ms_per_1000"].values())
    assert selection["bytes_per_task"]["gram"] == 32 * 33 // 2 * 4  # symmetric: its upper triangle, float32
    assert "Serving without task IDs" in (tmp_path / "results.md").read_text()
    (mixed,) = results["mixed"]
    assert mixed["argmax_equal"] and mixed["max_abs_diff"] < 1e-4 and mixed["seconds"]["mixed"] > 0
    (inference,) = results["inference"]
    assert set(inference["overhead"]) == {"64", "32"} and inference["flop_share"]["32"] < inference["flop_share"]["64"]
    methods = {row["method"]: row for row in results["methods"]}
    assert list(methods) == ["houlsby m=32", "lora r=32", "parallel m=64", "ia3", "full FT"]
    assert all(row["step_seconds"] > 0 and row["forward_seconds"] > 0 for row in methods.values())
    assert methods["ia3"]["trainable_params"] < methods["lora r=32"]["trainable_params"] < methods["full FT"]["trainable_params"]
    assert methods["full FT"]["overhead"] == 0.0 and methods["full FT"]["step_vs_finetune"] == 1.0
    markdown = (tmp_path / "results.md").read_text()
    assert "| lora r=32 |" in markdown
    targets = markdown.split("| target | measured | holds |")[1]
    assert len(results["verdicts"]) == 6 and targets.count("| yes |") + targets.count("| NO |") == 6


def test_memory_is_measured_in_a_fresh_process(tiny_bench):
    result = bench.bench_memory("minilm", 16, steps=1)  # the child loads the real packaged backbone
    assert result["adapter"]["peak_rss_mb"] > result["adapter"]["loaded_rss_mb"] > 50
    assert 0 < result["adapter_vs_finetune_peak"] < 1.5


def fabricated_peers(seqadapt_mean: float) -> dict:
    step = {"seqadapt": 0.5, "adapterhub": 0.6, "adapterhub-no-dropout": 0.5, "lora": 0.65, "finetune": 0.9}
    return {
        "versions": {"torch": "t", "transformers": "4.57.6", "adapters": "1.3.0", "peft": "p"},
        "lora_rank": {"minilm": 65},
        "training": [{"backbone": "minilm", "seq_len": 64, "step_seconds": step,
                      "seqadapt_vs_adapterhub": 0.5 / 0.6, "seqadapt_vs_lora": 0.5 / 0.65}],
        "accuracy": {"task": "trec", "steps": 60, "batch": 32, "learning_rate": 1e-3, "seeds": [0, 1, 2],
                     "test_examples": 500,
                     "accuracy": {"seqadapt": [seqadapt_mean] * 3, "adapterhub": [0.89, 0.90, 0.91]},
                     "mean": {"seqadapt": seqadapt_mean, "adapterhub": 0.90},
                     "std": {"seqadapt": 0.01, "adapterhub": 0.01}},
    }


@pytest.mark.parametrize(("seqadapt_mean", "within"), [(0.89, True), (0.80, False)])
def test_peer_comparison_states_its_targets(seqadapt_mean, within):
    results = {"training": [], "inference": [],
               "guard": {"stages": [{"tasks": 20, "full_check_share": 0.5, "tensor_check_share": 0.01}]},
               "artefact": {"ratio": 0.01}, "peers": fabricated_peers(seqadapt_mean)}
    rows = {row["target"].split(" (")[0]: row for row in bench.verdicts(results)}
    assert rows["adapter step <= 1.0x AdapterHub double_seq_bn step"]["holds"]
    assert rows["accuracy after 60 equal steps within noise of AdapterHub"]["holds"] is within
    markdown = "\n".join(bench.peers_markdown(results["peers"]))
    assert "| minilm | 64 | 0.500 | 0.600 | 0.500 | 0.650 | 0.900 | 0.83x | 0.77x |" in markdown


def test_adapter_flop_share_matches_a_hand_count():
    config = transformers.BertConfig(hidden_size=384, intermediate_size=1536)
    # per token and layer: 2*(4*384^2 + 2*384*1536) + 4*64*384 = 3,637,248 FLOPs; adapters 8*384*64 = 196,608
    assert bench.adapter_flop_share(config, 64, 64) == pytest.approx(196_608 / 3_637_248)


def test_the_families_section_measures_a_decoder_and_an_encoder_decoder(monkeypatch, tmp_path):
    from bench import families

    def tiny(model_type: str, **shape) -> BackboneConfig:
        return BackboneConfig(name=f"tiny-{model_type}", source="random", **common.PACKAGE,
                              model_config={"model_type": model_type, **shape})

    monkeypatch.setattr(families, "FAMILY_BACKBONES", {
        "gpt2": tiny("gpt2", n_embd=32, n_layer=2, n_head=2),
        "t5": tiny("t5", d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2),
    })
    families.main(["--steps", "1", "--warmup", "0", "--seq-len", "16", "--out", str(tmp_path)])
    rows = json.loads((tmp_path / "results.json").read_text())["rows"]
    assert [row["model_type"] for row in rows] == ["gpt2", "t5"]
    for row in rows:
        assert row["step_seconds"]["adapter"] > 0 and row["forward_seconds"]["adapters"] > 0
        assert row["flop_share"] > 0 and row["task_share"] > 0  # tiny models: m=64 adapters outweigh d=32 layers
    assert "| gpt2 | gpt2 |" in (tmp_path / "results.md").read_text()
    shares = {row["model"]: row for row in json.loads((tmp_path / "results.json").read_text())["shares"]}
    assert shares["gpt2"]["backbone_params"] == 124_439_808 and shares["t5-small"]["backbone_params"] == 60_506_624
    assert shares["t5-small"]["adapter_slots"] == 2 * 2 * 6  # two per layer, encoder and decoder


def test_the_long_stream_bench_measures_every_stage_and_serving(tmp_path):
    """bench.long_stream on the first three tasks of tasks=long50 and a tiny random backbone: one cost row per
    stage from its CostLog callback, the rotation the plan prescribes (stage 2 re-evaluates intent_recognition,
    the last stage ends with the full check), and serving measured in a fresh process."""
    from bench import long_stream

    long_stream.main(["--tasks", "3", "--train", "16", "--val", "8", "--test", "8", "--out", str(tmp_path),
                      "backbone=tiny_random", "selection.selectors=[mahalanobis]"])
    results = json.loads((tmp_path / "results.json").read_text())
    stages = results["stages"]
    assert [row["task"] for row in stages] == ["intent_recognition", "implicatures", "disfl_qa"]
    assert [row["guard_kind"] for row in stages] == ["full", "rotating", "full"]
    assert stages[1]["re_evaluated"] == ["intent_recognition"] and stages[2]["end_check_seconds"] > 0
    assert all(row["passed"] and row["wall_seconds"] > row["train_seconds"] > 0 for row in stages)
    assert [row["run_bytes"] for row in stages] == sorted(row["run_bytes"] for row in stages)
    serving = results["serving"]
    assert serving["load"]["tasks"] == 3 and serving["load"]["artefact_read_seconds"] > 0
    assert serving["batch"]["rows"] == 32 and serving["batch"]["told_seconds"] > 0
    assert [row["tasks"] for row in serving["selection_by_candidates"]] == [3]
    text = (tmp_path / "results.md").read_text()
    assert "| target | measured | holds |" in text and (tmp_path / "cost_vs_tasks.png").stat().st_size > 0

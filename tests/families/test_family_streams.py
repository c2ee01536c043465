"""A two-task stream on a tiny model of every family, run as users run it (``backbone=pretrained
backbone.name=<folder>``): the guard proves earlier tasks bit-identical, BWT is 0, and the saved artefacts
serve the learned predictions back."""

from __future__ import annotations

import pytest

from seqadapt.artefacts import read_manifest, task_artefact_dir
from seqadapt.cli.train import run
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.serving import load_stream
from tests.cli.test_train import FAST, compose_train
from tests.families.tiny import FAMILY_TYPES

FAST_FAMILY = [override for override in FAST if not override.startswith("backbone=")]


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_a_stream_on_every_family_forgets_nothing_and_serves_what_it_learned(family_dirs, toy_task_dir, tmp_path, model_type):
    cfg = compose_train([*FAST_FAMILY, "backbone=pretrained", f"backbone.name={family_dirs[model_type]}",
                         f"task_dir={toy_task_dir}", "tasks.order=[colors,animals]", "adapter.bottleneck=8",
                         "selection.selectors=[mahalanobis]"])
    results = run(cfg, tmp_path / "run").to_dict()
    assert results["completed_stages"] == 2 and results["metrics"]["bwt"] == 0.0  # strict guard: a change raises
    stream = load_stream(tmp_path / "run")
    sizes = SplitSizes(train=cfg.data.train_size, val=cfg.data.val_size, test=cfg.data.test_size, seed=cfg.data.split_seed)
    for task in stream.tasks:
        spec = load_task_spec(task, toy_task_dir)
        test = build_splits(spec, read_source(spec), sizes).test
        predictions = stream.predict(test["text"], task)
        accuracy = sum(p.answer["label"] == spec.labels[y] for p, y in zip(predictions, test["label"])) / len(test)
        assert accuracy == read_manifest(task_artefact_dir(tmp_path / "run", task))["learned"]["score"]
    untold = stream.predict(test["text"][:4])  # task-ID-free selection runs on the family's states too
    assert all(p.task in stream.tasks for p in untold)

"""A two-task stream on a tiny model of every family, run as users run it (``backbone=pretrained
backbone.name=<folder>``): the guard proves earlier tasks bit-identical, BWT is 0, and the saved artefacts
serve the learned predictions back."""

from __future__ import annotations

import pytest

from seqadapt.artefacts import read_manifest, task_artefact_dir
from seqadapt.cli.train import run
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.serving import load_stream
from tests.cli.test_predict import served_test_split
from tests.cli.test_train import FAST, compose_train
from seqadapt.data import make_loader
from seqadapt.evaluation import task_outputs
from seqadapt.families import family_of
from seqadapt.kinds import get_kind
from seqadapt.kinds.text_metrics import text_scores
from tests.families.tiny import FAMILY_TYPES, write_toy_text_task

FAST_FAMILY = [override for override in FAST if not override.startswith("backbone=")]


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_a_stream_on_every_family_forgets_nothing_and_serves_what_it_learned(family_dirs, toy_task_dir, tmp_path, model_type):
    cfg = compose_train([*FAST_FAMILY, "backbone=pretrained", f"backbone.name={family_dirs[model_type]}",
                         f"task_dir={toy_task_dir}", "tasks.order=[colors,animals]", "adapter.bottleneck=8",
                         "selection.selectors=[mahalanobis]"])
    results = run(cfg, tmp_path / "run").to_dict()
    assert results["completed_stages"] == 2 and results["metrics"]["bwt"] == 0.0  # strict guard: a change raises
    stream = load_stream(tmp_path / "run")
    for task in stream.tasks:
        test, _ = served_test_split(stream, tmp_path / "run", toy_task_dir, cfg, task)
    untold = stream.predict(test["text"][:4])  # task-ID-free selection runs on the family's states too
    assert all(p.task in stream.tasks for p in untold)


@pytest.mark.parametrize("model_type", ["gpt2", "llama", "t5", "bart"])
def test_a_text_to_text_task_streams_is_guarded_and_serves_its_generations(family_dirs, toy_task_dir, tmp_path, model_type):
    write_toy_text_task(toy_task_dir)
    decoder = family_of(model_type).architecture == "decoder"
    selectors = "[mahalanobis,perplexity]" if decoder else "[mahalanobis]"
    cfg = compose_train([*FAST_FAMILY, "backbone=pretrained", f"backbone.name={family_dirs[model_type]}",
                         f"task_dir={toy_task_dir}", "tasks.order=[color_words,animals]", "adapter.bottleneck=8",
                         f"selection.selectors={selectors}"])
    results = run(cfg, tmp_path / "run").to_dict()
    assert results["completed_stages"] == 2 and results["metrics"]["bwt"] == 0.0  # the guard re-generated stage 1
    learned = results["stages"][0]["evaluations"][0]
    assert learned["task"] == "color_words" and learned["metric"] == "exact_match"
    assert set(learned["metrics"]) == {"exact_match", "token_f1", "rouge_l"}
    assert set(results["stages"][1]["task_selection"]["selectors"]) == set(selectors.strip("[]").split(","))
    stream = load_stream(tmp_path / "run")
    spec = load_task_spec("color_words", toy_task_dir)
    sizes = SplitSizes(train=cfg.data.train_size, val=cfg.data.val_size, test=cfg.data.test_size, seed=cfg.data.split_seed)
    test = build_splits(spec, read_source(spec), sizes).test
    inputs = [{"sentence": text.removesuffix(" colour:")} for text in test["text"]]
    predictions = stream.predict(inputs, "color_words")
    loader = make_loader((spec, test), stream.tokenizer, max_length=cfg.data.max_length, batch_size=cfg.data.eval_batch_size)
    outputs, _ = task_outputs(stream.module, "color_words", loader)
    # the artefact reproduces the generations it was learned with, bit for bit, and predict serves them
    assert get_kind("text_to_text").fingerprint(outputs) == learned["logits_sha256"]
    assert [p.answer["generated"] for p in predictions] == stream.module.heads["color_words"].texts(outputs)
    manifest = read_manifest(task_artefact_dir(tmp_path / "run", "color_words"))
    assert text_scores([p.answer["generated"] for p in predictions], test["targets"])["exact_match"] == manifest["learned"]["score"]
    if decoder:
        chosen = stream.predict(inputs[:3], selector="perplexity")
        assert all(p.selected_by == "perplexity" and p.task in stream.tasks for p in chosen)

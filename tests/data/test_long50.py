"""The offline long stream (conf/tasks/long50.yaml, ``tasks=long50``): at least 50 distinct tasks, every one of a kind
the default encoder backbone runs, every one giving at the long-stream sizes a full test split, and no test text in
two tasks. The expectations are read from the preset, the definitions and their data, not from a table here."""

import json
import re
from itertools import combinations

import pytest

from seqadapt.backbone import package_path
from seqadapt.build import resolve_task_dir
from seqadapt.data import build_splits, load_task_stream, read_source
from seqadapt.data.splits import task_split_sizes
from seqadapt.families import family_of
from seqadapt.families.generation import require_language_model
from seqadapt.kinds import TASK_KINDS, kind_of
from tests.cli.test_train import compose_train

@pytest.fixture(scope="module")
def stream():
    cfg = compose_train(["experiment=long_stream"])  # tasks=long50 at the sizes the experiment sets
    return cfg, load_task_stream(list(cfg.tasks.order), resolve_task_dir(cfg.task_dir))


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def test_the_preset_names_at_least_50_distinct_tasks_and_every_definition_loads(stream):
    cfg, specs = stream
    assert len(cfg.tasks.order) >= 50 and len(set(cfg.tasks.order)) == len(cfg.tasks.order)
    assert [spec.name for spec in specs] == list(cfg.tasks.order)


def test_every_task_is_of_a_kind_the_default_encoder_backbone_runs(stream):
    cfg, specs = stream
    config = json.loads((package_path(cfg.backbone.package, cfg.backbone.path) / "config.json").read_text())
    family = family_of(config["model_type"])
    assert family.architecture == "encoder"  # all-MiniLM-L6-v2: text_to_text tasks cannot run on it
    with pytest.raises(ValueError, match="needs a language model"):
        require_language_model(None, family, "a text_to_text task")
    assert {spec.type for spec in specs} == set(TASK_KINDS) - {"text_to_text"}  # every other kind is in the stream


@pytest.mark.integration
def test_every_task_fills_its_test_split_and_no_two_tasks_share_a_test_text(stream):
    cfg, specs = stream
    test_texts = {}
    for spec in specs:
        sizes = task_split_sizes(cfg.data, spec.name)
        splits = build_splits(spec, read_source(spec), sizes)
        assert len(splits.test) == sizes.test == 100, spec.name
        assert len(splits.train) > 0 and len(splits.val) > 0, spec.name
        test_texts[spec.name] = {normalised(text) for text in kind_of(spec).texts(splits.test)}
    shared = {(a, b): sorted(test_texts[a] & test_texts[b])[:3]
              for a, b in combinations(test_texts, 2) if test_texts[a] & test_texts[b]}
    assert not shared

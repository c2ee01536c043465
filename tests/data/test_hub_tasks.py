"""The Hub definitions (GLUE, SQuAD, CoNLL-2003) for users with a network: composed here without one, each
read from a stand-in for ``datasets.load_dataset`` shaped like the Hub dataset, through its kind."""

import datasets
import pytest
from datasets import Dataset

from seqadapt.build import resolve_task_dir
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.kinds import kind_of
from tests.cli.test_train import compose_train

HUB = resolve_task_dir("tasks/hub")
CONTEXT = "Normans came from Normandy in France. They spoke Norman French."
ROWS = {  # one Hub-shaped row per dataset layout (column names and value types as on the Hub)
    "cola": {"sentence": "The cat sat.", "label": 1, "idx": 0},
    "sst2": {"sentence": "a gem of a film", "label": 1, "idx": 0},
    "mrpc": {"sentence1": "He left.", "sentence2": "He went away.", "label": 1, "idx": 0},
    "qqp": {"question1": "How to cook?", "question2": "How do I cook?", "label": 1, "idx": 0},
    "stsb": {"sentence1": "A man sings.", "sentence2": "A man is singing.", "label": 4.8, "idx": 0},
    "mnli": {"premise": "A dog runs.", "hypothesis": "An animal moves.", "label": 0, "idx": 0},
    "qnli": {"question": "Where?", "sentence": "In Paris.", "label": 0, "idx": 0},
    "rte": {"sentence1": "It rained.", "sentence2": "It was wet.", "label": 0, "idx": 0},
    "squad": {"id": "1", "title": "Normans", "context": CONTEXT, "question": "Where is Normandy?",
              "answers": {"text": ["France"], "answer_start": [CONTEXT.index("France")]}},
    "squad_v2": {"id": "1", "title": "Normans", "context": CONTEXT, "question": "Who is king?",
                 "answers": {"text": [], "answer_start": []}},
    "conll2003": {"id": "0", "tokens": ["EU", "rejects", "German", "call"], "pos_tags": [22, 42, 16, 21],
                  "chunk_tags": [11, 21, 11, 12], "ner_tags": [3, 0, 7, 0]},
}


def test_every_hub_definition_is_listed_here():
    assert sorted(path.stem for path in HUB.glob("*.yaml")) == sorted(ROWS)


@pytest.mark.parametrize("name", sorted(ROWS))
def test_a_hub_definition_reads_its_datasets_layout_through_its_kind(name, monkeypatch):
    spec = load_task_spec(name, HUB)
    asked = []

    def load_dataset(path, config=None, split=None, revision=None):
        asked.append((path, config, split))
        row = dict(ROWS[name])
        if name == "squad_v2" and split == "train":  # training needs an answerable question
            row = ROWS["squad"]
        second = dict(row)  # another target, so the task can learn something
        if isinstance(row.get("label"), float):
            second["label"] = 1.5
        elif "label" in row:
            second["label"] = 1 - row["label"]
        return Dataset.from_list([row, second] * 10)

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    splits = build_splits(spec, read_source(spec), SplitSizes(train=8, val=2, test=4))
    assert {split for _, _, split in asked} == set(spec.source["splits"].values())
    assert len(splits.train) and len(splits.test)
    assert kind_of(spec).texts(splits.test)  # canonical rows of the task's kind


def test_experiment_glue_composes_houlsbys_setup_on_bert_base():
    cfg = compose_train(["experiment=glue"])
    assert cfg.backbone.name == "bert-base-uncased" and cfg.adapter.bottleneck == 64 and cfg.adapter.train_layer_norm
    assert list(cfg.tasks.order) == ["cola", "sst2", "mrpc", "qqp", "stsb", "mnli", "qnli", "rte"]
    assert resolve_task_dir(cfg.task_dir) == HUB
    assert [load_task_spec(name, HUB).type for name in cfg.tasks.order].count("regression") == 1  # STS-B


def test_experiment_kinds_mixes_every_kind():
    cfg = compose_train(["experiment=kinds"])
    types = {load_task_spec(name).type for name in cfg.tasks.order}
    assert types == {"classification", "regression", "token_classification", "extractive_qa"}
    assert any(load_task_spec(name).text_fields for name in cfg.tasks.order)  # and a sentence pair

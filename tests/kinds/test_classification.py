"""Classification through the task-kind seam: what it reads (one text or a pair), encodes, scores and prints."""

import warnings

import pytest
import torch
from datasets import Dataset

from seqadapt.data import TaskDataError, TaskDefinitionError, TaskSpec
from seqadapt.kinds import TASK_KINDS, RequestError, get_kind, kind_of
from seqadapt.kinds.base import HeadContext

SPEC = TaskSpec(name="t", labels=("neg", "pos"), source={}, text_field="body", label_field="y",
                label_map={"0": "neg", "1": "pos"}, drop_labels=("x",))
KIND = get_kind("classification")


def test_a_definition_names_its_kind_and_classification_is_the_default():
    assert kind_of(SPEC) is KIND and SPEC.type == "classification" and "classification" in TASK_KINDS
    with pytest.raises(TaskDefinitionError, match=r"task 't' has type 'ranking'; choose one of \['classification', "):
        TaskSpec(name="t", labels=("a", "b"), source={}, type="ranking")


def test_prepare_reads_the_declared_fields_into_canonical_rows():
    raw = Dataset.from_dict({"body": ["good", "bad", "skip", "fine"], "y": ["1", "0", "x", "1"], "extra": [1, 2, 3, 4]})
    rows = KIND.prepare(SPEC, raw, "train")
    assert rows.column_names == ["text", "label"] and rows["text"] == ["good", "bad", "fine"] and rows["label"] == [1, 0, 1]
    with pytest.raises(TaskDataError, match=r"column 'body' is not in the data .*fix text_field in tasks/t.yaml"):
        KIND.prepare(SPEC, Dataset.from_dict({"text": ["a"], "y": ["1"]}), "test")


def test_encode_tokenises_once_with_labels_and_the_collator_pads(tokenizer):
    encoded = KIND.encode(SPEC, Dataset.from_dict({"text": ["a b c", "a"], "label": [1, 0]}), tokenizer, max_length=4)
    assert set(encoded.column_names) >= {"input_ids", "attention_mask", "labels"} and "text" not in encoded.column_names
    assert max(len(ids) for ids in encoded["input_ids"]) == 4  # truncated to max_length
    batch = KIND.collator(tokenizer)([encoded[0], encoded[1]])
    assert batch["input_ids"].shape == (2, 4) and batch["labels"].tolist() == [1, 0]


def test_loss_metrics_fingerprint_and_prediction_follow_the_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    head = KIND.make_head(SPEC, HeadContext(hidden_size=8, pooling="mean", dropout=0.0), train=None)
    targets = {"labels": labels}
    assert KIND.metrics(SPEC, logits, targets, None, head) == {"accuracy": 2 / 3} and KIND.primary_metric == "accuracy"
    assert KIND.correct(logits, targets, head).tolist() == [True, True, False]
    assert torch.isclose(KIND.loss(logits, labels, head, reduction="sum"), 3 * KIND.loss(logits, labels, head))
    assert KIND.fingerprint(logits) == KIND.fingerprint(logits.clone())
    assert KIND.fingerprint(logits) != KIND.fingerprint(logits + 1e-6)  # bit for bit
    (prediction,) = KIND.predictions(SPEC, logits[1:2], {"labels": labels[1:2]}, None, head)
    assert prediction["label"] == "pos"
    assert prediction["probabilities"]["pos"] == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item())
    # confidence: minus the normalised entropy; a uniform row is -1, a near one-hot row near 0
    confidence = KIND.confidence(torch.tensor([[0.0, 0.0], [50.0, 0.0]]), torch.ones(2, 3))
    assert confidence[0].item() == pytest.approx(-1.0) and confidence[1].item() == pytest.approx(0.0, abs=1e-6)
    assert head(torch.randn(3, 5, 8), torch.ones(3, 5)).shape == (3, 2) and KIND.prototype_classes(SPEC) == 2


def test_what_the_task_check_asks_texts_dropped_counts_and_shown_rows():
    raw = Dataset.from_dict({"body": ["good", "bad", "skip", "fine", "skip"], "y": ["1", "0", "x", "1", "x"]})
    rows = KIND.prepare(SPEC, raw, "train")
    assert KIND.texts(rows) == ["good", "bad", "fine"]
    assert KIND.dropped(SPEC, raw) == {"drop_labels 'x'": 2}
    assert KIND.dropped(SPEC, Dataset.from_dict({"body": ["a"], "y": ["1"]})) == {}
    assert KIND.counts(SPEC, rows) == {"neg": 1, "pos": 2}
    assert KIND.counts(SPEC, rows.select([0])) == {"neg": 0, "pos": 1}  # every declared label, zeros included
    assert KIND.show(SPEC, rows[1]) == "[neg] bad"


def test_check_train_warns_about_declared_labels_it_never_sees():
    spec = TaskSpec(name="t", labels=("neg", "pos", "meh", "odd"), source={})
    with pytest.warns(UserWarning, match=r"task 't': declared label\(s\) \['meh', 'odd'\] never occur in its 3 training"):
        KIND.check_train(spec, Dataset.from_dict({"text": ["a", "b", "c"], "label": [0, 1, 1]}))
    with pytest.raises(TaskDataError, match="all 2 training examples have the label 'pos'"):
        KIND.check_train(spec, Dataset.from_dict({"text": ["a", "b"], "label": [1, 1]}))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every declared label seen: no warning
        KIND.check_train(SPEC, Dataset.from_dict({"text": ["a", "b"], "label": [0, 1]}))


PAIR = TaskSpec(name="nli", labels=("entailment", "non-entailment"), source={}, text_fields=("premise", "hypothesis"))


def test_a_pair_task_reads_two_fields_and_encodes_them_as_one_pair(tokenizer):
    raw = Dataset.from_dict({"premise": ["a cat sleeps", "it rains"], "hypothesis": ["an animal rests", "it is dry"],
                             "label": ["entailment", "non-entailment"]})
    rows = KIND.prepare(PAIR, raw, "train")
    assert rows.column_names == ["text", "text_pair", "label"] and rows["text_pair"] == ["an animal rests", "it is dry"]
    assert KIND.texts(rows) == ["a cat sleeps\nan animal rests", "it rains\nit is dry"]  # a pair is one input
    assert KIND.show(PAIR, rows[0]) == "[entailment] a cat sleeps ||| an animal rests"
    encoded = KIND.encode(PAIR, rows, tokenizer, max_length=32)
    ids = encoded[0]["input_ids"]
    assert ids == tokenizer("a cat sleeps", "an animal rests")["input_ids"]
    assert set(encoded[0]["token_type_ids"]) == {0, 1}  # both segments marked
    with pytest.raises(TaskDataError, match=r"column 'hypothesis' is not in the data .*fix text_fields"):
        KIND.prepare(PAIR, raw.remove_columns("hypothesis"), "train")
    with pytest.raises(TaskDefinitionError, match=r"lists 3 text_fields"):
        TaskSpec(name="t", labels=("a", "b"), source={}, text_fields=("x", "y", "z"))


def test_a_request_holds_the_tasks_own_fields_and_a_missing_one_names_the_line():
    assert KIND.request(PAIR, {"premise": "p", "hypothesis": "h"}, "input line 1") == {
        "text": "p", "text_pair": "h", "label": -1}
    with pytest.raises(RequestError, match=r'input line 3: "hypothesis" is missing; task \'nli\' reads \[\'premise\', \'hypothesis\'\]'):
        KIND.request(PAIR, {"premise": "p"}, "input line 3")
    with pytest.raises(RequestError, match=r'input line 2: "premise" must be non-blank text, not 5'):
        KIND.request(PAIR, {"premise": 5, "hypothesis": "h"}, "input line 2")

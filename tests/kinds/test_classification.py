"""The task-kind seam, through its one kind so far: what classification reads, encodes, scores and prints."""

import warnings

import pytest
import torch
from datasets import Dataset

from seqadapt.data import TaskDataError, TaskDefinitionError, TaskSpec
from seqadapt.kinds import TASK_KINDS, get_kind, kind_of

SPEC = TaskSpec(name="t", labels=("neg", "pos"), source={}, text_field="body", label_field="y",
                label_map={"0": "neg", "1": "pos"}, drop_labels=("x",))
KIND = get_kind("classification")


def test_a_definition_names_its_kind_and_classification_is_the_default():
    assert kind_of(SPEC) is KIND and SPEC.type == "classification" and set(TASK_KINDS) == {"classification"}
    with pytest.raises(TaskDefinitionError, match=r"task 't' has type 'ranking'; choose one of \['classification'\]"):
        TaskSpec(name="t", labels=("a", "b"), source={}, type="ranking")


def test_prepare_reads_the_declared_fields_into_canonical_rows():
    raw = Dataset.from_dict({"body": ["good", "bad", "skip", "fine"], "y": ["1", "0", "x", "1"], "extra": [1, 2, 3, 4]})
    rows = KIND.prepare(SPEC, raw, "train")
    assert rows.column_names == ["text", "label"] and rows["text"] == ["good", "bad", "fine"] and rows["label"] == [1, 0, 1]
    with pytest.raises(TaskDataError, match=r"column 'body' is not in the data .*fix text_field in tasks/t.yaml"):
        KIND.prepare(SPEC, Dataset.from_dict({"text": ["a"], "y": ["1"]}), "test")


def test_encode_tokenises_once_with_labels_and_the_collator_pads(tokenizer):
    encoded = KIND.encode(Dataset.from_dict({"text": ["a b c", "a"], "label": [1, 0]}), tokenizer, max_length=4)
    assert set(encoded.column_names) >= {"input_ids", "attention_mask", "labels"} and "text" not in encoded.column_names
    assert max(len(ids) for ids in encoded["input_ids"]) == 4  # truncated to max_length
    batch = KIND.collator(tokenizer)([encoded[0], encoded[1]])
    assert batch["input_ids"].shape == (2, 4) and batch["labels"].tolist() == [1, 0]


def test_loss_metrics_fingerprint_and_prediction_follow_the_logits():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0], [3.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    assert KIND.metrics(logits, labels) == {"accuracy": 2 / 3} and KIND.primary_metric == "accuracy"
    assert KIND.correct(logits, labels).tolist() == [True, True, False]
    assert torch.isclose(KIND.loss(logits, labels, reduction="sum"), 3 * KIND.loss(logits, labels))
    assert KIND.fingerprint(logits) == KIND.fingerprint(logits.clone())
    assert KIND.fingerprint(logits) != KIND.fingerprint(logits + 1e-6)  # bit for bit
    prediction = KIND.prediction(SPEC, "good", logits[1], None)
    assert prediction.label == "pos" and prediction.probabilities["pos"] == pytest.approx(torch.sigmoid(torch.tensor(1.0)).item())
    head = KIND.make_head(SPEC, hidden_size=8, pooling="mean", dropout=0.0)
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

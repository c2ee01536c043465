"""Extractive QA: what it reads, how a long context becomes windows, and how windows become scored answers."""

import math

import pytest
import torch
from datasets import Dataset

from seqadapt.data import TaskDataError, TaskDefinitionError, TaskSpec
from seqadapt.kinds import TASK_KINDS, RequestError
from seqadapt.kinds.base import PAD_VALUES, cat_padded
from seqadapt.kinds import extractive_qa
from seqadapt.kinds.extractive_qa import PAD_LOGIT, ExtractiveQAKind, SpanHead

KIND = ExtractiveQAKind()
LONG = (
    "The river flows north through the old city. Many bridges cross it near the market. In winter the water "
    "freezes and children skate on it. The Denver Broncos won the game in February. Later that year the "
    "stadium was rebuilt with money from the city."
)
ANSWER_AT = LONG.index("Denver Broncos")


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """A TaskSpec checks its type against the registry, which seqadapt.kinds fills."""
    monkeypatch.setitem(TASK_KINDS, "extractive_qa", TASK_KINDS.get("extractive_qa", KIND))


def spec(**changes):
    return TaskSpec(**{"name": "qa", "source": {}, "type": "extractive_qa", "context_field": "passage", **changes})


def raw(contexts, questions, answers):
    return Dataset.from_dict({"passage": contexts, "question": questions, "answers": answers})


def rows():
    """A long answerable row and a short unanswerable one, as prepare makes them."""
    answers = [{"text": ["Denver Broncos"], "answer_start": [ANSWER_AT]}, {"text": [], "answer_start": []}]
    return KIND.prepare(spec(), raw([LONG, "Short text here."], ["Who won the game?", "What?"], answers), "test")


def test_the_definition_has_no_labels_and_sane_decoding_options():
    assert spec().type == "extractive_qa" and KIND.primary_metric == "f1"
    assert KIND.input_fields(spec()) == ("passage", "question")
    with pytest.raises(TaskDefinitionError, match=r"task 'qa' \(extractive_qa\) declares labels \['a'\].*remove 'labels'"):
        spec(labels=("a",))
    for key, value, least in (("doc_stride", -1, 0), ("max_answer_length", 0, 1), ("n_best", 0, 1)):
        with pytest.raises(TaskDefinitionError, match=f"task 'qa': {key} is {value}; give an integer >= {least}"):
            spec(**{key: value})
    with pytest.raises(TaskDefinitionError, match="null_score_threshold is 'high'"):
        spec(null_score_threshold="high")


def test_prepare_makes_canonical_rows_and_unanswerable_questions_are_allowed():
    prepared = rows()
    assert prepared.column_names == ["context", "question", "answer_text", "answer_start"]
    assert prepared[0]["answer_text"] == ["Denver Broncos"] and prepared[0]["answer_start"] == [ANSWER_AT]
    assert prepared[1] == {"context": "Short text here.", "question": "What?", "answer_text": [], "answer_start": []}
    assert KIND.counts(spec(), prepared) == {"answerable": 1, "unanswerable": 1}
    assert KIND.texts(prepared)[1] == "What?\nShort text here."
    assert KIND.show(spec(), prepared[1]) == "Q: What? | A: (no answer) | C: Short text here."
    assert KIND.show(spec(), prepared[0]) == f"Q: Who won the game? | A: Denver Broncos | C: {LONG[:79]}…"


def test_prepare_names_the_row_and_the_fix_for_bad_answers():
    with pytest.raises(TaskDataError, match=r"column 'passage' is not in the data .*fix context_field in tasks/qa.yaml"):
        KIND.prepare(spec(), Dataset.from_dict({"context": ["a"], "question": ["b"], "answers": [{}]}), "train")
    shifted = raw(["abc", "the cat sat"], ["q", "q"], [{"text": [], "answer_start": []},
                                                     {"text": ["cat"], "answer_start": [5]}])
    with pytest.raises(TaskDataError, match=(
        r"task 'qa' \(train split\) row 1: answer 'cat' is not at answer_start 5; the context holds 'at ' there\. "
        r"answer_start is a character offset into the context")):
        KIND.prepare(spec(), shifted, "train")
    flat = Dataset.from_dict({"passage": ["abc"], "question": ["q"], "answers": ["abc"]})
    with pytest.raises(TaskDataError, match=r"\(dev split\) row 0: 'answers' is 'abc'; give SQuAD answers"):
        KIND.prepare(spec(), flat, "dev")
    with pytest.raises(TaskDataError, match=r"row 0: 'question' must be non-blank text"):
        KIND.prepare(spec(), raw(["abc"], ["  "], [{"text": [], "answer_start": []}]), "train")
    with pytest.raises(TaskDataError, match="none of its 1 training questions has an answer"):
        KIND.check_train(spec(), rows().select([1]))


def test_a_long_context_becomes_overlapping_windows_labelled_where_the_answer_is(tokenizer):
    features = KIND.encode(spec(doc_stride=8), rows(), tokenizer, max_length=32)
    assert {"input_ids", "attention_mask", "labels", "offsets", "example"} <= set(features.column_names)
    assert "context" not in features.column_names and features["example"] == [0, 0, 0, 1]
    found = 0
    for feature in features:
        offsets, (start, end) = feature["offsets"], feature["labels"]
        assert len(feature["input_ids"]) <= 32 and offsets[0] == [-1, -1]  # [CLS] and the question map nowhere
        context = [span for span in offsets if span[0] >= 0]
        text = LONG if feature["example"] == 0 else "Short text here."
        holds = context[0][0] <= ANSWER_AT and context[-1][1] >= ANSWER_AT + 14
        if feature["example"] == 0 and holds:
            found += 1
            assert LONG[offsets[start][0] : offsets[end][1]] == "Denver Broncos" and 0 < start <= end
        else:
            assert [start, end] == [0, 0]
        pieces = tokenizer.convert_ids_to_tokens(feature["input_ids"])
        assert all(text[a:b].lower() == piece.removeprefix("##") for piece, (a, b) in zip(pieces, offsets) if a >= 0)
    assert found == 1
    windows = [[span for span in f["offsets"] if span[0] >= 0] for f in features.select([0, 1, 2])]
    assert windows[0][-8:] == windows[1][:8] and windows[1][-8:] == windows[2][:8]  # doc_stride tokens shared


def test_a_question_too_long_for_its_windows_is_cut_and_counted_and_no_room_at_all_is_an_error(tokenizer, caplog):
    # max_length 14 - 3 special tokens - doc_stride 8 - 1 leaves 2 question tokens: "Who won the game?" -> "Who won"
    with caplog.at_level("WARNING"):
        features = KIND.encode(spec(doc_stride=8), rows(), tokenizer, max_length=14)
    first = tokenizer.decode(features[0]["input_ids"])
    assert first.startswith("[CLS] who won [SEP]") and "1 question(s) cut to 2 tokens" in caplog.text
    assert len(KIND.encode(spec(doc_stride=5), rows(), tokenizer, max_length=14)) > 4  # 6 context tokens > stride 5
    with pytest.raises(TaskDefinitionError, match=(
            r"max_length 12 leaves no room for a question next to 3 special tokens and more than doc_stride \(8\) "
            r"context tokens; raise data.max_length or lower doc_stride in tasks/qa.yaml")):
        KIND.encode(spec(doc_stride=8), rows(), tokenizer, max_length=12)

    class Slow:
        is_fast = False

    with pytest.raises(TaskDefinitionError, match="needs a fast tokenizer.*Slow is not one"):
        KIND.encode(spec(), rows(), Slow(), max_length=32)


def test_an_example_makes_at_most_max_windows_windows_the_first_ones_and_a_warning_counts_the_cut(
    tokenizer, caplog, monkeypatch
):
    whole = KIND.encode(spec(doc_stride=8), rows(), tokenizer, max_length=32)
    assert whole["example"] == [0, 0, 0, 1]  # LONG makes three windows
    monkeypatch.setattr(extractive_qa, "MAX_WINDOWS", 2)
    with caplog.at_level("WARNING"):
        capped = KIND.encode(spec(doc_stride=8), rows(), tokenizer, max_length=32)
    assert capped["example"] == [0, 0, 1]
    assert capped.to_list() == whole.select([0, 1, 3]).to_list()  # the first two windows, exactly; row 1 untouched
    assert ("task 'qa': 1 context(s) longer than 2 windows of max_length 32 (doc_stride 8) were cut after their "
            "first 2 windows; answers after them cannot be found") in caplog.text


def test_a_huge_context_is_never_split_into_windows_in_full(tokenizer):
    """330,000 characters would be some 4,000 windows of 32 tokens; the answer lies past the kept ones."""
    context = "the river flows north " * 15_000 + "Denver won."
    answers = {"text": ["Denver"], "answer_start": [len(context) - len("Denver won.")]}
    huge = KIND.prepare(spec(), raw([context], ["Who won?"], [answers]), "test")
    features = KIND.encode(spec(doc_stride=8), huge, tokenizer, max_length=32)
    assert len(features) == extractive_qa.MAX_WINDOWS and features["example"] == [0] * extractive_qa.MAX_WINDOWS
    assert [span for span in features[0]["offsets"] if span[0] >= 0][0] == [0, 3]  # from the context's start
    assert all(labels == [0, 0] for labels in features["labels"])  # the answer is not in any kept window


def test_the_head_loss_and_per_window_correctness():
    head = SpanHead(hidden_size=4, dropout=0.0)
    logits = head(torch.randn(2, 5, 4), torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]))
    assert logits.shape == (2, 5, 2) and (logits[1, 3:] == PAD_LOGIT).all() and (logits[0] != PAD_LOGIT).all()
    outputs = torch.zeros(2, 4, 2)
    outputs[0, 2, 0], outputs[0, 3, 1] = 5.0, 5.0  # window 0 picks tokens 2..3
    labels = torch.tensor([[2, 3], [0, 0]])
    uniform = math.log(4)  # window 1 is uniform over 4 tokens
    picked = -math.log(math.exp(5) / (math.exp(5) + 3))
    assert KIND.loss(outputs, labels, head).item() == pytest.approx((picked + uniform) / 2)
    assert KIND.loss(outputs, labels, head, reduction="sum").item() == pytest.approx(picked + uniform)
    offsets = torch.tensor([[[-1, -1], [-1, -1], [0, 3], [4, 7]]] * 2)
    assert KIND.correct(outputs, {"labels": labels, "offsets": offsets}, head).tolist() == [True, True]
    outputs[1, 1] = 9.0  # a question token is not a place an answer can be
    assert KIND.correct(outputs, {"labels": labels, "offsets": offsets}, head).tolist() == [True, True]
    outputs[1, 3, 1] = 1.0  # now the end is in the context, where the gold says there is nothing
    assert KIND.correct(outputs, {"labels": labels, "offsets": offsets}, head).tolist() == [True, False]
    assert KIND.step_metrics(outputs, labels, head)["span_acc"].item() == 0.5  # step metrics see all positions


def test_confidence_is_minus_the_normalised_entropy_over_real_tokens():
    outputs = torch.zeros(2, 4, 2)
    outputs[1, 0] = 50.0  # window 1 is certain of both its start and end
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1]])
    outputs[0, 3] = 50.0  # padding of window 0: ignored, so window 0 is uniform over 3 tokens
    assert KIND.confidence(outputs, mask).tolist() == pytest.approx([-1.0, 0.0], abs=1e-6)


def features_and_outputs(tokenizer):
    """Encoded windows of :func:`rows` in two batches, and outputs that score each window's gold tokens 10."""
    features = KIND.encode(spec(doc_stride=8), rows(), tokenizer, max_length=32).with_format("torch")
    batches = [KIND.collator(tokenizer)([features[i] for i in part]) for part in ([0, 1], [2, 3])]
    outputs = []
    for batch in batches:
        logits = torch.zeros(*batch["input_ids"].shape, 2)
        for window, (start, end) in enumerate(batch["labels"].tolist()):
            logits[window, start, 0], logits[window, end, 1] = 10.0, 10.0
        outputs.append(logits)
    short = batches[1]["attention_mask"][1] == 0
    assert short.any() and (batches[1]["offsets"][1][short] == -1).all()  # padding maps to no character
    targets = {key: cat_padded([batch[key] for batch in batches], PAD_VALUES.get(key, 0))
               for key in ("labels", "offsets", "example")}
    return cat_padded(outputs, 0.0), targets


def test_metrics_and_predictions_decode_every_row_over_its_windows(tokenizer):
    outputs, targets = features_and_outputs(tokenizer)
    head = SpanHead(4)
    assert KIND.metrics(spec(), outputs, targets, rows(), head) == {
        "exact_match": 1.0, "f1": 1.0, "has_answer_f1": 1.0, "no_answer_f1": 1.0}
    predictions = KIND.predictions(spec(), outputs, targets, rows(), head)
    assert predictions[0] == {"answer": "Denver Broncos", "start": ANSWER_AT, "end": ANSWER_AT + 14, "score": 20.0}
    assert predictions[1] == {"answer": "", "start": None, "end": None, "score": 20.0}
    lenient = KIND.metrics(spec(null_score_threshold=100.0), outputs, targets, rows(), head)
    assert lenient["no_answer_f1"] == 0.0 and lenient["has_answer_f1"] == 1.0 and lenient["f1"] == 0.5
    assert KIND.correct(outputs, targets, head).all()


def test_a_request_needs_both_texts(tokenizer):
    request = {"passage": "The cat sat.", "question": "Who sat?"}
    row = KIND.request(spec(), request, "input line 1")
    assert row == {"context": "The cat sat.", "question": "Who sat?", "answer_text": [], "answer_start": []}
    assert len(KIND.encode(spec(), Dataset.from_list([row]), tokenizer, max_length=64)) == 1
    with pytest.raises(RequestError, match=r"""input line 3: "question" is missing; task 'qa' reads \['passage', 'question'\]"""):
        KIND.request(spec(), {"passage": "x"}, "input line 3")
    with pytest.raises(RequestError, match=r'input line 2: "passage" must be non-blank text, not 7'):
        KIND.request(spec(), {"passage": 7, "question": "q"}, "input line 2")

"""Decoding answer spans from windows' start/end logits, on logits and offsets written by hand.

Every window below has 6 tokens: [CLS], a question token, three context tokens for "abc", "def" and "ghi"
(characters 0-3, 4-7, 8-11 of the context "abc def ghi") and [SEP].
"""

import pytest
import torch

from seqadapt.kinds.spans import Span, decode, window_best

CONTEXT = "abc def ghi"
OFFSETS = torch.tensor([[-1, -1], [-1, -1], [0, 3], [4, 7], [8, 11], [-1, -1]])


def window(starts, ends):
    return torch.tensor([starts, ends], dtype=torch.float).T  # [T, 2]


def test_the_best_span_is_the_highest_start_plus_end_among_context_tokens():
    logits = window([9, 50, 1, 5, 2, 40], [9, 50, 0, 1, 6, 40])  # [CLS], question and [SEP] never answer
    assert window_best(logits, OFFSETS, n_best=20, max_answer_length=30) == (11.0, 3, 4)  # "def ghi"


def test_spans_end_after_they_start_and_respect_max_answer_length_and_n_best():
    backwards = window([0, 0, 1, 2, 9, 0], [0, 0, 9, 1, 2, 0])  # start 4 + end 2 would score 18, but ends first
    assert window_best(backwards, OFFSETS, n_best=20, max_answer_length=30) == (11.0, 4, 4)
    logits = window([0, 0, 1, 5, 2, 0], [0, 0, 0, 1, 6, 0])
    assert window_best(logits, OFFSETS, n_best=20, max_answer_length=1) == (8.0, 4, 4)  # "ghi": 2 + 6
    assert window_best(logits, OFFSETS, n_best=1, max_answer_length=1) is None  # only 3..4 considered: too long
    assert window_best(logits, torch.full((6, 2), -1), n_best=20, max_answer_length=30) is None  # no context


def test_decoding_takes_the_best_window_of_each_example_and_maps_tokens_to_characters():
    outputs = torch.stack([
        window([0, 0, 7, 0, 0, 0], [0, 0, 7, 0, 0, 0]),  # example 0: "abc" scores 14
        window([0, 0, 0, 0, 9, 0], [0, 0, 0, 0, 9, 0]),  # example 0: "ghi" scores 18
        window([0, 0, 0, 3, 0, 0], [0, 0, 0, 0, 3, 0]),  # example 1: "def ghi" scores 6
    ])
    spans = decode(outputs, torch.tensor([0, 0, 1]), OFFSETS.expand(3, 6, 2), [CONTEXT, CONTEXT], 20, 30, 0.0)
    assert spans == [Span("ghi", 8, 11, 18.0), Span("def ghi", 4, 11, 6.0)]
    with pytest.raises(ValueError, match="row 2 has no window"):
        decode(outputs, torch.tensor([0, 0, 1]), OFFSETS.expand(3, 6, 2), [CONTEXT] * 3, 20, 30, 0.0)


def test_no_answer_when_the_weakest_null_score_beats_the_best_span_by_more_than_the_threshold():
    answer = window([8, 0, 0, 5, 0, 0], [8, 0, 0, 6, 0, 0])  # null 16, best "def" 11
    other = window([20, 0, 0, 0, 0, 0], [20, 0, 0, 0, 0, 0])  # null 40: the minimum over windows counts
    outputs, example, offsets = torch.stack([answer, other]), torch.tensor([0, 0]), OFFSETS.expand(2, 6, 2)
    assert decode(outputs, example, offsets, [CONTEXT], 20, 30, 0.0) == [Span("", None, None, 16.0)]  # 16 - 11 > 0
    assert decode(outputs, example, offsets, [CONTEXT], 20, 30, 5.0) == [Span("def", 4, 7, 11.0)]  # 5 is not > 5
    assert decode(outputs, example, offsets, [CONTEXT], 20, 30, 4.9)[0].text == ""
    assert decode(outputs, example, offsets, [CONTEXT], 1, 1, 100.0) == [Span("def", 4, 7, 11.0)]
    no_candidate = window([0, 0, 0, 0, 9, 0], [0, 0, 9, 0, 0, 0])
    spans = decode(no_candidate[None], torch.tensor([0]), OFFSETS[None], [CONTEXT], 1, 30, 100.0)
    assert spans == [Span("", None, None, 0.0)]  # the only pair, 4..2, ends before it starts

"""Exact match, token F1 and ROUGE-L of generated text, each the best over a row's gold texts."""

import pytest

from seqadapt.kinds.text_metrics import rouge_l, text_scores


def test_rouge_l_is_the_f_measure_of_the_longest_common_subsequence():
    # LCS of "the cat sat on mat" / "cat on the mat" after dropping articles: [cat, on, mat] / [cat, on, mat]
    assert rouge_l("The cat sat on the mat", "the cat on the mat") == pytest.approx(2 * 0.75 * 1.0 / 1.75)
    # Lin (2004)'s example scores 1/2 with "the" kept; the SQuAD normalisation drops it: LCS 1 of 3 tokens
    assert rouge_l("police killed the gunman", "the gunman kill police") == pytest.approx(1 / 3)
    assert rouge_l("", "") == 1.0 and rouge_l("x", "") == 0.0 and rouge_l("a b", "c d") == 0.0


def test_text_scores_take_the_best_gold_per_row():
    scores = text_scores(["three", "the red apple", "blue"], [["3", "three"], ["red apple pie"], ["green"]])
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["token_f1"] == pytest.approx((1 + 0.8 + 0) / 3)
    assert scores["rouge_l"] == pytest.approx((1 + 0.8 + 0) / 3)


def test_text_scores_need_one_prediction_per_row():
    with pytest.raises(ValueError, match="1 generated texts for 2 rows"):
        text_scores(["a"], [["a"], ["b"]])

"""The official SQuAD scores, checked on answers worked out by hand."""

import pytest

from seqadapt.kinds.squad_metric import best_over_golds, exact_match, normalize_answer, squad_scores, token_f1


def test_normalisation_drops_case_punctuation_articles_and_extra_spaces():
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theory of Anarchy") == "theory of anarchy"  # articles only as whole words
    assert normalize_answer("the") == ""


def test_exact_match_and_token_f1_compare_normalised_answers():
    assert exact_match("The Broncos.", "broncos") == 1.0 and exact_match("Denver Broncos", "Broncos") == 0.0
    # prediction tokens cat sat on mat, gold cat on mat: P = 3/4, R = 1, F1 = 2 * 3/4 / (7/4) = 6/7
    assert token_f1("the cat sat on the mat", "a cat on a mat") == pytest.approx(6 / 7)
    # one shared "red" (a multiset overlap, not two): P = 1/3, R = 1/2
    assert token_f1("red red blue", "red green") == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("", "") == 1.0 and token_f1("cat", "") == 0.0 and token_f1("", "cat") == 0.0


def test_the_best_gold_answer_counts_and_no_gold_means_unanswerable():
    assert best_over_golds(exact_match, "Denver Broncos", ["Broncos", "Denver Broncos"]) == 1.0
    assert best_over_golds(token_f1, "Denver Broncos", ["Broncos", "Carolina Panthers"]) == pytest.approx(2 / 3)
    assert best_over_golds(token_f1, "", []) == 1.0 and best_over_golds(exact_match, "", []) == 1.0
    assert best_over_golds(token_f1, "Broncos", []) == 0.0 and best_over_golds(exact_match, "Broncos", []) == 0.0
    assert best_over_golds(exact_match, "the", []) == 1.0  # the official script normalises the prediction first
    assert best_over_golds(exact_match, "", ["a"]) == 1.0  # a gold that normalises to nothing is no answer


def test_scores_average_over_questions_and_split_answerable_from_unanswerable():
    scores = squad_scores(["Denver Broncos", "", "cat", "Broncos"], [["Denver Broncos"], [], ["dog"], []])
    assert scores == {"exact_match": 0.5, "f1": 0.5, "has_answer_f1": 0.5, "no_answer_f1": 0.5}
    assert squad_scores(["Broncos"], [["Denver Broncos"]]) == {"exact_match": 0.0, "f1": pytest.approx(2 / 3)}
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        squad_scores(["a", "b"], [["a"]])

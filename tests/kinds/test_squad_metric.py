"""The official SQuAD scores, checked on answers worked out by hand, on the examples published with Hugging Face's
wrapper of the official script, and on random answers against the official script's own logic."""

import random

import pytest

from seqadapt.kinds.squad_metric import best_over_golds, exact_match, normalize_answer, squad_scores, token_f1
from tests.kinds.squad_official import official_scores


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
    # a gold "The" normalises to nothing, so "x" scores 0 against it; but the question has a gold answer, so the
    # official script counts it in HasAns: HasAns = {0, 2} scores 0, NoAns = {1} scores 1
    split = squad_scores(["x", "", "dog"], [["The"], [], ["cat"]])
    assert split == pytest.approx({"exact_match": 1 / 3, "f1": 1 / 3, "has_answer_f1": 0.0, "no_answer_f1": 1.0})
    with pytest.raises(ValueError, match="2 predictions for 1 questions"):
        squad_scores(["a", "b"], [["a"]])


def test_the_published_squad_v2_examples_score_as_published():
    """The three examples of the ``squad_v2`` metric card (huggingface/evaluate, metrics/squad_v2/README.md):
    exact 100 and f1 100, then 0 and 0, then 66.67 and 66.67; seqadapt reports fractions, not percentages."""
    assert squad_scores(["1976"], [["1976"]]) == {"exact_match": 1.0, "f1": 1.0}
    assert squad_scores(["1999"], [["1976"]]) == {"exact_match": 0.0, "f1": 0.0}
    partial = squad_scores(["1976", "Beyonce", "climate change"], [["1976"], ["Beyoncé and Bruno Mars"], ["climate change"]])
    assert partial == pytest.approx({"exact_match": 66.66666666666667 / 100, "f1": 66.66666666666667 / 100})


WORDS = ["The", "the", "a", "An", "Denver", "Broncos", "broncos.", "Beyoncé", "1976", "(1976)", "cat", "Cat's",
         "theory", "an-apple", "—", "!", "", "  "]


def random_answer(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randrange(0, 5)))


@pytest.mark.parametrize("seed", range(5))
def test_random_answers_score_as_the_official_script_scores_them(seed):
    """Answers drawn from words that exercise each step of the normalisation (case, punctuation inside and around
    words, articles alone and inside words, non-ASCII, blank golds), with answerable and unanswerable questions."""
    rng = random.Random(seed)
    golds = [[random_answer(rng) for _ in range(rng.choice([0, 1, 1, 2, 3]))] for _ in range(200)]
    predictions = [rng.choice(answers) if answers and rng.random() < 0.3 else random_answer(rng) for answers in golds]
    official = official_scores(predictions, golds)
    ours = squad_scores(predictions, golds)
    assert ours == pytest.approx({
        "exact_match": official["exact"] / 100, "f1": official["f1"] / 100,
        "has_answer_f1": official["HasAns_f1"] / 100, "no_answer_f1": official["NoAns_f1"] / 100,
    }, abs=1e-12)

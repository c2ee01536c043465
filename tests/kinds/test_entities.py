"""Entity chunking and entity-level scores, as conlleval (and seqeval's default mode) count them: by hand, and
against seqeval itself on random tag sequences."""

import random

import pytest

from seqadapt.kinds.entities import entities, entity_scores, is_bio


def test_b_starts_an_entity_and_i_of_the_same_type_continues_it():
    assert entities(["B-per", "I-per", "O", "B-loc", "B-loc", "I-loc"]) == [
        ("per", 0, 2), ("loc", 3, 4), ("loc", 4, 6),  # B after B of the same type: two entities
    ]
    assert entities(["O", "O"]) == [] and entities([]) == []
    assert entities(["B-geo-loc", "I-geo-loc"]) == [("geo-loc", 0, 2)]  # a type may hold a hyphen


def test_an_i_after_o_or_after_another_type_starts_a_new_entity():
    assert entities(["I-loc", "I-loc", "O", "I-per"]) == [("loc", 0, 2), ("per", 3, 4)]
    assert entities(["B-per", "I-loc", "I-loc", "I-per"]) == [("per", 0, 1), ("loc", 1, 3), ("per", 3, 4)]


def test_scores_are_micro_averaged_over_sentences_and_need_type_and_both_boundaries():
    gold = [["B-per", "I-per", "O", "B-loc"], ["O", "B-org"], ["B-a", "O", "B-b"]]
    predicted = [
        ["B-per", "I-per", "O", "I-loc"],  # both right: an I- after O is the loc entity
        ["B-org", "I-org"],  # org(0, 2) against org(1, 2): a miss
        ["B-a", "O", "B-c"],  # a right, c is the wrong type
    ]
    # found 5 (per, loc, org, a, c), expected 5, right 3 -> precision = recall = f1 = 3/5
    assert entity_scores(gold, predicted) == pytest.approx({"precision": 0.6, "recall": 0.6, "f1": 0.6})
    # found 1, right 1, expected 2 -> precision 1, recall 1/2, f1 2/3
    assert entity_scores([["B-a", "O", "B-b"]], [["B-a", "O", "O"]]) == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3})


def test_nothing_found_or_expected_scores_zero_and_sentence_counts_must_agree():
    assert entity_scores([["B-a"]], [["O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    assert entity_scores([["O"]], [["O"]]) == {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    with pytest.raises(ValueError, match="2 gold sentences but 1 predicted"):
        entity_scores([["O"], ["O"]], [["O"]])


def test_only_o_and_b_or_i_with_a_type_are_bio_tags():
    assert all(is_bio(tag) for tag in ["O", "B-per", "I-geo-loc"])
    assert not any(is_bio(tag) for tag in ["PER", "B-", "E-per", "S-per", "o", "B_per"])


TAGS = ["O", "O", "O", "B-per", "I-per", "B-loc", "I-loc", "B-geo-loc", "I-geo-loc"]


def seqeval_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, float]:
    """The reference: seqeval's micro-averaged entity scores in its default (conlleval) mode."""
    import warnings

    from seqeval.metrics import f1_score, precision_score, recall_score

    with warnings.catch_warnings():  # seqeval warns where a score is 0/0 (it then scores 0, as seqadapt does)
        warnings.simplefilter("ignore")
        return {"precision": precision_score(gold, predicted), "recall": recall_score(gold, predicted),
                "f1": f1_score(gold, predicted)}


@pytest.mark.parametrize("seed", range(5))
def test_random_tag_sequences_score_as_seqeval_scores_them(seed):
    """Any mix of B/I/O, including I- after O, after another type and after B- of another type; predictions are
    the gold sentences with a fifth of their tags redrawn, so entities are partly right."""
    rng = random.Random(seed)
    gold = [[rng.choice(TAGS) for _ in range(rng.randrange(0, 9))] for _ in range(60)]
    predicted = [[tag if rng.random() < 0.8 else rng.choice(TAGS) for tag in sentence] for sentence in gold]
    assert entity_scores(gold, predicted) == pytest.approx(seqeval_scores(gold, predicted), abs=1e-12)


def test_nothing_found_or_expected_scores_zero_as_in_seqeval():
    for gold, predicted in (([["B-a"]], [["O"]]), ([["O"]], [["O"]]), ([["O"]], [["I-a"]])):
        assert entity_scores(gold, predicted) == seqeval_scores(gold, predicted)

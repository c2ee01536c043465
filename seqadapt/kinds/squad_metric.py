"""The official SQuAD scores (``evaluate-v2.0.py``, which also scores v1.1 data): answers are compared after
the script's normalisation, exact match and token F1 take the best over the gold answers, and a question with
no gold answer (SQuAD 2.0) is right only when the prediction normalises to nothing.

The official script reports percentages (0-100); these functions return fractions (0-1), the scale every
seqadapt score uses.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """Lower case, punctuation removed, the articles a/an/the removed as whole words, whitespace collapsed:
    the official normalisation, so that "The Broncos." and "broncos" count as the same answer."""
    text = "".join(char for char in text.lower() if char not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def _tokens(text: str) -> list[str]:
    return normalize_answer(text).split() if text else []


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    """F1 of the normalised tokens' multiset overlap; two empty answers agree (1), one empty answer scores 0."""
    predicted, expected = _tokens(prediction), _tokens(gold)
    if not predicted or not expected:
        return float(predicted == expected)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


def best_over_golds(score: Callable[[str, str], float], prediction: str, golds: Sequence[str]) -> float:
    """The best score against any gold answer; gold answers that normalise to nothing are ignored, and a
    question left with none is unanswerable: its only gold answer is the empty string."""
    kept = [gold for gold in golds if normalize_answer(gold)] or [""]
    return max(score(prediction, gold) for gold in kept)


def squad_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """``exact_match`` and ``f1`` averaged over questions (0-1), plus ``has_answer_f1`` and ``no_answer_f1``
    (the official HasAns/NoAns split) when the questions include both kinds. As in the official script, a
    question with any gold answer counts as answerable here, even one whose answers all normalise to nothing
    (e.g. "The"), though it is scored as unanswerable."""
    if len(predictions) != len(golds):
        raise ValueError(f"{len(predictions)} predictions for {len(golds)} questions; give one per question")
    if not golds:
        raise ValueError("no questions to score")
    f1 = [best_over_golds(token_f1, prediction, gold) for prediction, gold in zip(predictions, golds)]
    exact = [best_over_golds(exact_match, prediction, gold) for prediction, gold in zip(predictions, golds)]
    scores = {"exact_match": sum(exact) / len(exact), "f1": sum(f1) / len(f1)}
    answerable = [bool(gold) for gold in golds]
    if any(answerable) and not all(answerable):
        for name, wanted in (("has_answer_f1", True), ("no_answer_f1", False)):
            part = [value for value, kind in zip(f1, answerable) if kind is wanted]
            scores[name] = sum(part) / len(part)
    return scores

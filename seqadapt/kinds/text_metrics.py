"""Scores of generated text against gold texts: exact match and token F1 (the SQuAD script's normalisation
and definitions, :mod:`seqadapt.kinds.squad_metric`) and ROUGE-L (F-measure of the longest common
subsequence of normalised tokens, Lin 2004), each the best over a row's gold texts."""

from __future__ import annotations

from collections.abc import Sequence

from seqadapt.kinds.squad_metric import exact_match, normalize_answer, token_f1


def rouge_l(prediction: str, gold: str) -> float:
    """ROUGE-L F1 (beta 1) over normalised tokens; two empty texts agree."""
    predicted, expected = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if not predicted or not expected:
        return float(predicted == expected)
    previous = [0] * (len(expected) + 1)
    for word in predicted:
        current = [0]
        for j, other in enumerate(expected):
            current.append(previous[j] + 1 if word == other else max(previous[j + 1], current[j]))
        previous = current
    common = previous[-1]
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def text_scores(predictions: Sequence[str], golds: Sequence[Sequence[str]]) -> dict[str, float]:
    """``exact_match``, ``token_f1`` and ``rouge_l`` averaged over rows (0-1), each the best over its golds."""
    if len(predictions) != len(golds) or not golds:
        raise ValueError(f"{len(predictions)} generated texts for {len(golds)} rows; give one per row (at least one)")
    scores = {}
    for name, score in (("exact_match", exact_match), ("token_f1", token_f1), ("rouge_l", rouge_l)):
        scores[name] = sum(max(score(p, g) for g in gold) for p, gold in zip(predictions, golds)) / len(golds)
    return scores

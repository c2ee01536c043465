"""Entities of BIO/IOB2 tag sequences and entity-level precision, recall and F1, as conlleval scores them.

Tagging tasks are judged on whole entities, not on tags: a person's name with
one wrong word is a miss, however many of its tags are right. The chunking
follows conlleval (and ``seqeval`` in its default mode), so scores compare with
published ones: an ``I-X`` that follows ``O`` or a tag of another type starts
a new entity instead of being thrown away, and a ``B-X`` always starts one.
An entity is ``(type, start, end)`` with ``end`` exclusive, so
``words[start:end]`` are its words.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

OUTSIDE = "O"
_TAG = re.compile(r"^[BI]-.+$")

Entity = tuple[str, int, int]


def is_bio(tag: str) -> bool:
    """``O``, ``B-<type>`` or ``I-<type>``: the only tags :func:`entities` can read."""
    return tag == OUTSIDE or bool(_TAG.match(tag))


def entities(tags: Sequence[str]) -> list[Entity]:
    """The entities of one sentence's tags, in order: ``(type, start, end)``, ``end`` exclusive."""
    found: list[Entity] = []
    kind, start = None, 0
    for position, tag in enumerate(tags):
        prefix, _, tag_type = tag.partition("-")
        continues = prefix == "I" and tag_type == kind
        if kind is not None and not continues:
            found.append((kind, start, position))
            kind = None
        if prefix in ("B", "I") and not continues:
            kind, start = tag_type, position
    if kind is not None:
        found.append((kind, start, len(tags)))
    return found


def entity_scores(gold: Sequence[Sequence[str]], predicted: Sequence[Sequence[str]]) -> dict[str, float]:
    """Micro-averaged entity ``precision``, ``recall`` and ``f1`` over sentences (0 where nothing is counted):
    an entity counts as found only if its type and both boundaries match a gold one in the same sentence."""
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold sentences but {len(predicted)} predicted; score the same sentences")
    found = expected = right = 0
    for gold_tags, predicted_tags in zip(gold, predicted):
        gold_set, predicted_set = set(entities(gold_tags)), set(entities(predicted_tags))
        found += len(predicted_set)
        expected += len(gold_set)
        right += len(gold_set & predicted_set)
    precision = right / found if found else 0.0
    recall = right / expected if expected else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}

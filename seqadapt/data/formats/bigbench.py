"""BIG-bench ``task.json`` files: ``examples`` of an ``input`` text and a ``target`` or ``target_scores``.

``options["input_pattern"]`` (a regular expression with named groups) splits
each input into fields, e.g. ``Premise: (?P<premise>.*) Hypothesis: (?P<hypothesis>.*)``;
an input it does not match is an error naming the example. ``target_scores``
becomes ``label`` (the option scored highest); a ``target`` becomes ``target``.

For extractive QA, ``options["answer_in"]`` names the field that holds the
passage: ``answers`` is then SQuAD-form ``{"text": [t], "answer_start": [i]}``
at the first verbatim occurrence of the target, empty for targets listed in
``options["unanswerable"]`` (e.g. ``unknown``); examples whose answer is not in
the passage verbatim cannot be trained on a span and are left out, counted in
a warning.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from datasets import Dataset

from seqadapt.data.listing import clip
from seqadapt.errors import DataFileError, TaskDefinitionError

log = logging.getLogger(__name__)


def read_bigbench(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    document = json.loads(text)
    examples = document.get("examples") if isinstance(document, dict) else None
    if not isinstance(examples, list):
        raise DataFileError(f"{path} has no 'examples' list: it is not a BIG-bench task.json")
    try:
        pattern = re.compile(options.get("input_pattern", r"(?P<input>.*)"), re.DOTALL)
    except (re.error, TypeError) as err:
        raise TaskDefinitionError(
            f"source.input_pattern {clip(repr(options.get('input_pattern')), 120)} is not a regular expression "
            f"({err}); write e.g. 'Premise: (?P<premise>.*) Hypothesis: (?P<hypothesis>.*)'"
        ) from None
    rows = [_row(path, number, example, pattern) for number, example in enumerate(examples)]
    if "answer_in" in options:
        rows = _with_answers(path, rows, options["answer_in"], set(options.get("unanswerable", ())))
    return Dataset.from_list(rows)


def _row(path: Path, number: int, example: Any, pattern: re.Pattern) -> dict[str, Any]:
    if not isinstance(example, dict) or not isinstance(example.get("input", ""), str):
        raise DataFileError(f"{path}: examples[{number}] is {str(example)[:80]!r}; an example is an object with an "
                            "'input' text and a 'target' or 'target_scores'")
    match = pattern.fullmatch(example.get("input", ""))
    if match is None:
        raise DataFileError(f"{path}: examples[{number}]'s input does not match source.input_pattern "
                            f"{clip(repr(pattern.pattern), 120)}: {example.get('input', '')[:80]!r}")
    row = {name: (value or "").strip() for name, value in match.groupdict().items()}  # an unmatched group: ""
    if "target_scores" in example:
        scores = example["target_scores"]
        if not isinstance(scores, dict) or not scores or not all(isinstance(v, (int, float)) for v in scores.values()):
            raise DataFileError(f"{path}: examples[{number}].target_scores is {str(scores)[:80]!r}; it must map each "
                                "answer to its score, e.g. {\"yes\": 1, \"no\": 0}")
        row["label"] = max(scores, key=scores.get)
    if "target" in example:
        target = example["target"]
        row["target"] = target[0] if isinstance(target, list) else target
    return row


def _with_answers(path: Path, rows: list[dict[str, Any]], field: str, unanswerable: set[str]) -> list[dict[str, Any]]:
    kept = []
    for row in rows:
        answer, passage = row.pop("target").strip(), row[field]
        if answer in unanswerable:
            kept.append({**row, "answers": {"text": [], "answer_start": []}})
        elif answer and answer in passage:
            kept.append({**row, "answers": {"text": [answer], "answer_start": [passage.index(answer)]}})
    if len(kept) < len(rows):
        log.warning("%s: %d of %d examples left out: their answer is not in the %s verbatim",
                    path, len(rows) - len(kept), len(rows), field)
    return kept

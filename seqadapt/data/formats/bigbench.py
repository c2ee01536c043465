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

from seqadapt.errors import DataFileError

log = logging.getLogger(__name__)


def read_bigbench(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    examples = json.loads(text).get("examples")
    if not isinstance(examples, list):
        raise DataFileError(f"{path} has no 'examples' list: it is not a BIG-bench task.json")
    pattern = re.compile(options.get("input_pattern", r"(?P<input>.*)"), re.DOTALL)
    rows = [_row(path, number, example, pattern) for number, example in enumerate(examples)]
    if "answer_in" in options:
        rows = _with_answers(path, rows, options["answer_in"], set(options.get("unanswerable", ())))
    return Dataset.from_list(rows)


def _row(path: Path, number: int, example: dict[str, Any], pattern: re.Pattern) -> dict[str, Any]:
    match = pattern.fullmatch(example.get("input", ""))
    if match is None:
        raise DataFileError(f"{path}: examples[{number}]'s input does not match source.input_pattern "
                            f"{pattern.pattern!r}: {example.get('input', '')[:80]!r}")
    row = {name: value.strip() for name, value in match.groupdict().items()}
    if "target_scores" in example:
        scores = example["target_scores"]
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

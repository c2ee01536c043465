"""The official SQuAD JSON (v1.1 and 2.0): ``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}``,
flattened to one row per question in the Hugging Face ``squad`` layout: ``id``, ``title``, ``context``,
``question`` and ``answers`` = ``{"text": [...], "answer_start": [...]}``.

A SQuAD 2.0 question marked ``is_impossible`` gets no answers (its ``plausible_answers`` are not answers). A
missing or mistyped part is a :class:`DataFileError` naming the file and the path to it, e.g.
``data[3].paragraphs[0].qas[2] has no 'question'``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from datasets import Dataset, Features, List, Value

from seqadapt.errors import DataFileError

FEATURES = Features({
    "id": Value("string"), "title": Value("string"), "context": Value("string"), "question": Value("string"),
    "answers": {"text": List(Value("string")), "answer_start": List(Value("int64"))},
})
_TYPES = {list: "a list", dict: "an object", str: "a string", int: "an integer"}


def read_squad(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    """One row per question, in file order; a question without an ``id`` is named by its place in the file."""
    try:
        document = json.loads(text)
    except json.JSONDecodeError as err:
        raise DataFileError(f"{path} is not JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    if not isinstance(document, dict):
        raise DataFileError(f"{path} holds a JSON {type(document).__name__}; the official SQuAD layout is an object "
                            "with a 'data' list")
    rows = []
    articles = _field(path, document, "the file", "data", list)
    for a, article in enumerate(articles):
        where = f"data[{a}]"
        title = _field(path, article, where, "title", str, "")
        for p, paragraph in enumerate(_field(path, article, where, "paragraphs", list)):
            context = _field(path, paragraph, f"{where}.paragraphs[{p}]", "context", str)
            for q, qa in enumerate(_field(path, paragraph, f"{where}.paragraphs[{p}]", "qas", list)):
                entry = {"title": title, "context": context, **_question(path, qa, f"{where}.paragraphs[{p}].qas[{q}]")}
                rows.append({name: entry[name] for name in FEATURES})
    return Dataset.from_list(rows, features=FEATURES)


def _question(path: Path, qa: Any, where: str) -> dict[str, Any]:
    """One question's id, text and answers; an ``is_impossible`` question needs no ``answers``."""
    question = _field(path, qa, where, "question", str)
    impossible = _field(path, qa, where, "is_impossible", bool, False)
    answers = [] if impossible else _field(path, qa, where, "answers", list)
    texts, starts = [], []
    for n, answer in enumerate(answers):
        texts.append(_field(path, answer, f"{where}.answers[{n}]", "text", str))
        starts.append(_field(path, answer, f"{where}.answers[{n}]", "answer_start", int))
    return {"id": str(_field(path, qa, where, "id", (str, int), where)), "question": question,
            "answers": {"text": texts, "answer_start": starts}}


def _field(path: Path, parent: Any, where: str, key: str, kind: type | tuple[type, ...], default: Any = ...) -> Any:
    """``parent[key]``, checked to be a ``kind``; absent, the ``default`` if there is one, else an error."""
    if not isinstance(parent, dict):
        raise DataFileError(f"{path}: {where} is {type(parent).__name__} {str(parent)[:60]!r}, not an object")
    if key not in parent:
        if default is not ...:
            return default
        raise DataFileError(f"{path}: {where} has no '{key}' (the official SQuAD layout: data[].paragraphs[]."
                            "context and .qas[] with id, question and answers [{text, answer_start}])")
    value = parent[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        wanted = " or ".join(_TYPES.get(k, k.__name__) for k in kinds)
        raise DataFileError(f"{path}: {where}.{key} is {value!r}; it must be {wanted}")
    return value

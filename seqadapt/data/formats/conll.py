"""CoNLL-style token files: one token per line with its columns (word, tags, ...), a blank line between sentences.

Tagging corpora (CoNLL-2003, WNUT, OntoNotes exports) ship in this shape. A
task's ``source.columns`` maps output fields to column numbers (counted from 0;
negative from the end), default ``{tokens: 0, tags: -1}``: the word first and
the tag to learn last, as CoNLL-2003 has it. Each output field is one list per
sentence. ``-DOCSTART-`` lines mark documents, not words, and are skipped.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from datasets import Dataset

from seqadapt.errors import DataFileError, TaskDefinitionError

DEFAULT_COLUMNS = {"tokens": 0, "tags": -1}
DOCUMENT_START = "-DOCSTART-"


def read_conll(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    """One row per sentence, a list per field of ``options["columns"]``; a line with fewer columns than those
    name is a :class:`DataFileError` naming the file and line."""
    columns = _columns(options)
    needed = max(index + 1 if index >= 0 else -index for index in columns.values())
    sentences: dict[str, list[list[str]]] = {name: [] for name in columns}
    current: dict[str, list[str]] = {name: [] for name in columns}
    for number, line in enumerate(text.splitlines(), start=1):
        parts = line.split()
        if not parts or parts[0].startswith(DOCUMENT_START):
            _end_sentence(sentences, current)  # a document boundary is a sentence boundary too
            continue
        if len(parts) < needed:
            raise DataFileError(
                f"{path}: line {number} has {len(parts)} column(s) but source.columns {columns} needs {needed}: "
                f"{line[:80]!r}. Fix the line (a word and its tag, separated by a tab or spaces) or source.columns"
            )
        for name, index in columns.items():
            current[name].append(parts[index])
    _end_sentence(sentences, current)  # a last sentence without a blank line after it
    if not next(iter(sentences.values())):
        raise DataFileError(f"{path} holds no sentences: give one token per line, a blank line between sentences")
    return Dataset.from_dict(sentences)


def _columns(options: dict[str, Any]) -> dict[str, int]:
    """``source.columns`` checked: a mapping of field names to column numbers."""
    columns = options.get("columns", DEFAULT_COLUMNS)
    if (
        not isinstance(columns, dict) or not columns
        or not all(isinstance(index, int) and not isinstance(index, bool) for index in columns.values())
    ):
        raise TaskDefinitionError(
            f"source.columns is {columns!r}; map each field to a column number, e.g. `columns: {{tokens: 0, tags: 1}}`"
        )
    return {str(name): index for name, index in columns.items()}


def _end_sentence(sentences: dict[str, list[list[str]]], current: dict[str, list[str]]) -> None:
    """Move the sentence read so far (if any) into ``sentences``; blank runs give no empty sentences."""
    if next(iter(current.values())):
        for name, words in current.items():
            sentences[name].append(words)
            current[name] = []

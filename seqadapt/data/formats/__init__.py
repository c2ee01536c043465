"""File formats a task's ``source.format`` names: each parser turns one decoded file into a ``datasets.Dataset``.

A parser is ``parse(path, text, options) -> Dataset``: ``text`` is the file's
decoded content, ``options`` the task's ``source`` mapping (for
format-specific keys such as ``columns`` or ``skip_lines``). Table formats give
string columns; ``conll``, ``squad`` and the JSON formats keep lists and
mappings (tokens, tags, SQuAD answers) as they are. Adding a format is a
module here and one line below.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from datasets import Dataset

from seqadapt.data.formats import bigbench, conll, similarity_matrix, squad, tables

Parser = Callable[[Path, str, dict[str, Any]], Dataset]

FORMATS: dict[str, Parser] = {
    "csv": tables.read_csv,
    "tsv": tables.read_tsv,
    "orange_tab": tables.read_orange_tab,
    "json": tables.read_json,
    "jsonl": tables.read_jsonl,
    "trec": tables.read_trec,
    "similarity_matrix": similarity_matrix.read_similarity_matrix,
    "bigbench": bigbench.read_bigbench,
    "conll": conll.read_conll,
    "squad": squad.read_squad,
}

__all__ = ["FORMATS", "Parser"]

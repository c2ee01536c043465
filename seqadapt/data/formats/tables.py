"""Tables of text (CSV, TSV, Orange .tab, TREC lines) and JSON records (a list, or one object per line)."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
from datasets import Dataset

from seqadapt.errors import DataFileError

_TREC_LINE = re.compile(r"^(?P<label>[A-Z]+):(?P<fine>\S+) (?P<text>.+)$")


def _strings(frame: pd.DataFrame) -> Dataset:
    return Dataset.from_pandas(frame, preserve_index=False)


def read_csv(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    return _strings(pd.read_csv(io.StringIO(text), sep=",", dtype=str, keep_default_na=False))


def read_tsv(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    return _strings(pd.read_csv(io.StringIO(text), sep="\t", dtype=str, keep_default_na=False))


def read_orange_tab(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    """Orange: tab-separated, a header and two type rows, no quoting."""
    return _strings(pd.read_csv(io.StringIO(text), sep="\t", skiprows=[1, 2], dtype=str, quoting=3, keep_default_na=False))


def read_trec(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    """"COARSE:fine question text" per line."""
    lines = text.splitlines()[int(options.get("skip_lines", 0)) :]
    rows = []
    for number, line in enumerate(lines, start=1):
        match = _TREC_LINE.match(line.strip())
        if match is None:
            raise DataFileError(f"{path}: line {number} is not 'LABEL:fine text': {line[:80]!r}")
        rows.append({"label": match["label"], "fine_label": match["fine"], "text": match["text"]})
    return _strings(pd.DataFrame(rows))


def read_json(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    """A JSON list of objects (or an object of columns); lists and mappings in fields are kept."""
    data = json.loads(text)
    if isinstance(data, dict):
        return Dataset.from_dict(data)
    return _records(path, data, "the file")


def read_jsonl(path: Path, text: str, options: dict[str, Any]) -> Dataset:
    """One JSON object per non-blank line; lists and mappings in fields (tokens, SQuAD answers) are kept."""
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DataFileError(f"{path}: line {number} is not JSON ({err.msg}): {line[:80]!r}") from None
    return _records(path, records, "each line")


def _records(path: Path, records: Any, unit: str) -> Dataset:
    if not isinstance(records, list) or not all(isinstance(record, dict) for record in records):
        raise DataFileError(f"{path}: {unit} must hold JSON objects (one example each)")
    try:
        return Dataset.from_list(records)
    except Exception as err:  # pyarrow refuses fields whose type changes between records
        raise DataFileError(f"{path}: its records disagree on a field's type ({err}); give every record the same "
                            "fields with the same types") from None

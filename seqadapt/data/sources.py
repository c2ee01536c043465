"""Readers that turn a task's ``source`` into raw ``datasets.Dataset`` s, one per split the source provides.

Every reader returns ``{split: Dataset}`` with the source's own columns:
``"train"`` and optionally ``"test"`` for sources that ship a test split, or
``"all"`` for sources that must be split by seqadapt. Files are parsed as
text (every column a string); the task's kind picks and converts its columns.
"""

from __future__ import annotations

import bz2
import io
import re
from pathlib import Path
from typing import Any

import pandas as pd
from datasets import Dataset

from seqadapt.backbone import package_path
from seqadapt.data.tasks import TaskSpec
from seqadapt.errors import DataFileError, TaskDefinitionError

_TREC_LINE = re.compile(r"^(?P<label>[A-Z]+):(?P<fine>\S+) (?P<text>.+)$")


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if path.suffix == ".bz2":
        raw = bz2.decompress(raw)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        bad = raw[err.start : err.start + 1].hex()
        raise DataFileError(
            f"{path} is not valid UTF-8: byte 0x{bad} at offset {err.start}. "
            "Re-encode the file as UTF-8 (e.g. `iconv -f latin1 -t utf-8 in > out`)."
        ) from None


def _read_trec(path: Path, text: str, options: dict[str, Any]) -> pd.DataFrame:
    """"COARSE:fine question text" per line."""
    lines = text.splitlines()[int(options.get("skip_lines", 0)) :]
    rows = []
    for number, line in enumerate(lines, start=1):
        match = _TREC_LINE.match(line.strip())
        if match is None:
            raise DataFileError(f"{path}: line {number} is not 'LABEL:fine text': {line[:80]!r}")
        rows.append({"label": match["label"], "fine_label": match["fine"], "text": match["text"]})
    return pd.DataFrame(rows)


def read_table(path: Path, file_format: str, options: dict[str, Any]) -> Dataset:
    """Read one data file of a known format into a Dataset of strings."""
    text = _decode(path)
    if file_format in ("csv", "tsv"):
        frame = pd.read_csv(io.StringIO(text), sep="," if file_format == "csv" else "\t", dtype=str, keep_default_na=False)
    elif file_format == "orange_tab":  # Orange: tab-separated, header + 2 type rows, no quoting
        frame = pd.read_csv(io.StringIO(text), sep="\t", skiprows=[1, 2], dtype=str, quoting=3, keep_default_na=False)
    elif file_format in ("jsonl", "json"):
        frame = pd.read_json(io.StringIO(text), lines=file_format == "jsonl", dtype=False).astype(str)
    elif file_format == "trec":
        frame = _read_trec(path, text, options)
    else:
        raise TaskDefinitionError(f"unknown file format '{file_format}'; choose csv, tsv, orange_tab, json, jsonl or trec")
    return Dataset.from_pandas(frame, preserve_index=False)


def _read_files(files: dict[str, Path], source: dict[str, Any]) -> dict[str, Dataset]:
    return {split: read_table(path, source["format"], source) for split, path in files.items()}


def _read_hf_dataset(source: dict[str, Any]) -> dict[str, Dataset]:
    import datasets

    splits = source.get("splits", {"train": "train", "test": "test"})
    try:
        return {
            split: datasets.load_dataset(source["path"], source.get("name"), split=hf_split)
            for split, hf_split in splits.items()
        }
    except Exception as err:  # the datasets library raises many types for "cannot reach the Hub"
        raise DataFileError(
            f"could not load Hugging Face dataset '{source['path']}' ({source.get('name')}): {err}\n"
            "Hub datasets need network access; offline, use one of the bundled tasks in tasks/."
        ) from err


def read_source(spec: TaskSpec) -> dict[str, Dataset]:
    """All raw splits of a task's source."""
    source = spec.source
    kind = source.get("kind")
    if kind == "package_file":
        files = {split: package_path(source["package"], path) for split, path in source["files"].items()}
        return _read_files(files, source)
    if kind == "local_files":
        files = {split: Path(path) for split, path in source["files"].items()}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise DataFileError(f"task '{spec.name}': data file(s) not found: {missing}")
        return _read_files(files, source)
    if kind == "hf_dataset":
        return _read_hf_dataset(source)
    raise TaskDefinitionError(
        f"task '{spec.name}' has source kind {kind!r}; choose package_file, local_files or hf_dataset"
    )

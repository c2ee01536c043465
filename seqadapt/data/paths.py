"""Paths a task definition names, kept to their place: a definition someone sent you cannot make seqadapt read
your files or write outside its cache.

The rules, checked when the definition is read (each refusal names the definition file, the key and the fix):

- A file inside a package (``source.files`` of ``package_file`` and ``package_sdist``) is a relative POSIX path
  below the package's top folder: no leading ``/``, no ``..`` part, no backslash, no NUL.
- A package name and version (``source.package``, ``source.version``) are plain names, never paths: letters,
  digits and ``. _ -`` (a version also ``+`` and ``!``), the characters of PEP 503 names and PEP 440 versions.
- ``local_files`` are read from the definition's own folder. A name that leads elsewhere (absolute, with ``..``
  or through a symbolic link) is refused unless the file, its links resolved, lies in a folder listed in
  ``$SEQADAPT_DATA_DIRS`` (separated by ``:``): the user's opt-in for data kept elsewhere, which a definition
  cannot give itself.
- ``hf_dataset``'s ``path`` is a Hugging Face Hub id (``name`` or ``owner/name``), never a local folder.

Whatever is written into the cache is checked again, its links resolved, to lie inside it (:func:`inside`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath
from typing import Any

from seqadapt.data.listing import clip
from seqadapt.errors import TaskDefinitionError

DATA_DIRS = "SEQADAPT_DATA_DIRS"
MAX_NAME = 1024
PACKAGE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]{0,98}[A-Za-z0-9])?")  # PEP 503 project names
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+!-]{0,98}")  # PEP 440 characters
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?", re.ASCII)


def package_member(value: Any, where: str, key: str) -> str:
    """``value`` if it is a path below a package's top folder; else a :class:`TaskDefinitionError`."""
    if not isinstance(value, str) or not value:
        why = "is not a file name"
    elif len(value) > MAX_NAME:
        why = f"is longer than {MAX_NAME} characters"
    elif "\\" in value or "\0" in value:
        why = "holds a backslash or NUL"
    elif value.startswith("/"):
        why = "is absolute"
    elif ".." in PurePosixPath(value).parts:
        why = "climbs out of the package with '..'"
    else:
        return value
    raise TaskDefinitionError(f"{where}: {key} {_shown(value)} {why}; write the file's path below the package's "
                              "top folder, e.g. bigbench/benchmark_tasks/past_tense/task.json")


def plain_name(value: Any, where: str, key: str, pattern: re.Pattern[str], example: str) -> str:
    """``value`` (a number read as its text, e.g. a version ``1.0``) if ``pattern`` matches it whole (``fullmatch``:
    a trailing newline, which ``$`` would let through, is refused too)."""
    text = str(value) if isinstance(value, (str, int, float)) and not isinstance(value, bool) else None
    if text is None or ".." in text or not pattern.fullmatch(text):
        raise TaskDefinitionError(f"{where}: {key} {_shown(value)} is not a plain name (letters, digits, '.', '_', "
                                  f"'-'; it becomes part of a file name); write e.g. `{example}`")
    return text


def hub_id(value: Any, where: str, key: str) -> str:
    """``value`` if it reads as a Hub dataset id; a local folder would be read by ``datasets`` without a check."""
    if not isinstance(value, str) or ".." in value or not HUB_ID.fullmatch(value):
        raise TaskDefinitionError(f"{where}: {key} {_shown(value)} is not a Hugging Face Hub dataset id like "
                                  "nyu-mll/glue; files of your own are read with source.kind: local_files")
    return value


def local_file(folder: Path, name: Any, where: str, key: str) -> Path:
    """``folder/name`` with its links resolved, if it lies in ``folder`` or a folder of ``$SEQADAPT_DATA_DIRS``."""
    if not isinstance(name, str) or not name or "\0" in name or len(name) > MAX_NAME:
        raise TaskDefinitionError(f"{where}: {key} {_shown(name)} is not a file name; write e.g. "
                                  "`train: data/train.csv`")
    path = (folder / name).resolve()
    if any(inside(path, root) for root in (folder, *data_dirs())):
        return path
    raise TaskDefinitionError(
        f"{where}: {key} {name!r} leads outside the definition's folder {folder.resolve()} (to {path}). A definition "
        f"reads its local files from its own folder: move the file there or, if you trust this definition, add the "
        f"folder that holds the file to {DATA_DIRS} (e.g. export {DATA_DIRS}={path.parent})"
    )


def data_dirs() -> list[Path]:
    """The folders the user allows local files from, besides each definition's own (``$SEQADAPT_DATA_DIRS``)."""
    return [Path(entry).expanduser() for entry in os.environ.get(DATA_DIRS, "").split(os.pathsep) if entry]


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` lies in ``root`` (or is it), both with their symbolic links resolved."""
    return Path(path).resolve().is_relative_to(Path(root).resolve())


def _shown(value: Any) -> str:
    return clip(repr(value), 120)

"""Where a run keeps its tasks' versions and retirements, and how a new version replaces the current one.

Layout inside a run directory::

    artefacts/<task>/          the task's CURRENT version (what serving, resume and growth load); its manifest's
                               ``version`` says which (absent: 1, the version the stream trained)
    versions/<task>/v<k>/      a sealed copy of every version that has been replaced (and so can be restored)
    versions/<task>/v<k>.stage.json  what results.json said of its stage then (train examples, seconds, settings)
    retired.json               {"tasks": {<task>: {"version": k, "time": ...}}}: tasks no longer served or selected

``artefacts/<task>/`` always holds the current version, so everything that
loads artefacts (serving, resume, growth, ``seqadapt-verify``) needs to know
nothing about versions. A version is never replaced before a copy of it is
kept (:func:`keep_current`), and the replacement itself is one atomic exchange
of two folders (:func:`exchange_folders`), so a crash leaves either the old
version current or the new one, never neither. The new version is built in
:data:`STAGING` first, which is removed when the operation ends, also when it
fails; one left by a killed operation is removed by the next.

A kept version's stage facts are restored with it, so ``results.json``
describes the current version's training, not the last one's.

Retirement lives in its own file rather than only in ``results.json``'s
history: a damaged ``results.json`` is rebuilt by resume, and a retired task
(retired perhaps because it answers wrongly) must not quietly come back.
Both files are read as received files (bounded, typed).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypedDict

from seqadapt.artefacts import MANIFEST_FILE, SEAL_FILE, ArtefactError, read_manifest, seal_line, task_artefact_dir
from seqadapt.io import atomic_write, atomic_write_json, fsync_dir, own_folder
from seqadapt.untrusted_json import UntrustedJsonError, check_type, read_json_object

VERSIONS = "versions"
RETIRED_FILE = "retired.json"
STAGING = ".task-operation"
STAGE_SUFFIX = ".stage.json"
MAX_RETIRED_BYTES = 4 * 2**20
MAX_STAGE_BYTES = 4 * 2**20
_VERSION_FOLDER = re.compile(r"v([1-9][0-9]{0,8})")
_RENAME_EXCHANGE, _AT_FDCWD = 2, -100  # linux/fs.h, fcntl.h


class Retirement(TypedDict):
    version: int
    time: str


class RetiredFile(TypedDict):
    tasks: dict[str, Retirement]


class KeptStage(TypedDict):
    """What results.json's record of a task's stage said of a version when it was replaced."""

    train_examples: int
    train_seconds: float
    settings: dict[str, Any]


def version_of(manifest: dict) -> int:
    """A manifest's version of its task: the stream trains version 1, each retrain the next."""
    return manifest.get("version", 1)


def versions_dir(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / VERSIONS / task


def kept_versions(run_dir: Path, task: str) -> dict[int, Path]:
    """The kept copies of ``task``'s versions, by number (folders ``v<k>`` holding a manifest)."""
    folder = versions_dir(run_dir, task)
    kept = {}
    for path in folder.iterdir() if folder.is_dir() and not folder.is_symlink() else ():
        match = _VERSION_FOLDER.fullmatch(path.name)
        if match and not path.is_symlink() and (path / MANIFEST_FILE).is_file():
            kept[int(match.group(1))] = path
    return dict(sorted(kept.items()))


def current_version(run_dir: Path, task: str) -> int:
    """The version ``artefacts/<task>/`` holds (its sealed manifest's)."""
    return version_of(read_manifest(task_artefact_dir(run_dir, task)))


def keep_current(run_dir: Path, task: str, stage: KeptStage) -> Path:
    """Make sure a copy of the current version of ``task`` is kept in ``versions/<task>/v<k>/``, with ``stage``
    (its stage's record) beside it, before anything replaces it; returns that folder. A copy already there must
    be the same version (same sealed manifest)."""
    current = task_artefact_dir(run_dir, task)
    version = current_version(run_dir, task)
    kept = versions_dir(run_dir, task) / f"v{version}"
    facts = kept.with_name(kept.name + STAGE_SUFFIX)
    if not facts.exists():
        atomic_write_json(own_folder(kept.parent) / facts.name, stage)
    if kept.exists() or kept.is_symlink():
        if kept.is_symlink() or (kept / MANIFEST_FILE).read_bytes() != (current / MANIFEST_FILE).read_bytes():
            raise ArtefactError(
                f"{kept} is not a copy of {current}, although both are version {version} of task '{task}': one was "
                f"changed by hand. Move {kept} out of the run folder if {current} is the version to keep, and retry"
            )
        return kept
    copy_folder(current, kept)
    return kept


def kept_stage(run_dir: Path, task: str, version: int) -> KeptStage | None:
    """The stage facts kept with version ``version`` of ``task``; ``None`` where none were kept or they cannot be
    read (the caller then keeps the stage record as it is)."""
    path = versions_dir(run_dir, task) / f"v{version}{STAGE_SUFFIX}"
    try:
        data = read_json_object(path, MAX_STAGE_BYTES)
        check_type(data, KeptStage, str(path))
    except (OSError, UntrustedJsonError):
        return None
    return {"train_examples": data["train_examples"], "train_seconds": data["train_seconds"], "settings": data["settings"]}


def copy_folder(source: Path, target: Path) -> None:
    """Copy the regular files of ``source`` (an artefact folder: no subfolders) to the new folder ``target``,
    durably: into a temporary folder beside it, each file fsync'd, then renamed into place in one step."""
    parent = own_folder(Path(target).parent)
    partial = parent / f".{Path(target).name}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    for path in sorted(Path(source).iterdir()):
        if path.is_symlink() or not path.is_file():
            raise ArtefactError(f"{path} is not a regular file; an artefact folder holds only its own files. "
                                f"Move it out of {source} and retry")
        atomic_write(partial / path.name, path.read_bytes())
    os.rename(partial, target)
    fsync_dir(parent)


def stamp_version(directory: Path, version: int) -> None:
    """Record ``version`` in the freshly written (not yet exposed) artefact in ``directory``, re-sealed."""
    manifest = read_manifest(directory)
    data = json.dumps({**manifest, "version": version}, indent=2).encode()
    atomic_write(directory / SEAL_FILE, seal_line(data))
    atomic_write(directory / MANIFEST_FILE, data)


@contextmanager
def staging(run_dir: Path) -> Iterator[Path]:
    """A fresh folder inside the run for building a new version aside (one left by a killed operation is
    removed first; the run's lock is held, so it is no one else's), removed afterwards, also on failure."""
    folder = Path(run_dir) / STAGING
    if folder.is_symlink():
        folder.unlink()
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def exchange_folders(first: Path, second: Path) -> None:
    """Swap two folders of one file system in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``): a crash
    leaves either both as they were or both swapped. Where the call is missing (another OS, a file system
    without it), three renames do the same; a crash between them leaves ``first`` missing, and the copy kept
    by :func:`keep_current` restores it (``seqadapt-task restore``)."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is not None:
        done = renameat2(_AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE)
        code = ctypes.get_errno() if done != 0 else 0
        if code not in (0, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise OSError(code, f"cannot exchange {first} and {second}: {os.strerror(code)}")
        if code == 0:
            fsync_dir(Path(first).parent)
            fsync_dir(Path(second).parent)
            return
    aside = Path(second).with_name(Path(second).name + ".exchanging")
    os.rename(first, aside)
    os.rename(second, first)
    os.rename(aside, second)
    fsync_dir(Path(first).parent)
    fsync_dir(Path(second).parent)


def retired_tasks(run_dir: Path) -> dict[str, Retirement]:
    """The run's retired tasks (``retired.json``), each with the version retired and when; ``{}`` if none.

    A damaged file is an error, not "nothing retired": serving a task someone
    retired is the mistake this file exists to prevent.
    """
    path = Path(run_dir) / RETIRED_FILE
    if not path.exists() and not path.is_symlink():
        return {}
    try:
        if path.is_symlink():
            raise UntrustedJsonError(str(path), "a symbolic link, not seqadapt's own file")
        data = read_json_object(path, MAX_RETIRED_BYTES)
        check_type(data, RetiredFile, str(path))
    except UntrustedJsonError as err:
        raise ArtefactError(
            f"{err}: it names the tasks of this run that are retired (not served). Restore it from a backup, or, "
            f"to serve every task again, delete it (rm '{path}') and retire the tasks again (seqadapt-task retire)"
        ) from None
    return data["tasks"]


def write_retired(run_dir: Path, tasks: dict[str, Retirement]) -> None:
    """Replace ``retired.json`` atomically; no retired task: the file is removed."""
    path = Path(run_dir) / RETIRED_FILE
    if tasks:
        atomic_write_json(path, {"tasks": dict(sorted(tasks.items()))})
    elif path.exists() or path.is_symlink():
        path.unlink()
        fsync_dir(Path(run_dir))

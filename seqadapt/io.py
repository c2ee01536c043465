"""The one way seqadapt writes a file: atomically, so a crash leaves the old file or the new one, never half;
and the one way it opens a file it keeps open in a run folder: never through a symbolic link.

Temporary file in the same folder (so the rename never crosses file systems),
flushed and fsync'd, renamed over the target, then the folder itself fsync'd
so the rename survives a power cut. Used for results.json, manifests,
artefact weights, run_config.yaml, Hydra's ``.hydra/`` files, plots, reports and their CSVs.
The rename replaces a symbolic link at the target rather than writing through it.

Run folders are passed between people, so a file in one may be a link to any
file of the reader's (``.seqadapt.lock -> ~/.bashrc``): :func:`open_regular`
opens without following links and refuses anything but a regular file (and,
to write, one with other hard links); :func:`own_folder` refuses a linked folder.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import os
import secrets
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


class NotARegularFileError(OSError):
    """A run folder holds a symbolic link, a FIFO or a device where seqadapt opens one of its own files or folders."""


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one atomic step.

    The file gets the mode a plain ``open()`` would give it (``0o666`` less the
    umask), not ``mkstemp``'s private ``0o600``, so it reads like its neighbours.
    """
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, tmp = _new_temporary(path)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise OSError(
                err.errno, f"no space left to write {path} ({len(payload)} bytes); {path.name} is unchanged. Free "
                "space, then continue the run with resume=<run dir>: finished stages are kept"
            ) from err
        raise
    fsync_dir(path.parent)


def atomic_write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON, written with :func:`atomic_write`."""
    atomic_write(path, json.dumps(data, indent=2))


def atomic_write_csv(path: Path, rows: Iterable[Sequence[Any]]) -> None:
    """``rows`` as CSV (``csv.writer``'s default dialect), written with :func:`atomic_write`."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    atomic_write(path, buffer.getvalue())


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable (a no-op where folders cannot be opened)."""
    try:
        handle = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


def open_regular(path: Path, flags: int) -> int:
    """``os.open(path, flags)`` (mode ``0o666`` less the umask if created) that refuses a symbolic link at
    ``path`` and anything but a regular file (a FIFO would block, a device would be written to), and, to write,
    a file with other hard links (the same file under another name, perhaps outside the folder).

    ``O_NOFOLLOW`` makes the refusal part of the open itself: checking first and
    opening after would leave a moment in which the link could be put back.
    Links in the folders above ``path`` are followed (``runs -> /scratch/runs`` is
    the user's own choice).
    """
    path = Path(path)
    try:
        handle = os.open(path, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise NotARegularFileError(
                errno.ELOOP, f"{path} is a symbolic link; seqadapt does not open links inside a run folder (a "
                "received folder's link could point at any file of yours). Remove the link (it is not seqadapt's; "
                f"rm '{path}') and run again"
            ) from None
        raise
    problem = _not_own(os.fstat(handle), writing=bool(flags & (os.O_WRONLY | os.O_RDWR)))
    if problem:
        os.close(handle)
        raise NotARegularFileError(
            errno.EINVAL, f"{path} {problem}; seqadapt uses only its own files in a run folder. Remove it "
            f"(rm '{path}'; seqadapt makes a new one, so copy it first if you want its content) and run again"
        )
    os.set_blocking(handle, True)
    return handle


def own_folder(path: Path) -> Path:
    """``path`` as a folder, created if missing; a symbolic link there is refused, since what is written into
    it would land wherever the link points (a received folder's ``.hydra -> ~/.ssh``)."""
    path = Path(path)
    if path.is_symlink():
        raise NotARegularFileError(
            errno.ELOOP, f"{path} is a symbolic link; seqadapt writes into no links inside a run folder (a received "
            f"folder's link could point at any folder of yours). Remove the link (rm '{path}') and run again"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path


def _not_own(status: os.stat_result, writing: bool) -> str | None:
    """Why an opened file is not one seqadapt may use as its own, or ``None``."""
    if not stat.S_ISREG(status.st_mode):
        return "is not a regular file (a FIFO, socket or device)"
    if writing and status.st_nlink > 1:
        return f"has {status.st_nlink - 1} other hard link(s), which writing it would change too"
    return None


def _new_temporary(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, created as ``open()`` creates files (the kernel applies the umask), under a
    name no one else holds (``O_EXCL``; like ``mkstemp``, which would make it ``0o600``)."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, f"no free temporary name beside {path} after 100 tries")

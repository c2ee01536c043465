"""One writer or many readers per run folder: a lock that names its writer and dies with its holder.

``fcntl.flock`` on ``<run dir>/.seqadapt.lock``: the kernel releases it when
the holding process ends, however it ends, so a lock left by a killed run is
simply taken over; a writer (a run, a resume) takes it exclusively and records
who it is (pid, host, start time), so whoever it refuses is told whom they
collided with. A reader (``seqadapt-predict``) takes it shared: any number of
readers at once, none while a writer holds it (a resume may move a damaged
artefact aside under the reader's feet), and no writer while one reads. A
reader never writes the file. (Local file systems only: flock is not reliable
over NFS.)

The file is opened without following links (:func:`seqadapt.io.open_regular`):
a received folder's ``.seqadapt.lock`` may be a link to any file of yours,
which taking the lock would otherwise truncate.

A reader of a folder it may not write (a read-only copy, someone else's
folder) where no lock file exists yet reads without a lock: it cannot create
the file, and none of its own processes can be writing there either.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

from seqadapt.io import open_regular

LOCK_FILE = ".seqadapt.lock"
HOLDER_BYTES = 4096  # a holder record is ~80 bytes; a received file is read no further
log = logging.getLogger("seqadapt")


class RunLockedError(RuntimeError):
    """Another process is writing the same run folder, or reading it while this one would write."""


class RunLock:
    """``with RunLock(run_dir):`` holds the run folder for writing by this process; ``with RunLock(run_dir,
    shared=True):`` holds it for reading. Either raises :class:`RunLockedError` where the other kind holds it."""

    def __init__(self, run_dir: Path, shared: bool = False) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self.shared = shared
        self._handle: int | None = None

    def __enter__(self) -> RunLock:
        handle = self._open()
        if handle is None:
            return self
        try:
            fcntl.flock(handle, (fcntl.LOCK_SH if self.shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            os.close(handle)
            raise RunLockedError(self._refusal(holder)) from None
        if not self.shared:
            _record_holder(handle, self.path.parent)
        self._handle = handle
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._handle is None:
            return
        if not self.shared:
            os.ftruncate(self._handle, 0)  # released: the next holder finds no one to take over from
        os.close(self._handle)  # closing releases the flock
        self._handle = None

    def _open(self) -> int | None:
        """The lock file's descriptor; ``None`` for a reader that cannot create it (see the module docstring)."""
        if not self.shared:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return open_regular(self.path, os.O_RDWR | os.O_CREAT)
        try:
            return open_regular(self.path, os.O_RDONLY | os.O_CREAT)
        except OSError as err:
            if err.errno not in (errno.EACCES, errno.EROFS, errno.EPERM) or self.path.exists():
                raise
        log.debug("run folder %s cannot hold %s (not writable here); reading it without a lock",
                  self.path.parent, LOCK_FILE)
        return None

    def _refusal(self, holder: dict[str, str]) -> str:
        folder = self.path.parent
        if self.shared or (holder and _alive(holder)):  # only a writer can refuse a reader
            writer = (f"{folder} is being written by another seqadapt run (pid {holder.get('pid', '?')} on "
                      f"{holder.get('host', '?')}, started {holder.get('started', '?')}).")
            if self.shared:
                return f"{writer} Read it when that run has finished (or stop it); until then its artefacts may change."
            return f"{writer} Wait for it to finish, stop it, or give this run its own folder (hydra.run.dir=...)."
        return (f"{folder} is being read by another process (seqadapt-predict holds a shared lock on {LOCK_FILE} "
                "while it serves from the folder), and a run may not change it meanwhile. Wait for the readers to "
                "finish, stop them, or give this run its own folder (hydra.run.dir=...).")


def _record_holder(handle: int, folder: Path) -> None:
    previous = _holder(handle)
    if previous:
        log.info("run folder %s: took over the lock of pid %s, which is no longer running", folder, previous.get("pid"))
    record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode()
    os.ftruncate(handle, 0)
    os.pwrite(handle, record, 0)


def _holder(handle: int) -> dict[str, str]:
    """Who the file says holds the lock; ``{}`` if no one or the file is not a holder record (it may have come
    with a received folder: read at most :data:`HOLDER_BYTES`, only short printable strings kept)."""
    try:
        record = json.loads(os.pread(handle, HOLDER_BYTES, 0).decode("utf-8") or "{}")
    except (ValueError, RecursionError):
        return {}
    if not isinstance(record, dict):
        return {}
    return {key: "".join(c for c in str(record[key])[:80] if c.isprintable())
            for key in ("pid", "host", "started") if key in record}


def _alive(holder: dict[str, str]) -> bool:
    """Whether the recorded writer may still hold the lock: a writer killed on this host left its record
    behind, and the lock is then held by readers. (Another host's pid cannot be checked: assumed alive.)"""
    if holder.get("host") != socket.gethostname() or not holder.get("pid", "").isdigit():
        return True
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

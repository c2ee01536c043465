"""One writer per run folder: a lock that names its holder and dies with it.

``fcntl.flock`` on ``<run dir>/.seqadapt.lock``: the kernel releases it when
the holding process ends, however it ends, so a lock left by a killed run is
simply taken over; the file records who holds it (pid, host, start time) so
a refused second writer can be told whom it collided with. (Local file
systems only: flock is not reliable over NFS.)
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import socket
import time
from pathlib import Path
from types import TracebackType

LOCK_FILE = ".seqadapt.lock"
log = logging.getLogger("seqadapt")


class RunLockedError(RuntimeError):
    """Another process is writing the same run folder."""


class RunLock:
    """``with RunLock(run_dir):`` holds the run folder for this process, or raises :class:`RunLockedError`."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._handle = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = self._holder(handle)
            handle.close()
            raise RunLockedError(
                f"{self.path.parent} is being written by another seqadapt run (pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')}, started {holder.get('started', '?')}). Wait for it to finish, stop it, "
                "or give this run its own folder (hydra.run.dir=...)."
            ) from None
        previous = self._holder(handle)
        if previous:
            log.info("run folder %s: took over the lock of pid %s, which is no longer running",
                     self.path.parent, previous.get("pid"))
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
        handle.flush()
        self._handle = handle
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._handle is not None:
            self._handle.seek(0)
            self._handle.truncate()  # released: the next holder finds no one to take over from
            self._handle.close()  # closing releases the flock
            self._handle = None

    @staticmethod
    def _holder(handle) -> dict:
        handle.seek(0)
        try:
            return json.loads(handle.read() or "{}")
        except json.JSONDecodeError:
            return {}

"""A blocking, exclusive lock on a file in the cache, so that processes sharing the cache (DDP ranks, joblib
sweep workers) fetch a file one at a time: the first downloads and verifies, the others wait and use its result.

``fcntl.flock``: the kernel releases it when its holder ends, however it ends, so a killed fetch never leaves the
cache locked. The lock file is opened without following a symbolic link (:func:`seqadapt.io.open_regular`),
so a link planted in the cache cannot make seqadapt create or open a file elsewhere. (Local file systems: flock
is not reliable over NFS.)
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seqadapt.errors import DataFileError
from seqadapt.io import NotARegularFileError, open_regular


@contextmanager
def exclusive(path: Path, what: str) -> Iterator[None]:
    """Hold ``path`` (created if absent) for the ``with`` block; says on stderr that it waits when another
    process holds it. ``what`` names the work, e.g. ``fetching bigbench==1.0.0``."""
    try:
        handle = open_regular(path, os.O_RDWR | os.O_CREAT)
    except NotARegularFileError:
        raise DataFileError(f"{path} is a symbolic link or a special file; the cache's lock files are plain files "
                            "that seqadapt creates. Remove it and run again") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"seqadapt: waiting for another process {what} (lock {path})", file=sys.stderr)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)  # closing releases the flock

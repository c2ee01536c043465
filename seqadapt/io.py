"""The one way seqadapt writes a file: atomically, so a crash leaves the old file or the new one, never half.

Temporary file in the same folder (so the rename never crosses file systems),
flushed and fsync'd, renamed over the target, then the folder itself fsync'd
so the rename survives a power cut. Used for results.json, manifests,
artefact weights and run_config.yaml.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write(path: Path, data: bytes | str) -> None:
    """Replace ``path`` with ``data`` (text is written as UTF-8) in one atomic step."""
    path = Path(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
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

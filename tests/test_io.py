"""The one atomic write: a complete new file or the old one, never half, and no temporary files left over."""

import os

import pytest

from seqadapt.io import atomic_write, atomic_write_json


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "results.json"
    atomic_write_json(path, {"a": 1})
    atomic_write(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_its_temporary(tmp_path, monkeypatch):
    path = tmp_path / "manifest.json"
    atomic_write(path, b"old")

    def full_disk(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", full_disk)
    with pytest.raises(OSError, match="no space left to write .*manifest.json is unchanged"):
        atomic_write(path, b"new")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["manifest.json"]


def test_a_full_disk_names_the_file_and_the_way_out(tmp_path, monkeypatch):
    path = tmp_path / "results.json"
    real_fsync = os.fsync

    def full(handle):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match=r"no space left to write .*results.json .*resume=<run dir>"):
        atomic_write(path, "x" * 10)
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert list(tmp_path.iterdir()) == []  # no .tmp left behind

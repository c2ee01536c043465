"""The one atomic write: a complete new file or the old one, never half, no temporary files left over, the mode a
plain open() gives, and never through a link."""

import csv
import os
import stat

import pytest

from seqadapt.io import NotARegularFileError, atomic_write, atomic_write_csv, atomic_write_json, own_folder


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


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_a_written_file_has_the_mode_a_plain_open_gives(tmp_path, umask):
    previous = os.umask(umask)
    try:
        with open(tmp_path / "plain.txt", "w") as handle:  # the reference: what open() makes under this umask
            handle.write("x")
        atomic_write(tmp_path / "atomic.txt", "x")
    finally:
        os.umask(previous)
    mode = {name: stat.S_IMODE((tmp_path / name).stat().st_mode) for name in ("atomic.txt", "plain.txt")}
    assert mode["atomic.txt"] == mode["plain.txt"]


def test_a_link_at_the_target_is_replaced_not_written_through(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (tmp_path / "results.json").symlink_to(outside)
    atomic_write(tmp_path / "results.json", "new")
    assert outside.read_text() == "keep me" and not (tmp_path / "results.json").is_symlink()


def test_a_linked_folder_is_refused_not_written_into(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / ".hydra").symlink_to(elsewhere)
    with pytest.raises(NotARegularFileError, match=r"\.hydra is a symbolic link; seqadapt writes into no links"):
        own_folder(tmp_path / ".hydra")
    assert own_folder(tmp_path / "new" / ".hydra").is_dir() and list(elsewhere.iterdir()) == []


def test_csv_rows_read_back_with_the_csv_module(tmp_path):
    rows = [["name", "note"], ["a, b", 'say "hi"'], ["line\nbreak", 1.5]]
    atomic_write_csv(tmp_path / "t.csv", rows)
    with open(tmp_path / "t.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [[str(value) for value in row] for row in rows]

"""Where a run keeps its tasks' versions and retirements, and how a new version takes the current one's place."""

import hashlib
import json
import os

import pytest

from seqadapt import versions
from seqadapt.artefacts import MANIFEST_FILE, SEAL_FILE, ArtefactError, read_manifest, task_artefact_dir
from seqadapt.versions import (
    STAGING,
    copy_folder,
    exchange_folders,
    keep_current,
    kept_stage,
    kept_versions,
    retired_tasks,
    stamp_version,
    staging,
    version_of,
    write_retired,
)
from tests.test_task_ops import copy_run, finished_run, snapshot

FACTS = {"train_examples": 48, "train_seconds": 1.5, "settings": {"trainer.max_epochs": 1}}


@pytest.fixture
def run_dir(tmp_path_factory, tmp_path):
    return copy_run(finished_run(tmp_path_factory), tmp_path / "run")


class NoRenameat2:
    """A C library without renameat2 (another OS): the exchange falls back to three renames."""


def no_rename(*args):
    raise AssertionError("the exchange took three renames where renameat2 does it in one")


@pytest.mark.parametrize("libc", ["native", "without renameat2"])
def test_two_folders_are_exchanged(tmp_path, monkeypatch, libc):
    if libc == "native":
        if not hasattr(versions.ctypes.CDLL(None), "renameat2"):
            pytest.skip("this C library has no renameat2")
        monkeypatch.setattr(versions.os, "rename", no_rename)  # one atomic call, not the fallback's three
    else:
        monkeypatch.setattr(versions.ctypes, "CDLL", lambda *args, **kwargs: NoRenameat2())
    for name, content in (("a", b"first"), ("b", b"second")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "file").write_bytes(content)
    exchange_folders(tmp_path / "a", tmp_path / "b")
    assert (tmp_path / "a" / "file").read_bytes() == b"second" and (tmp_path / "b" / "file").read_bytes() == b"first"
    assert sorted(os.listdir(tmp_path)) == ["a", "b"]


def test_the_current_version_is_kept_once_with_its_stage_and_a_changed_copy_is_refused(run_dir):
    kept = keep_current(run_dir, "colors", FACTS)
    assert kept == run_dir / "versions" / "colors" / "v1" and kept_versions(run_dir, "colors") == {1: kept}
    assert snapshot(kept) == snapshot(task_artefact_dir(run_dir, "colors")) and kept_stage(run_dir, "colors", 1) == FACTS
    assert keep_current(run_dir, "colors", {**FACTS, "train_examples": 1}) == kept  # already kept: left as it is
    assert kept_stage(run_dir, "colors", 1) == FACTS and kept_stage(run_dir, "colors", 2) is None
    (kept / MANIFEST_FILE).write_text((kept / MANIFEST_FILE).read_text().replace('"stage": 1', '"stage": 7'))
    with pytest.raises(ArtefactError, match=r"versions/colors/v1 is not a copy of .*artefacts/colors, although both are "
                                            r"version 1 of task 'colors'.*Move .*v1 out of the run folder"):
        keep_current(run_dir, "colors", FACTS)


def test_only_version_folders_holding_a_manifest_count_as_kept_versions(run_dir):
    folder = run_dir / "versions" / "colors"
    copy_folder(task_artefact_dir(run_dir, "colors"), folder / "v3")
    for name in ("v0", "vx", "v3.partial", "v4"):
        (folder / name).mkdir()
    (folder / "v5").symlink_to(folder / "v3")
    assert kept_versions(run_dir, "colors") == {3: folder / "v3"}


def test_a_version_is_stamped_into_its_manifest_and_sealed_again(run_dir, tmp_path):
    folder = tmp_path / "aside" / "colors"
    copy_folder(task_artefact_dir(run_dir, "colors"), folder)
    assert version_of(read_manifest(folder)) == 1
    stamp_version(folder, 3)
    manifest = folder / MANIFEST_FILE
    assert version_of(read_manifest(folder)) == 3  # read_manifest checks the seal
    assert (folder / SEAL_FILE).read_text() == f"{hashlib.sha256(manifest.read_bytes()).hexdigest()}  {MANIFEST_FILE}\n"
    assert {k: v for k, v in json.loads(manifest.read_text()).items() if k != "version"} == read_manifest(
        task_artefact_dir(run_dir, "colors"))


def test_retirements_are_written_read_and_cleared(run_dir):
    assert retired_tasks(run_dir) == {}
    write_retired(run_dir, {"colors": {"version": 2, "time": "2026-01-01T00:00:00+00:00"}})
    assert retired_tasks(run_dir) == {"colors": {"version": 2, "time": "2026-01-01T00:00:00+00:00"}}
    write_retired(run_dir, {})
    assert retired_tasks(run_dir) == {} and not (run_dir / "retired.json").exists()


@pytest.mark.parametrize("content", ['{"tasks": {"colors": {"version": "two"}}}', "[", '{"tasks": []}'])
def test_a_damaged_retirement_file_is_an_error_never_nothing_retired(run_dir, content):
    (run_dir / "retired.json").write_text(content)
    with pytest.raises(ArtefactError, match=r"retired.json.*not served.*delete it \(rm .*retired.json'\) and retire"):
        retired_tasks(run_dir)


def test_a_linked_retirement_file_is_refused(run_dir, tmp_path):
    (tmp_path / "elsewhere.json").write_text('{"tasks": {}}')
    (run_dir / "retired.json").symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(ArtefactError, match=r"retired.json is a symbolic link"):
        retired_tasks(run_dir)


def test_the_staging_folder_is_fresh_and_gone_afterwards_also_after_a_failure(run_dir):
    (run_dir / STAGING).mkdir()
    (run_dir / STAGING / "left by a killed operation").write_text("x")
    with pytest.raises(RuntimeError, match="failed"):
        with staging(run_dir) as aside:
            assert list(aside.iterdir()) == []
            (aside / "half written").write_text("x")
            raise RuntimeError("failed")
    assert not (run_dir / STAGING).exists()

"""A checkpoint folder is read as received: the files its manifest names are plain names inside it, regular
files, of the recorded size and SHA-256; a manifest of the wrong shape is refused naming the key."""

import hashlib
import json

import pytest

from seqadapt.artefacts import ArtefactError
from seqadapt.stage_checkpoint import CHECKPOINT_DIR, MANIFEST, check_file, file_entry, load_checkpoint


def entry(data: bytes, name: str = "replay_memory.json") -> dict:
    return {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def test_a_recorded_file_of_the_same_size_and_hash_is_accepted(tmp_path):
    (tmp_path / "replay_memory.json").write_bytes(b'{"rows": {}}')
    assert check_file(tmp_path, entry(b'{"rows": {}}'), tmp_path / MANIFEST) == tmp_path / "replay_memory.json"
    assert file_entry(tmp_path / "replay_memory.json") == entry(b'{"rows": {}}')


@pytest.mark.parametrize("name", ["../results.json", "/etc/passwd", "sub/file", "..", ""])
def test_a_name_that_leaves_the_folder_is_refused(tmp_path, name):
    with pytest.raises(ArtefactError, match="which is not a file name: an artefact.s files must lie directly in its folder"):
        check_file(tmp_path, entry(b"x", name), tmp_path / MANIFEST)


def test_a_link_in_place_of_a_recorded_file_is_refused(tmp_path):
    (tmp_path / "elsewhere").write_bytes(b"x")
    (tmp_path / "replay_memory.json").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(ArtefactError, match="is missing or not a regular file"):
        check_file(tmp_path, entry(b"x"), tmp_path / MANIFEST)


def test_a_file_of_another_size_or_content_is_refused(tmp_path):
    (tmp_path / "replay_memory.json").write_bytes(b"xy")
    with pytest.raises(ArtefactError, match="holds 2 bytes; .* records 1"):
        check_file(tmp_path, entry(b"x"), tmp_path / MANIFEST)
    with pytest.raises(ArtefactError, match="SHA-256 differs"):
        check_file(tmp_path, entry(b"xz"), tmp_path / MANIFEST)


def test_a_manifest_of_the_wrong_shape_is_refused_naming_the_key(tmp_path):
    folder = tmp_path / CHECKPOINT_DIR
    folder.mkdir()
    (folder / MANIFEST).write_text(json.dumps({"format": 1, "stage": "two"}))
    with pytest.raises(ArtefactError, match="cannot read the checkpoint .*manifest.json.* without .backbone_sha256.*start it again"):
        load_checkpoint(tmp_path, tmp_path / "continual")
    (folder / MANIFEST).write_text("[]")
    with pytest.raises(ArtefactError, match="not an object"):
        load_checkpoint(tmp_path, tmp_path / "continual")

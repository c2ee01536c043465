"""``local_files`` are read from the definition's own folder: a definition someone sent you cannot name
``/etc/passwd`` or ``../../secret.csv``; data kept elsewhere needs the user's opt-in, ``SEQADAPT_DATA_DIRS``."""

import pytest
import yaml

from seqadapt.data import TaskDefinitionError, load_task_spec, read_source
from tests.conftest import write_toy_task


@pytest.fixture
def task_dir(tmp_path, monkeypatch):
    """tmp_path/tasks with the toy 'colors' task; tmp_path/elsewhere holds a copy of its data, outside."""
    monkeypatch.delenv("SEQADAPT_DATA_DIRS", raising=False)
    folder, elsewhere = tmp_path / "tasks", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    write_toy_task(folder, "colors")
    for split in ("train", "test"):
        (elsewhere / f"colors_{split}.csv").write_bytes((folder / f"colors_{split}.csv").read_bytes())
    return folder


def point_files(task_dir, train):
    path = task_dir / "colors.yaml"
    definition = yaml.safe_load(path.read_text())
    definition["source"]["files"]["train"] = train
    path.write_text(yaml.safe_dump(definition))
    return path


@pytest.mark.parametrize("train", ["../elsewhere/colors_train.csv", "{outside}/colors_train.csv", "/etc/passwd"])
def test_a_local_file_outside_the_definitions_folder_is_refused(task_dir, train):
    # before: read, whatever it named (an absolute path, or one climbing out with '..')
    train = train.format(outside=task_dir.parent / "elsewhere")
    path = point_files(task_dir, train)
    with pytest.raises(TaskDefinitionError, match=rf"^{path}: source.files.train '{train}' leads outside the "
                                                  rf"definition's folder {task_dir} .* move the file there or, if "
                                                  "you trust this definition, add the folder that holds the file to "
                                                  "SEQADAPT_DATA_DIRS"):
        load_task_spec("colors", task_dir)


def test_a_symbolic_link_out_of_the_folder_is_refused(task_dir):
    # before: followed, so a received task folder with a link named data.csv read whatever it pointed at
    (task_dir / "linked.csv").symlink_to(task_dir.parent / "elsewhere" / "colors_train.csv")
    path = point_files(task_dir, "linked.csv")
    with pytest.raises(TaskDefinitionError, match=rf"^{path}: source.files.train 'linked.csv' leads outside"):
        load_task_spec("colors", task_dir)


def test_data_dirs_let_the_user_read_files_kept_elsewhere(task_dir, monkeypatch):
    outside = task_dir.parent / "elsewhere"
    point_files(task_dir, str(outside / "colors_train.csv"))
    monkeypatch.setenv("SEQADAPT_DATA_DIRS", f"/nonexistent:{outside}")
    spec = load_task_spec("colors", task_dir)
    assert spec.source["files"]["train"] == str(outside / "colors_train.csv")
    assert len(read_source(spec)["train"]) == 160


def test_files_in_subfolders_and_links_within_the_folder_are_read(task_dir):
    (task_dir / "data").mkdir()
    (task_dir / "colors_train.csv").rename(task_dir / "data" / "train.csv")
    (task_dir / "link.csv").symlink_to(task_dir / "data" / "train.csv")
    for name in ("data/train.csv", "./data/../data/train.csv", "link.csv"):
        point_files(task_dir, name)
        spec = load_task_spec("colors", task_dir)
        assert spec.source["files"]["train"] == str(task_dir / "data" / "train.csv")

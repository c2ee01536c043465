"""The run folder, as a received folder is treated: resume runs no code named in it and resolves nothing from it,
nothing is opened through a link in it, a run never writes over another, and nothing (``.hydra/`` included) is
written before the folder's lock is held, which stays held for the whole run and resume."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hydra.utils import get_class

from seqadapt.artefacts import ARTEFACTS
from seqadapt.cli.train import run
from seqadapt.io import NotARegularFileError
from seqadapt.lock import RunLock, RunLockedError
from seqadapt.saved_config import SavedConfigError
from seqadapt.stream import StreamCallback
from tests.cli.test_train import FAST, compose_train
from tests.conftest import write_toy_task

PROBE = "tests.cli.test_run_folder.LockProbe"


class LockProbe(StreamCallback):
    """Before each stage, tries the run folder's lock as a second writer and as a reader, and appends what it was
    told to ``record``; raises before the stage named ``stop_before`` (a run that stopped there)."""

    def __init__(self, record: str, stop_before: str | None = None) -> None:
        self.record = Path(record)
        self.stop_before = stop_before

    def on_stage_start(self, run, stage) -> None:
        for kind, shared in (("writer", False), ("reader", True)):
            try:
                with RunLock(run.output_dir, shared=shared):
                    told = "let in"
            except RunLockedError as err:
                told = str(err)
            with open(self.record, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"stage": stage.name, "kind": kind, "told": told}) + "\n")
        if stage.name == self.stop_before:
            raise RuntimeError("stopped by the test")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """A finished one-stage run (colors) beside its task folder (colors and animals); tests use copies of it."""
    root = tmp_path_factory.mktemp("run_folder")
    (root / "tasks").mkdir()
    for name in ("colors", "animals"):
        write_toy_task(root / "tasks", name)
    run(compose_train([*FAST, f"task_dir={root / 'tasks'}", "tasks.order=[colors]"]), root / "run")
    return root / "run"


@pytest.fixture
def received(finished_run, tmp_path) -> Path:
    return Path(shutil.copytree(finished_run, tmp_path / "received"))


def edit_run_config(folder: Path, change) -> None:
    config = yaml.safe_load((folder / "run_config.yaml").read_text())
    change(config)
    (folder / "run_config.yaml").write_text(yaml.safe_dump(config))


def plant_callback(folder: Path, marker: Path) -> None:
    """A ``callbacks`` entry in the saved config whose instantiation would create ``marker``."""
    edit_run_config(folder, lambda config: config.update(callbacks={"planted": {"_target_": "builtins.open",
                                                                                "_args_": [str(marker), "w"]}}))


def test_resume_never_builds_a_callback_named_in_a_received_run_config(received, tmp_path, caplog):
    marker = tmp_path / "marker"
    plant_callback(received, marker)
    record = run(compose_train([*FAST, f"resume={received}"]), tmp_path / "log").to_dict()
    assert record["resumed"]["stages_restored"] == 1 and record["completed_stages"] == 1
    assert not marker.exists()
    assert "the callbacks ['planted'] of the saved config are not rebuilt" in caplog.text


def test_resume_true_over_a_sweep_job_folder_never_builds_its_saved_callbacks(received, tmp_path):
    marker = tmp_path / "marker"
    job = Path(shutil.copytree(received, tmp_path / "sweep" / "0"))
    plant_callback(job, marker)
    record = run(compose_train([*FAST, "resume=true"]), job).to_dict()
    assert record["resumed"]["stages_restored"] == 1 and not marker.exists()


def test_an_interpolation_in_a_received_run_config_is_refused_not_resolved(received, tmp_path, monkeypatch):
    monkeypatch.setenv("SEQADAPT_TEST_SECRET", "hunter2")
    edit_run_config(received, lambda config: config.update(run_name="${oc.env:SEQADAPT_TEST_SECRET}"))
    results = (received / "results.json").read_bytes()
    with pytest.raises(SavedConfigError, match=r"run_config.yaml: 'run_name' holds an interpolation .*never resolves"):
        run(compose_train([*FAST, f"resume={received}"]), tmp_path / "log")
    assert (received / "results.json").read_bytes() == results


def test_a_run_into_a_folder_holding_a_run_is_refused_with_the_way_out(finished_run, received):
    before = {path: path.read_bytes() for path in received.rglob("*") if path.is_file()}
    cfg = compose_train([*FAST, f"task_dir={finished_run.parent / 'tasks'}", "tasks.order=[animals]"])
    with pytest.raises(FileExistsError, match=rf"{received} already holds a run .*results.json and .*{ARTEFACTS}\)"
                                              rf".*resume={received}.*hydra.run.dir="):
        run(cfg, received)
    assert {path: path.read_bytes() for path in received.rglob("*") if path.is_file()} == before


def test_a_resume_logging_into_another_run_s_folder_is_refused_and_leaves_it_alone(finished_run, received, tmp_path):
    other = Path(shutil.copytree(finished_run, tmp_path / "other"))
    before = {path: path.read_bytes() for path in other.rglob("*") if path.is_file()}
    with pytest.raises(FileExistsError, match=rf"{other} already holds a run .*another folder \(hydra.run.dir="):
        run(compose_train([*FAST, f"resume={received}"]), other, {"overrides.yaml": "[]\n"})
    assert {path: path.read_bytes() for path in other.rglob("*") if path.is_file()} == before


def test_a_linked_train_log_of_a_resumed_folder_is_refused_and_its_target_left_alone(received, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (received / "train.log").symlink_to(outside)  # run() without Hydra: the fixture's run wrote no train.log
    with pytest.raises(NotARegularFileError, match=r"received/train.log is a symbolic link.*Remove the link"):
        run(compose_train([*FAST, f"resume={received}"]), tmp_path / "log")
    assert outside.read_text() == "keep me"


def test_hydra_s_train_log_handler_refuses_a_link(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    (tmp_path / "train.log").symlink_to(outside)
    handler = compose_train([], hydra=True).hydra.job_logging.handlers.file  # what Hydra's dictConfig builds
    with pytest.raises(NotARegularFileError, match=r"train.log is a symbolic link"):
        get_class(handler["class"])(filename=str(tmp_path / "train.log"))
    assert outside.read_text() == "keep me"


def test_a_linked_hydra_folder_is_refused_before_anything_is_written_into_it(toy_task_dir, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".hydra").symlink_to(elsewhere)
    cfg = compose_train([*FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors]"])
    with pytest.raises(NotARegularFileError, match=r"run/\.hydra is a symbolic link"):
        run(cfg, tmp_path / "run", {"overrides.yaml": "[]\n"})
    assert list(elsewhere.iterdir()) == []


def test_a_writer_refused_by_the_lock_leaves_the_running_run_s_hydra_files_alone(toy_task_dir, tmp_path):
    folder = tmp_path / "run"
    (folder / ".hydra").mkdir(parents=True)
    for name in ("config.yaml", "hydra.yaml", "overrides.yaml"):
        (folder / ".hydra" / name).write_text(f"# the running run's {name}\n")
    before = {path.name: path.read_bytes() for path in (folder / ".hydra").iterdir()}
    command = [sys.executable, "-m", "seqadapt.cli.train", *FAST, f"task_dir={toy_task_dir}", "tasks.order=[colors]",
               f"hydra.run.dir={folder}"]
    with RunLock(folder):  # the running run
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode != 0 and "is being written by another seqadapt run" in done.stderr, done.stderr[-2000:]
    assert {path.name: path.read_bytes() for path in (folder / ".hydra").iterdir()} == before


def test_the_folder_is_locked_for_the_whole_run_and_for_a_resume(finished_run, tmp_path):
    folder, record = tmp_path / "run", tmp_path / "told.jsonl"
    probe = [f"+callbacks.probe._target_={PROBE}", f"+callbacks.probe.record={record}"]
    tasks = [f"task_dir={finished_run.parent / 'tasks'}", "tasks.order=[colors,animals]"]
    with pytest.raises(RuntimeError, match="stopped by the test"):
        run(compose_train([*FAST, *tasks, *probe, "+callbacks.probe.stop_before=animals"]), folder)
    resumed = run(compose_train([*FAST, f"resume={folder}", *probe]), tmp_path / "log").to_dict()
    assert resumed["resumed"]["stages_restored"] == 1 and resumed["completed_stages"] == 2
    told = [json.loads(line) for line in record.read_text().splitlines()]
    assert [(entry["stage"], entry["kind"]) for entry in told] == [  # the resume's stage: the probe came from its
        ("colors", "writer"), ("colors", "reader"), ("animals", "writer"), ("animals", "reader"),  # command line
        ("animals", "writer"), ("animals", "reader"),
    ]
    for entry in told:
        assert f"{folder} is being written by another seqadapt run (pid {os.getpid()} on" in entry["told"], entry

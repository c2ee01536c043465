"""Retrain, retire and restore one task of a finished run: each checked against a run that declared it that way
from the start, or against the run as it was before the operation."""

import json
import shutil
from pathlib import Path

import pytest

from seqadapt.artefacts import MANIFEST_FILE, SEAL_FILE, seal_line, task_artefact_dir
from seqadapt.cli.train import run
from seqadapt.lock import RunLock, RunLockedError
from seqadapt.opened_run import TaskOperationError, VerificationError
from seqadapt.record import RunRecord
from seqadapt.retrain_settings import RetrainSettingError
from seqadapt.serving import load_stream
from seqadapt.task_ops import restore, retire, retrain
from seqadapt.versions import STAGING, retired_tasks
from tests.cli.test_train import FAST, compose_train
from tests.conftest import write_toy_task

def finished_run(tmp_path_factory, name: str = "base", *overrides: str) -> Path:
    """A finished tiny run of [colors, animals] (one epoch; ``overrides`` on top), built once per session and name
    (the test modules that share it may import this module under two names) beside its toy task folder; tests
    work on copies of it."""
    root = tmp_path_factory.getbasetemp() / "task_runs"
    if not (root / "tasks").is_dir():
        (root / "tasks").mkdir(parents=True)
        for task in ("colors", "animals"):
            write_toy_task(root / "tasks", task)
    if not (root / name / "results.json").is_file():
        run(compose_train([*FAST, f"task_dir={root / 'tasks'}", "tasks.order=[colors,animals]", *overrides]), root / name)
    return root / name


def copy_run(source: Path, target: Path) -> Path:
    return Path(shutil.copytree(source, target))


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder but its lock file, by relative path: what an operation may not change."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file() and p.name != ".seqadapt.lock"}


def edit_sealed(directory: Path, change) -> None:
    """Edit an artefact's manifest and seal it again, as someone who meant to would: it loads, but says otherwise."""
    manifest = json.loads((directory / MANIFEST_FILE).read_text())
    change(manifest)
    data = json.dumps(manifest, indent=2).encode()
    (directory / SEAL_FILE).write_text(seal_line(data))
    (directory / MANIFEST_FILE).write_bytes(data)


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return finished_run(tmp_path_factory)


@pytest.fixture
def copy(base, tmp_path) -> Path:
    return copy_run(base, tmp_path / "run")


@pytest.fixture(scope="module")
def retrained(base, tmp_path_factory) -> tuple[Path, object]:
    """A copy of ``base`` whose colors was retrained for two epochs on 40 training examples."""
    folder = copy_run(base, tmp_path_factory.mktemp("retrained") / "run")
    return folder, retrain(folder, "colors", ["trainer.max_epochs=2", "data.train_size=40"])


@pytest.fixture(scope="module")
def declared(tmp_path_factory) -> Path:
    """The run that trained colors that way from the start (and animals too, which the retrain leaves alone)."""
    return finished_run(tmp_path_factory, "declared", "trainer.max_epochs=2", "data.train_size=40")


def test_a_retrained_task_is_byte_identical_to_one_declared_that_way_from_the_start(base, retrained, declared):
    folder, entry = retrained
    for name in ("adapter.safetensors", "reference_outputs.safetensors"):
        assert (task_artefact_dir(folder, "colors") / name).read_bytes() == (task_artefact_dir(declared, "colors") / name).read_bytes()
    ours, theirs = (json.loads((task_artefact_dir(d, "colors") / MANIFEST_FILE).read_text()) for d in (folder, declared))
    assert {key for key in ours if ours[key] != theirs.get(key)} == {"version", "written_by_run"} and ours["version"] == 2
    record, one_go, before = (RunRecord.load(d / "results.json") for d in (folder, declared, base))
    assert [row[0] for row in record.score_matrix] == [row[0] for row in one_go.score_matrix]  # colors' column
    assert [row[1] for row in record.score_matrix] == [row[1] for row in before.score_matrix]  # animals untouched
    assert record.stages[0].train_examples == one_go.stages[0].train_examples == 40
    assert record.stages[0].evaluations == one_go.stages[0].evaluations
    assert (entry.operation, entry.version, entry.previous_version, entry.verified) == ("retrain", 2, 1, ["animals"])
    assert entry.config_difference == {"trainer.max_epochs": {"run": 1, "now": 2}, "data.train_size": {"run": 48, "now": 40}}
    assert entry.score_before == before.score_matrix[0][0] and entry.score_after == one_go.score_matrix[0][0]
    assert record.history == [entry] and set(entry.selection) == {"mahalanobis"}
    texts = ["a red apple", "the navy sky"]  # served: the current version
    assert [p.answer for p in load_stream(folder).predict(texts, "colors")] == [
        p.answer for p in load_stream(declared).predict(texts, "colors")]


def test_the_old_version_is_kept_as_it_was_and_a_rollback_restores_the_run_byte_for_byte(base, retrained, tmp_path):
    folder, _ = retrained
    assert snapshot(folder / "versions" / "colors" / "v1") == snapshot(task_artefact_dir(base, "colors"))
    rolled = copy_run(folder, tmp_path / "rolled")
    entry = restore(rolled, "colors", 1)
    assert snapshot(task_artefact_dir(rolled, "colors")) == snapshot(task_artefact_dir(base, "colors"))
    record, original = RunRecord.load(rolled / "results.json"), RunRecord.load(base / "results.json")
    assert record.score_matrix == original.score_matrix and record.stages[0].train_examples == 48
    assert (rolled / "run_config.yaml").read_bytes() == (base / "run_config.yaml").read_bytes()
    assert (entry.version, entry.previous_version, entry.verified) == (1, 2, ["colors", "animals"])
    restore(rolled, "colors", 2)  # and forward again
    assert snapshot(task_artefact_dir(rolled, "colors")) == snapshot(task_artefact_dir(folder, "colors"))
    assert [e.operation for e in RunRecord.load(rolled / "results.json").history] == ["retrain", "restore", "restore"]


def test_a_resume_after_a_retrain_restores_every_stage_as_recorded_and_keeps_the_history(retrained, tmp_path, caplog):
    folder = copy_run(retrained[0], tmp_path / "run")
    before = RunRecord.load(folder / "results.json")
    caplog.set_level("WARNING", logger="seqadapt")
    resumed = run(compose_train([*FAST, f"resume={folder}"]), tmp_path / "log")
    assert resumed.resumed["rebuilt_from_artefacts"] == [] and "does not match the verified artefacts" not in caplog.text
    assert resumed.score_matrix == before.score_matrix and resumed.history == before.history
    assert resumed.stages[0].train_examples == 40  # the run's config now builds colors' splits as its version 2


def test_retire_stops_serving_the_task_keeps_its_artefact_and_restore_serves_it_again(copy):
    artefact = snapshot(task_artefact_dir(copy, "colors"))
    entry = retire(copy, "colors")
    assert (entry.operation, entry.version, entry.verified) == ("retire", 1, ["animals"])
    assert entry.selection is None  # one task left: nothing to choose among
    assert set(retired_tasks(copy)) == {"colors"} and snapshot(task_artefact_dir(copy, "colors")) == artefact
    assert load_stream(copy).tasks == ["animals"]
    with pytest.raises(TaskOperationError, match=r"'colors' .* is already retired \(version 1, since .*seqadapt-task "
                                                 rf"restore {copy} --task colors"):
        retire(copy, "colors")
    with pytest.raises(TaskOperationError, match=r"'animals' is the only task .* serves"):
        retire(copy, "animals")
    back = restore(copy, "colors")
    assert (back.operation, back.version, back.verified) == ("restore", 1, ["colors", "animals"])
    assert retired_tasks(copy) == {} and load_stream(copy).tasks == ["colors", "animals"]
    assert [e.operation for e in RunRecord.load(copy / "results.json").history] == ["retire", "restore"]


def test_operations_on_a_task_the_run_lacks_or_a_version_it_lacks_name_what_it_has(copy):
    for operation in (lambda: retire(copy, "weather"), lambda: retrain(copy, "weather"), lambda: restore(copy, "weather")):
        with pytest.raises(TaskOperationError, match=r"has no task 'weather'; its tasks are \['colors', 'animals'\]"):
            operation()
    with pytest.raises(TaskOperationError, match=r"no version 3; its versions are \[1\] \(current: 1"):
        restore(copy, "colors", 3)
    with pytest.raises(TaskOperationError, match=r"version 1 of task 'colors' is already current and served"):
        restore(copy, "colors", 1)


@pytest.mark.parametrize("override, key", [("adapter.bottleneck=4", "adapter.bottleneck"), ("data.test_size=10", "data.test_size"),
                                           ("seed=3", "seed"), ("data.max_length=32", "data.max_length"),
                                           ("trainer.precision=bf16-mixed", "trainer.precision")])
def test_a_retrain_keeps_what_shapes_the_model_and_the_test_split(copy, override, key):
    before = snapshot(copy)
    with pytest.raises(RetrainSettingError, match=rf"'{override}': {key} is not a setting a retrain may change.*run_config"
                                                  rf".yaml has {key}=.*A retrain may change trainer"):
        retrain(copy, "colors", [override])
    assert snapshot(copy) == before


def test_two_writers_or_a_reader_and_a_writer_are_refused_by_the_lock(copy):
    with RunLock(copy):
        with pytest.raises(RunLockedError, match="is being written by another seqadapt run"):
            retire(copy, "colors")
    with RunLock(copy, shared=True):
        with pytest.raises(RunLockedError, match="is being read by another process"):
            retire(copy, "colors")


def test_a_task_that_does_not_answer_as_learned_stops_the_operation_and_changes_nothing(copy):
    edit_sealed(task_artefact_dir(copy, "animals"), lambda m: m["learned"].update(logits_sha256="0" * 64))
    before = snapshot(copy)
    with pytest.raises(VerificationError, match=r"(?s)with 'colors' retired, tasks do not answer .* left as it was.*"
                                                r"task 'animals': test logits changed"):
        retire(copy, "colors")
    assert snapshot(copy) == before


def test_a_restore_that_fails_at_the_swap_leaves_the_current_version_and_the_record(retrained, tmp_path, monkeypatch):
    folder = copy_run(retrained[0], tmp_path / "run")
    artefacts, results = snapshot(folder / "artefacts"), (folder / "results.json").read_bytes()

    def disk_error(*args):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("seqadapt.task_ops.exchange_folders", disk_error)
    with pytest.raises(OSError, match="Input/output error"):
        restore(folder, "colors", 1)
    assert snapshot(folder / "artefacts") == artefacts and (folder / "results.json").read_bytes() == results
    assert not (folder / STAGING).exists()


def test_a_results_file_from_before_the_history_loads_with_none(base, tmp_path):
    data = json.loads((base / "results.json").read_text())
    del data["history"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    assert RunRecord.load(tmp_path / "results.json").history == []

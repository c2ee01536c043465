"""Importing a task (``tasks.imports``) instead of training it: a task exported from one run and imported into
another answers exactly as it did where it was trained (same tensors byte for byte, same test outputs), a grown
run imports a new task beside guarded earlier ones, and a folder that does not fit the run is refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from seqadapt.artefacts import load_tensors, read_manifest, task_artefact_dir
from seqadapt.cli.train import run
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.export import export_task
from seqadapt.record import RunRecord
from tests.cli.test_train import FAST, compose_train
from tests.conftest import make_toy_task_dir

LORA = ["adapter=lora", "adapter.rank=4", "pooling=cls"]


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    folder = make_toy_task_dir(tmp_path_factory.mktemp("imported"))
    definition = yaml.safe_load((folder / "colors.yaml").read_text())
    (folder / "shades.yaml").write_text(yaml.safe_dump({**definition, "name": "shades"}))  # colors' data, renamed
    return folder


def launch(task_dir: Path, out: Path, order: list[str], *extra: str) -> RunRecord:
    overrides = [*FAST, *LORA, f"task_dir={task_dir}", f"tasks.order=[{','.join(order)}]", *extra]
    return run(compose_train(overrides), out, overrides=overrides)


@pytest.fixture(scope="module")
def trained(task_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("trained") / "run"
    launch(task_dir, out, ["colors", "animals"])
    return out


@pytest.fixture(scope="module")
def exports(trained, tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("exports")
    export_task(trained, "colors", "peft", root / "peft", head=False)
    export_task(trained, "colors", "adapters", root / "adapters")
    return {"peft": root / "peft", "adapters": root / "adapters"}


def learned_tensors(run_dir: Path, task: str) -> dict:
    manifest = read_manifest(task_artefact_dir(run_dir, task))
    return manifest, load_tensors(task_artefact_dir(run_dir, task) / manifest["weights"]["file"])


@pytest.mark.parametrize("library", ["peft", "adapters"])
def test_an_exported_task_imported_into_a_new_run_is_the_trained_task_byte_for_byte(trained, exports, task_dir,
                                                                                    tmp_path, library):
    record = launch(task_dir, tmp_path / "run", ["colors"], f"+tasks.imports.colors={exports[library]}")
    original, original_tensors = learned_tensors(trained, "colors")
    imported, imported_tensors = learned_tensors(tmp_path / "run", "colors")
    assert set(imported_tensors) == set(original_tensors)
    for key, value in original_tensors.items():  # adapters, head and the selection statistics refitted on the same rows
        assert imported_tensors[key].dtype == value.dtype and imported_tensors[key].equal(value), key
    assert imported["learned"]["logits_sha256"] == original["learned"]["logits_sha256"]
    assert imported["learned"]["score"] == original["learned"]["score"]
    source = imported["imported_from"]
    assert source["format"] == library and source["folder"] == str(exports[library].resolve())
    assert set(source["files"]) >= {"adapter_config.json", "seqadapt_export.json"}
    assert record.stages[0].imported == source and record.stages[0].train_seconds < 30


def test_a_grown_run_imports_a_new_task_and_keeps_its_earlier_tasks_guarded(trained, exports, task_dir, tmp_path):
    grown = Path(shutil.copytree(trained, tmp_path / "run"))
    order = ["colors", "animals", "shades"]
    record = launch(task_dir, tmp_path / "log", order, f"resume={grown}", f"+tasks.imports.shades={exports['peft']}")
    assert record.tasks == order and record.metrics["bwt"] == 0.0
    assert record.stages[-1].guard.passed and set(record.stages[-1].guard.checked) == {"colors", "animals"}
    assert record.stages[-1].imported["format"] == "peft"
    assert record.score_matrix[-1][2] == record.score_matrix[0][0]  # shades is colors' data, answered as colors was
    saved = yaml.safe_load((grown / "run_config.yaml").read_text())
    assert saved["tasks"]["imports"] == {"shades": str(exports["peft"])}


def test_a_folder_of_other_adapter_settings_is_refused_with_both_values(exports, task_dir, tmp_path):
    with pytest.raises(ExchangeError) as refused:
        launch(task_dir, tmp_path / "run", ["colors"], f"+tasks.imports.colors={exports['peft']}", "adapter.rank=2")
    assert "adapter.rank: the run has 2, the folder 4" in str(refused.value)
    assert not (tmp_path / "run" / "artefacts" / "colors").exists()


def test_a_head_for_another_pooling_is_refused(exports, task_dir, tmp_path):
    with pytest.raises(ExchangeError, match="reads the cls-pooled token states and the run's heads read the mean"):
        launch(task_dir, tmp_path / "run", ["colors"], f"+tasks.imports.colors={exports['adapters']}", "pooling=mean")

"""``seqadapt-export`` as users type it: a folder and how to load it, or a refusal (exit 2) that writes nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from seqadapt.cli.export import main
from seqadapt.cli.train import run
from tests.cli.test_train import FAST, compose_train
from tests.conftest import make_toy_task_dir


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("export")
    task_dir = make_toy_task_dir(root)
    run(compose_train([*FAST, "adapter.bottleneck=8", "pooling=cls", f"task_dir={task_dir}", "tasks.order=[colors]"]),
        root / "run")
    return root / "run"


def exported(argv: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as stopped:
        main(argv)
        raise SystemExit(0)
    out = capsys.readouterr()
    return stopped.value.code or 0, out.out, out.err


def test_an_export_says_what_it_wrote_and_how_to_load_it(run_dir, tmp_path, capsys):
    code, out, _ = exported([str(run_dir), str(tmp_path / "hub"), "--task", "colors", "--to", "adapters"], capsys)
    assert code == 0
    assert "adapter.safetensors" in out and "head: head_config.json: a classification head" in out
    assert f"model.load_adapter({str(tmp_path / 'hub')!r}, set_active=True, use_safetensors=True)" in out
    side = json.loads((tmp_path / "hub" / "seqadapt_export.json").read_text())
    assert side["labels"] == ["blue", "green", "red"] and side["pooling"] == "cls"
    assert side["origin"]["stage"] == 1 and len(side["backbone"]["sha256"]) == 64


def test_a_refused_export_exits_2_with_the_reason_and_writes_nothing(run_dir, tmp_path, capsys):
    code, _, err = exported([str(run_dir), str(tmp_path / "p"), "--task", "colors", "--to", "peft"], capsys)
    assert code == 2 and "PEFT has no bottleneck or parallel adapter" in err and "--to adapters" in err
    assert not (tmp_path / "p").exists()


def test_an_existing_folder_is_not_written_over_and_an_unknown_task_is_named(run_dir, tmp_path, capsys):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = exported([str(run_dir), str(tmp_path / "full"), "--task", "colors", "--to", "adapters"], capsys)
    assert code == 2 and "does not write over files" in err and (tmp_path / "full" / "keep.txt").read_text() == "mine"
    code, _, err = exported([str(run_dir), str(tmp_path / "x"), "--task", "nope", "--to", "adapters"], capsys)
    assert code == 2 and "no artefact for task 'nope'" in err and "['colors']" in err

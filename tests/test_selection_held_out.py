"""A finished run's selectors scored on held-out rows, exactly as serving chooses, beside its test-split numbers."""

import json

import pytest
from omegaconf import OmegaConf

from bench import selection_held_out
from bench.tune_selection import held_out_splits
from seqadapt.cli.train import run
from seqadapt.serving import load_stream
from tests.cli.test_train import FAST, compose_train

SELECTORS = ["mahalanobis", "prototype"]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    from tests.conftest import TOY_TASKS, write_toy_task

    root = tmp_path_factory.mktemp("held_out")
    (root / "tasks").mkdir()
    for name in TOY_TASKS:
        write_toy_task(root / "tasks", name)
    cfg = compose_train([*FAST, f"task_dir={root / 'tasks'}", "tasks.order=[colors,animals]",
                         f"selection.selectors=[{','.join(SELECTORS)}]"])
    run(cfg, root / "run")
    return root / "run"


def test_held_out_rows_are_chosen_as_serving_chooses_them(toy_run):
    result = selection_held_out.held_out_selection(toy_run, 30)
    report = result["held_out"]
    assert report["examples"] == 60 and list(report["selectors"]) == SELECTORS  # the run's selectors by default
    assert result["test"] == json.loads((toy_run / "results.json").read_text())["stages"][-1]["task_selection"]
    tasks, kept = held_out_splits(OmegaConf.load(toy_run / "run_config.yaml"), 30)
    assert not kept and all(len(t.val) == 30 for t in tasks)
    stream = load_stream(toy_run)
    for selector in SELECTORS:
        identified = [sum(p.task == t.spec.name for p in stream.predict(list(t.val["text"]), selector=selector)) / 30 for t in tasks]
        assert report["selectors"][selector]["task_id_accuracy"] == pytest.approx(sum(identified) / 2)


def test_the_report_puts_held_out_and_test_rows_side_by_side(toy_run):
    selection_held_out.main([str(toy_run), "--held-out", "30", "--select", "mahalanobis"])
    written = (toy_run / "selection_held_out.md").read_text()
    assert "| held-out (60 rows) | `mahalanobis` |" in written and "| test split (48 rows) | `mahalanobis` |" in written
    assert "prototype" not in written
    assert json.loads((toy_run / "selection_held_out.json").read_text())["held_out"]["examples"] == 60

"""``seqadapt-task``: its output, its history view and its exit codes (0 done, 1 a task changed, 2 bad input)."""

import pytest

from seqadapt.artefacts import task_artefact_dir
from seqadapt.cli.task import main
from seqadapt.lock import RunLock
from tests.test_task_ops import copy_run, edit_sealed, finished_run, snapshot


@pytest.fixture
def run_dir(tmp_path_factory, tmp_path):
    return copy_run(finished_run(tmp_path_factory), tmp_path / "run")


def exit_code(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code


def test_retire_says_what_it_did_and_how_to_undo_it_and_history_shows_it(run_dir, capsys):
    main(["retire", str(run_dir), "--task", "colors"])
    out = capsys.readouterr().out
    assert "  retire   colors  v1  verified unchanged: animals; seqadapt " in out
    assert f"retired colors (version 1) of {run_dir}: no longer served or selected" in out
    assert f"Serve it again with: seqadapt-task restore {run_dir} --task colors" in out
    main(["history", str(run_dir)])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "history (seqadapt-task; oldest first):" and "  retire   colors  v1  " in lines[1]
    assert lines[2] == "versions:" and lines[3].startswith("  colors: v1 (current)  RETIRED since ")


@pytest.mark.parametrize("argv, message", [
    (["retire", "{run}", "--task", "weather"], "has no task 'weather'; its tasks are ['colors', 'animals']"),
    (["restore", "{run}", "--task", "colors", "--version", "4"], "has no version 4; its versions are [1] (current: 1"),
    (["retrain", "{run}", "--task", "colors", "pooling=cls"], "'pooling=cls': pooling is not a setting a retrain may"),
    (["retrain", "{run}", "--task", "colors", "trainer.max_epochs"], "cannot read the override(s) ['trainer.max_epochs']"),
    (["retrain", "{run}", "--task", "colors", "data.train_size=10,20"], "not sweeps or deletions"),
    (["retire", "{run}", "--task", "colors", "trainer.max_epochs=2"], "unrecognized arguments: trainer.max_epochs=2"),
    (["history", "{run}/artefacts"], "artefacts/results.json does not exist"),
])
def test_bad_input_exits_2_naming_the_problem_and_changes_nothing(run_dir, capsys, argv, message):
    before = snapshot(run_dir)
    assert exit_code([part.format(run=run_dir) for part in argv]) == 2
    assert message in capsys.readouterr().err
    assert snapshot(run_dir) == before


def test_a_second_writer_exits_2_naming_the_first(run_dir, capsys):
    with RunLock(run_dir):
        assert exit_code(["retrain", str(run_dir), "--task", "colors"]) == 2
    assert f"{run_dir} is being written by another seqadapt run" in capsys.readouterr().err


def test_a_task_that_does_not_answer_as_learned_exits_1_and_changes_nothing(run_dir, capsys):
    edit_sealed(task_artefact_dir(run_dir, "animals"), lambda m: m["learned"].update(score=0.0))
    before = snapshot(run_dir)
    assert exit_code(["retire", str(run_dir), "--task", "colors"]) == 1
    err = capsys.readouterr().err
    assert "tasks do not answer as they did when they were learned" in err and "task 'animals': accuracy changed" in err
    assert snapshot(run_dir) == before

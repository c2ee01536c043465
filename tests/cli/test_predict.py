"""Serving a finished run: load_stream and the seqadapt-predict command."""

import json
import math

import pytest

from seqadapt.artefacts import ArtefactError, read_manifest, task_artefact_dir
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.cli.predict import main
from seqadapt.serving import load_stream
from seqadapt.cli.train import run
from tests.conftest import TOY_TASKS, write_toy_task
from tests.cli.test_train import FAST, compose_train


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    task_dir = root / "tasks"
    task_dir.mkdir()
    for name in TOY_TASKS:
        write_toy_task(task_dir, name)
    cfg = compose_train([*FAST, f"task_dir={task_dir}", "tasks.order=[colors,animals]", "trainer.max_epochs=3"])
    run(cfg, root / "run")
    return root / "run", task_dir, cfg


def test_predictions_reproduce_the_learned_test_accuracy(run_dir):
    directory, task_dir, cfg = run_dir
    stream = load_stream(directory)
    assert stream.tasks == ["colors", "animals"]
    sizes = SplitSizes(train=cfg.data.train_size, val=cfg.data.val_size, test=cfg.data.test_size, seed=cfg.data.split_seed)
    for task in stream.tasks:
        spec = load_task_spec(task, task_dir)
        test = build_splits(spec, read_source(spec), sizes).test
        predictions = stream.predict(test["text"], task)
        accuracy = sum(p.label == spec.labels[y] for p, y in zip(predictions, test["label"])) / len(test)
        assert accuracy == read_manifest(task_artefact_dir(directory, task))["learned"]["accuracy"]
        for prediction in predictions:
            assert set(prediction.probabilities) == set(spec.labels)
            assert math.isclose(sum(prediction.probabilities.values()), 1.0, rel_tol=1e-5)
            assert prediction.label == max(prediction.probabilities, key=prediction.probabilities.get)


def test_command_prints_one_json_line_per_text(run_dir, capsys):
    directory, _, _ = run_dir
    main([str(directory), "--task", "animals", "a small puppy on the road", "the kitten in a house"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["text"] for line in lines] == ["a small puppy on the road", "the kitten in a house"]
    assert all(line["task"] == "animals" and line["label"] in ("cat", "dog") for line in lines)


def test_unknown_task_is_named_with_the_available_ones(run_dir, capsys):
    directory, _, _ = run_dir
    with pytest.raises(SystemExit) as exit_:
        main([str(directory), "--task", "weather", "sunny day"])
    assert exit_.value.code == 2
    assert "no artefact for task(s) ['weather']; it has ['colors', 'animals']" in capsys.readouterr().err


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    with pytest.raises(ArtefactError, match="not a seqadapt run directory: it has no run_config.yaml"):
        load_stream(tmp_path)


def test_mixed_task_requests_match_one_task_at_a_time(run_dir, capsys):
    directory, _, _ = run_dir
    stream = load_stream(directory)
    texts = ["a red apple", "a small puppy on the road", "the blue sky", "the kitten in a house"]
    tasks = ["colors", "animals", "colors", "animals"]
    mixed = stream.predict(texts, tasks)
    for text, task, prediction in zip(texts, tasks, mixed):
        (alone,) = stream.predict([text], task)
        assert prediction.task == task and prediction.label == alone.label
        assert all(math.isclose(prediction.probabilities[k], v, abs_tol=1e-5) for k, v in alone.probabilities.items())
    main([str(directory), *(json.dumps({"text": x, "task": t}) for x, t in zip(texts, tasks))])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["task"], line["label"]) for line in lines] == [(p.task, p.label) for p in mixed]


def test_without_task_a_plain_line_is_refused_with_the_fix(run_dir, capsys):
    directory, _, _ = run_dir
    with pytest.raises(SystemExit):
        main([str(directory), "sunny day"])
    assert "input line 1 is not a JSON object with \"text\" and \"task\"" in capsys.readouterr().err


@pytest.mark.parametrize("selector", ["entropy", "prototype"])
def test_without_a_task_predictions_reproduce_the_runs_task_selection_record(run_dir, selector, capsys):
    directory, task_dir, cfg = run_dir
    stream = load_stream(directory)
    sizes = SplitSizes(train=cfg.data.train_size, val=cfg.data.val_size, test=cfg.data.test_size, seed=cfg.data.split_seed)
    identified, correct = [], []
    for task in stream.tasks:
        spec = load_task_spec(task, task_dir)
        test = build_splits(spec, read_source(spec), sizes).test
        predictions = stream.predict(test["text"], selector=selector)
        assert {p.selected_by for p in predictions} == {selector}
        identified.append(sum(p.task == task for p in predictions) / len(test))
        correct.append(sum(p.task == task and p.label == spec.labels[y] for p, y in zip(predictions, test["label"])) / len(test))
    recorded = json.loads((directory / "results.json").read_text())["stages"][-1]["task_selection"]["selectors"][selector]
    assert sum(identified) / 2 == recorded["task_id_accuracy"] and sum(correct) / 2 == recorded["accuracy"]

    main([str(directory), "--select", selector, "a red apple", "a small puppy"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = stream.predict(["a red apple", "a small puppy"], selector=selector)
    assert [(line["task"], line["label"], line["selected_by"]) for line in lines] == [
        (p.task, p.label, selector) for p in expected
    ]


def test_task_and_selector_together_are_refused(run_dir, capsys):
    directory, _, _ = run_dir
    with pytest.raises(SystemExit):
        main([str(directory), "--task", "colors", "--select", "entropy", "red"])
    assert "not allowed with argument" in capsys.readouterr().err

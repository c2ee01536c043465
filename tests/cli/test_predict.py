"""Serving a finished run: load_stream and the seqadapt-predict command."""

import io
import json
import math
import shutil
from pathlib import Path

import pytest

from seqadapt.artefacts import ArtefactError, read_manifest, task_artefact_dir
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.cli.predict import main
from seqadapt.selection import selectors_for
from seqadapt.serving import environment_note, load_stream
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
    every = ",".join(selectors_for("encoder"))
    cfg = compose_train([*FAST, f"task_dir={task_dir}", "tasks.order=[colors,animals]", "trainer.max_epochs=3",
                         f"selection.selectors=[{every}]", "selection.projection_dim=64"])
    run(cfg, root / "run")
    return root / "run", task_dir, cfg


def served_test_split(stream, directory, task_dir, cfg, task):
    """The task's test split and the served predictions for it, after checking that they score exactly the
    accuracy its artefact was learned with."""
    sizes = SplitSizes(train=cfg.data.train_size, val=cfg.data.val_size, test=cfg.data.test_size, seed=cfg.data.split_seed)
    spec = load_task_spec(task, task_dir)
    test = build_splits(spec, read_source(spec), sizes).test
    predictions = stream.predict(test["text"], task)
    accuracy = sum(p.answer["label"] == spec.labels[y] for p, y in zip(predictions, test["label"])) / len(test)
    assert accuracy == read_manifest(task_artefact_dir(directory, task))["learned"]["score"]
    return test, predictions


def test_predictions_reproduce_the_learned_test_accuracy(run_dir):
    directory, task_dir, cfg = run_dir
    stream = load_stream(directory)
    assert stream.tasks == ["colors", "animals"]
    for task in stream.tasks:
        spec = load_task_spec(task, task_dir)
        _, predictions = served_test_split(stream, directory, task_dir, cfg, task)
        for prediction in predictions:
            assert set(prediction.answer["probabilities"]) == set(spec.labels)
            assert math.isclose(sum(prediction.answer["probabilities"].values()), 1.0, rel_tol=1e-5)
            assert prediction.answer["label"] == max(prediction.answer["probabilities"], key=prediction.answer["probabilities"].get)


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
        assert prediction.task == task and prediction.answer["label"] == alone.answer["label"]
        assert all(math.isclose(prediction.answer["probabilities"][k], v, abs_tol=1e-5) for k, v in alone.answer["probabilities"].items())
    main([str(directory), *(json.dumps({"text": x, "task": t}) for x, t in zip(texts, tasks))])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(line["task"], line["label"]) for line in lines] == [(p.task, p.answer["label"]) for p in mixed]


def test_without_task_a_plain_line_is_refused_with_the_fix(run_dir, capsys):
    directory, _, _ = run_dir
    with pytest.raises(SystemExit):
        main([str(directory), "sunny day"])
    assert "input line 1 is not a JSON object with a \"task\" name" in capsys.readouterr().err


@pytest.mark.parametrize("selector", sorted(selectors_for("encoder")))
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
        correct.append(sum(p.task == task and p.answer["label"] == spec.labels[y] for p, y in zip(predictions, test["label"])) / len(test))
    recorded = json.loads((directory / "results.json").read_text())["stages"][-1]["task_selection"]["selectors"][selector]
    assert sum(identified) / 2 == recorded["task_id_accuracy"] and sum(correct) / 2 == recorded["accuracy"]

    main([str(directory), "--select", selector, "a red apple", "a small puppy"])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = stream.predict(["a red apple", "a small puppy"], selector=selector)
    assert [(line["task"], line["label"], line["selected_by"]) for line in lines] == [
        (p.task, p.answer["label"], selector) for p in expected
    ]


def test_task_and_selector_together_are_refused(run_dir, capsys):
    directory, _, _ = run_dir
    with pytest.raises(SystemExit):
        main([str(directory), "--task", "colors", "--select", "entropy", "red"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.fixture
def run_copy(run_dir, tmp_path):
    directory, _, _ = run_dir
    return shutil.copytree(directory, tmp_path / "run")


def refused(argv, capsys) -> str:
    """``main(argv)``'s error: exit code 2 and one ``seqadapt-predict: error:`` line, never a traceback."""
    with pytest.raises(SystemExit) as exit_:
        main([str(arg) for arg in argv])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("seqadapt-predict: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("line", "edited", "key", "configured", "saved"),
    [
        ("pooling: auto", "pooling: cls", "pooling", "'cls'", "'mean'"),
        ("  max_length: 16", "  max_length: 32", "data.max_length", "32", "16"),
        ("  bottleneck: 64", "  bottleneck: 32", "adapter.bottleneck", "32", "64"),
    ],
)
def test_predict_refuses_a_run_config_edited_after_the_run(run_copy, capsys, line, edited, key, configured, saved):
    config = run_copy / "run_config.yaml"
    assert line in config.read_text().splitlines()
    config.write_text(config.read_text().replace(f"{line}\n", f"{edited}\n"))
    err = refused([run_copy, "--task", "colors", "a red apple"], capsys)
    manifest = run_copy / "artefacts" / "colors" / "manifest.json"
    assert f"{config} does not match the artefact it serves: {key} is {configured} there, but {manifest} was " \
           f"trained with {saved}" in err
    assert f"set {key} back to {saved} in it" in err


def test_predict_refuses_a_manifest_edited_after_the_run(run_copy, capsys):
    path = run_copy / "artefacts" / "animals" / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["labels"].reverse()
    manifest["spec"]["labels"].reverse()  # what a flipped cat/dog would need
    path.write_text(json.dumps(manifest, indent=2))
    err = refused([run_copy, "--task", "animals", "a small puppy"], capsys)
    assert f"{path} does not match its seal" in err
    main([str(run_copy), "--task", "colors", "a red apple"])  # the other task still serves
    assert json.loads(capsys.readouterr().out)["task"] == "colors"


def stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_stdin_that_is_not_utf8_is_named_by_its_line(run_dir, capsys, monkeypatch):
    stdin(monkeypatch, b"a red apple\nthe caf\xe9 is blue\n")
    err = refused([run_dir[0], "--task", "colors"], capsys)
    assert "input line 2 is not valid UTF-8 (byte 0xe9 at column 8: invalid continuation byte): b'the caf\\xe9 is blue'" in err
    assert "iconv" in err


def test_an_argument_that_is_not_utf8_is_named(run_dir, capsys):
    err = refused([run_dir[0], "--task", "colors", "red", "caf\udce9"], capsys)  # how Python passes b"caf\xe9"
    assert "text argument 2 is not valid UTF-8 text: b'caf\\xe9'" in err


def test_empty_stdin_is_an_error_not_a_traceback(run_dir, capsys, monkeypatch):
    stdin(monkeypatch, b"")
    assert "no input: standard input is empty" in refused([run_dir[0], "--task", "colors"], capsys)


@pytest.mark.parametrize("task", [["--task", "colors"], []])
def test_a_blank_line_is_an_error_naming_its_number(run_dir, capsys, monkeypatch, task):
    """Output line N answers input line N; skipping a blank line would shift every answer after it."""
    line = b"a red apple" if task else b'{"text": "a red apple", "task": "colors"}'
    stdin(monkeypatch, line + b"\n \n" + line + b"\n")
    err = refused([run_dir[0], *task], capsys)
    assert "input line 2 is blank" in err and "grep -v" in err


def test_windows_line_ends_are_not_part_of_the_text(run_dir, capsys, monkeypatch):
    stdin(monkeypatch, b"a red apple\r\nthe blue sky\r\n")
    main([str(run_dir[0]), "--task", "colors"])
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["a red apple", "the blue sky"]


@pytest.mark.parametrize(
    ("request_", "message"),
    [({"text": 5, "task": "colors"}, 'input line 1: "sentence" must be non-blank text, not 5; task \'colors\' reads [\'sentence\']'),
     ({"text": "  ", "task": "colors"}, 'input line 1: "text" is blank'),
     ({"sentence": "red", "task": ["colors"]}, 'input line 1 is not a JSON object with a "task" name'),
     ({"words": "red", "task": "colors"}, 'input line 1: "sentence" is missing; task \'colors\' reads [\'sentence\']')],
)
def test_json_requests_with_a_bad_text_or_task_are_named(run_dir, capsys, request_, message):
    assert message in refused([run_dir[0], json.dumps(request_)], capsys)


def test_artefacts_set_aside_by_resume_are_not_served(run_copy, capsys):
    artefacts = run_copy / "artefacts"
    shutil.copytree(artefacts / "colors", artefacts / "colors.corrupt")  # what resume leaves after a damaged stage
    (artefacts / "colors.corrupt" / "adapter.safetensors").write_bytes(b"damaged")
    assert load_stream(run_copy).tasks == ["colors", "animals"]


def test_serving_in_another_environment_says_so(run_dir, tmp_path):

    directory, _, _ = run_dir
    assert environment_note(directory, "cpu") is None  # the run was trained and evaluated right here
    copy = Path(shutil.copytree(directory, tmp_path / "copy"))
    results = json.loads((copy / "results.json").read_text())
    results["environment"]["torch_threads"] = 99
    (copy / "results.json").write_text(json.dumps(results))
    with pytest.warns(UserWarning, match=r"another environment .*torch_threads: \d+ here, 99 when recorded.*last bits"):
        load_stream(copy)

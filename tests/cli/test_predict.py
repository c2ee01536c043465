"""Serving a finished run: load_stream and the seqadapt-predict command."""

import io
import json
import math
import os
import queue
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from seqadapt.artefacts import SEAL_FILE, ArtefactError, read_manifest, seal_line, task_artefact_dir
from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.cli.predict import main
from seqadapt.lock import RunLock
from seqadapt.selection import selectors_for
from seqadapt.serving import environment_note, load_stream
from seqadapt.versions import write_retired
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
    assert "input line 1 is not a JSON object with a \"task\" name" in refused([run_dir[0], "sunny day"], capsys)


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
    with pytest.raises(SystemExit, match="^2$"):
        main([str(directory), "--task", "colors", "--select", "entropy", "red"])
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.fixture
def run_copy(run_dir, tmp_path):
    directory, _, _ = run_dir
    return shutil.copytree(directory, tmp_path / "run")


def run_main(argv, capsys) -> tuple[int, list[dict], str]:
    """``main(argv)``'s exit code, its answers (one per output line) and its standard error; never a traceback."""
    try:
        main([str(arg) for arg in argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, [json.loads(line) for line in out.splitlines()], err


def refused(argv, capsys) -> str:
    """``main(argv)``'s error: exit code 2 and ``seqadapt-predict: error:`` lines, never a traceback."""
    code, _, err = run_main(argv, capsys)
    assert code == 2 and err.startswith("seqadapt-predict: error: ")
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
    code, answers, err = run_main([run_dir[0], *task], capsys)
    assert code == 2 and "seqadapt-predict: error: input line 2 is blank" in err and "grep -v" in err
    assert [answer.get("label") for answer in answers] == [answers[0]["label"], None, answers[0]["label"]]
    assert answers[1]["line"] == 2 and answers[1]["error"].startswith("input line 2 is blank")


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


def truncate_weights(run_dir: Path, task: str) -> Path:
    weights = task_artefact_dir(run_dir, task) / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    return weights


def test_a_damaged_artefact_is_not_served_and_the_other_tasks_are(run_dir, run_copy):
    weights = truncate_weights(run_copy, "animals")
    with pytest.warns(UserWarning, match=rf"not serving task 'animals': {weights} is corrupt or truncated"):
        stream = load_stream(run_copy)
    assert stream.tasks == ["colors"] and list(stream.refused) == ["animals"]
    intact = load_stream(run_dir[0])
    texts = ["a red apple", "the blue sky"]
    assert [p.answer for p in stream.predict(texts, "colors")] == [p.answer for p in intact.predict(texts, "colors")]
    with pytest.raises(ArtefactError, match=rf"task 'animals' is not served: {weights} is corrupt or truncated"):
        stream.predict(["a small puppy"], "animals")


def test_requests_for_a_refused_task_get_an_error_answer_and_the_others_are_answered(run_dir, run_copy, capsys, monkeypatch):
    weights = truncate_weights(run_copy, "animals")
    requests = [{"task": "colors", "text": "a red apple"}, {"task": "animals", "text": "a small puppy"},
                {"task": "colors", "text": "the blue sky"}]
    stdin(monkeypatch, b"".join(json.dumps(request).encode() + b"\n" for request in requests))
    code, answers, err = run_main([run_copy], capsys)
    assert code == 2
    expected = load_stream(run_dir[0]).predict(["a red apple", "the blue sky"], "colors")
    assert [answers[0]["label"], answers[2]["label"]] == [p.answer["label"] for p in expected]
    assert answers[1]["line"] == 2 and answers[1]["task"] == "animals"
    assert answers[1]["error"].startswith(f"input line 2: task 'animals' is not served: {weights} is corrupt or truncated")
    assert f"seqadapt-predict: warning: not serving task 'animals': {weights} is corrupt" in err
    assert "seqadapt-predict: error: 1 of 3 input(s) could not be answered" in err


def test_select_picks_among_the_served_tasks_and_says_so(run_copy, capsys):
    truncate_weights(run_copy, "animals")
    code, answers, err = run_main([run_copy, "--select", "prototype", "a small puppy"], capsys)
    assert code == 0 and answers[0]["task"] == "colors" and answers[0]["selected_by"] == "prototype"
    assert "seqadapt-predict: --select picks among the served tasks ['colors'] only, not ['animals'] (refused" in err


def test_an_artefact_copied_in_from_another_run_is_not_served(run_copy):
    directory = task_artefact_dir(run_copy, "animals")
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["written_by_run"] = "f" * 32
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / SEAL_FILE).write_text(seal_line((directory / "manifest.json").read_bytes()))  # sealed, as a copy is
    run_id = json.loads((run_copy / "results.json").read_text())["run_id"]
    with pytest.warns(UserWarning, match=rf"not serving task 'animals': {directory} was written by run {'f' * 32}, but "
                                         rf"{run_copy / 'results.json'} belongs to run {run_id}"):
        assert load_stream(run_copy).tasks == ["colors"]


def test_a_line_over_the_limit_gets_an_error_answer_and_the_lines_around_it_are_answered(run_dir, capsys, monkeypatch):
    at_limit = b"a red " + b"y" * 94  # 100 bytes: the limit itself is allowed
    stdin(monkeypatch, b"a red apple\n" + b"x" * 101 + b"\r\n" + at_limit + b"\r\nthe blue sky")
    code, answers, err = run_main([run_dir[0], "--task", "colors", "--max-line-bytes", "100"], capsys)
    assert code == 2 and len(answers) == 4
    assert answers[1] == {"line": 2, "task": "colors", "error": "input line 2 is longer than 100 bytes, the limit: it "
                                                               "was not read. Shorten it, or raise the limit with --max-line-bytes"}
    assert [answers[i]["text"] for i in (0, 2, 3)] == ["a red apple", at_limit.decode(), "the blue sky"]
    assert "seqadapt-predict: error: input line 2 is longer than 100 bytes" in err


def test_a_deeply_nested_request_gets_an_error_answer_not_a_traceback(run_dir, capsys):
    nested = '{"task": "colors", "text": ' + "[" * 100_000 + "]" * 100_000 + "}"
    code, answers, _ = run_main([run_dir[0], nested, json.dumps({"task": "colors", "text": "a red apple"})], capsys)
    assert code == 2 and answers[1]["task"] == "colors"
    assert answers[0]["error"].startswith("input line 1 starts with '{' but is not a JSON object (nested more than 64 levels deep)")


def read_answers(stream) -> queue.Queue:
    """The lines ``stream`` prints, as they come, read by a thread (a test waits for each with a timeout)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in iter(stream.readline, b"")], daemon=True).start()
    return lines


def test_each_line_is_answered_before_standard_input_closes(run_dir):
    """A producer that waits for each answer before writing its next line is answered line by line."""
    expected = load_stream(run_dir[0]).predict(["a red apple", "the blue sky"], "colors")
    command = [sys.executable, "-m", "seqadapt.cli.predict", str(run_dir[0]), "--task", "colors"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                               env={**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        answers = read_answers(process.stdout)
        for prediction in expected:
            process.stdin.write(prediction.inputs["text"].encode() + b"\n")
            process.stdin.flush()
            answer = json.loads(answers.get(timeout=120))  # stdin is still open
            assert (answer["text"], answer["label"]) == (prediction.inputs["text"], prediction.answer["label"])
        process.stdin.close()
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()


def test_predict_refuses_a_folder_a_run_is_writing_and_serves_it_once_done(run_copy, capsys):
    with RunLock(run_copy):  # a run or a resume writing the folder
        err = refused([run_copy, "--task", "colors", "a red apple"], capsys)
    assert f"{run_copy} is being written by another seqadapt run (pid {os.getpid()} on" in err
    assert "Read it when that run has finished (or stop it)" in err
    code, answers, _ = run_main([run_copy, "--task", "colors", "a red apple"], capsys)
    assert code == 0 and answers[0]["task"] == "colors"


RETIRED = {"version": 1, "time": "2026-01-01T00:00:00+00:00"}


def test_a_retired_task_is_neither_served_nor_selected_and_asking_for_it_says_how_to_serve_it(
        run_dir, run_copy, capsys, monkeypatch):
    write_retired(run_copy, {"animals": RETIRED})
    stream = load_stream(run_copy)
    assert stream.tasks == ["colors"] and not stream.refused
    retired = f"task 'animals' of {run_copy} is retired (version 1, since {RETIRED['time']}): it is no longer served"
    restore = f"Serve it again with: seqadapt-task restore {run_copy} --task animals"
    err = refused([run_copy, "--task", "animals", "a small puppy"], capsys)
    assert retired in err and restore in err
    requests = [{"task": "colors", "text": "a red apple"}, {"task": "animals", "text": "a small puppy"}]
    stdin(monkeypatch, b"".join(json.dumps(request).encode() + b"\n" for request in requests))
    code, answers, _ = run_main([run_copy], capsys)
    served = load_stream(run_dir[0]).predict(["a red apple"], "colors")[0]  # the run before the retirement
    assert code == 2 and answers[0]["probabilities"] == served.answer["probabilities"]
    assert answers[1]["line"] == 2 and retired in answers[1]["error"] and restore in answers[1]["error"]
    code, answers, _ = run_main([run_copy, "--select", "mahalanobis", "a small puppy", "the kitten in a house"], capsys)
    assert code == 0 and [answer["task"] for answer in answers] == ["colors", "colors"]


def test_a_damaged_retirement_file_stops_serving_naming_it(run_copy, capsys):
    (Path(run_copy) / "retired.json").write_text('{"tasks": ["animals"]}')
    err = refused([run_copy, "--task", "colors", "a red apple"], capsys)
    assert f"{run_copy}/retired.json: tasks is a JSON array" in err and "delete it" in err

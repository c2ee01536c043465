"""Resume trusts only what verifies: damaged artefacts are set aside and retrained, results.json is rebuilt from
the artefacts, and a folder killed before its config was written starts afresh."""

import json
import logging
import shutil
from pathlib import Path

import pytest

from seqadapt.artefacts import SEAL_FILE, ArtefactError, has_artefact, seal_line, task_artefact_dir
from seqadapt.cli.train import resume_target, run
from seqadapt.model import SeqAdaptModule
from tests.cli.test_train import FAST, compose_train
from tests.conftest import make_toy_task_dir
from tests.stream.test_run import ORDER, crashing_at, probes, stream


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    return make_toy_task_dir(tmp_path_factory.mktemp("resume"))


@pytest.fixture(scope="module")
def uninterrupted(task_dir, tokenizer, tmp_path_factory) -> dict:
    return stream(SeqAdaptModule, task_dir, tokenizer, tmp_path_factory.mktemp("full") / "run").run().to_dict()


@pytest.fixture(scope="module")
def crashed_in_stage_3(task_dir, tokenizer, tmp_path_factory) -> Path:
    """A run killed in stage 3: stages 1 and 2 finished, with their artefacts; tests resume copies of it."""
    out = tmp_path_factory.mktemp("crashed") / "run"
    with pytest.raises(MemoryError, match="simulated crash in stage 3"):
        stream(SeqAdaptModule, task_dir, tokenizer, out, make_trainer=crashing_at(3)).run()
    assert [has_artefact(out, task) for task in ORDER] == [True, True, False]
    return out


@pytest.fixture
def killed(crashed_in_stage_3, tmp_path) -> Path:
    return Path(shutil.copytree(crashed_in_stage_3, tmp_path / "run"))


def resume(task_dir, tokenizer, out: Path) -> dict:
    return stream(SeqAdaptModule, task_dir, tokenizer, out, resume=True).run().to_dict()


def edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data, indent=2))


def test_resume_rebuilds_tampered_results_rows_from_the_verified_artefacts(
    killed, task_dir, tokenizer, uninterrupted, caplog
):
    def tamper(results):
        results["score_matrix"][0][0] = 0.99
        results["stages"][1]["evaluations"][0]["logits_sha256"] = "0" * 64
        results["stages"][1]["carried"] = {"colors": 0.99}

    edit_json(killed / "results.json", tamper)
    with caplog.at_level(logging.WARNING, logger="seqadapt"):
        resumed = resume(task_dir, tokenizer, killed)
    assert resumed["score_matrix"] == uninterrupted["score_matrix"]
    assert resumed["metrics"] == uninterrupted["metrics"]
    assert probes(resumed) == probes(uninterrupted)
    assert resumed["stages"][1]["carried"] == {}
    rebuilt = resumed["resumed"]["rebuilt_from_artefacts"]
    assert {"score_matrix[0][0]", "stages[1].evaluations[0].logits_sha256", "stages[1].carried.colors"} <= set(rebuilt)
    warning = caplog.text
    assert "results.json does not match the verified artefacts" in warning
    assert "score_matrix[0][0] (file: 0.99, artefacts: " in warning
    assert json.loads((killed / "results.json").read_text())["score_matrix"] == uninterrupted["score_matrix"]


def test_an_untouched_results_file_is_carried_as_it_is(killed, task_dir, tokenizer, uninterrupted):
    before = json.loads((killed / "results.json").read_text())
    resumed = resume(task_dir, tokenizer, killed)
    assert resumed["resumed"]["rebuilt_from_artefacts"] == []
    assert resumed["stages"][:2] == before["stages"]  # timings and task selection included
    assert resumed["score_matrix"] == uninterrupted["score_matrix"]
    assert resumed["run_id"] == before["run_id"] != uninterrupted["run_id"]  # the run keeps its id
    assert [written_by(killed, task) for task in ORDER] == [before["run_id"]] * 3  # the new stage's too


def written_by(run_dir: Path, task: str) -> str:
    return json.loads((task_artefact_dir(run_dir, task) / "manifest.json").read_text())["written_by_run"]


def test_an_artefact_copied_in_from_another_run_is_refused_naming_both_runs(killed, task_dir, tokenizer):
    directory = task_artefact_dir(killed, "animals")
    edit_json(directory / "manifest.json", lambda manifest: manifest.update(written_by_run="f" * 32))
    (directory / SEAL_FILE).write_text(seal_line((directory / "manifest.json").read_bytes()))  # a sealed copy
    run_id = json.loads((killed / "results.json").read_text())["run_id"]
    with pytest.raises(ArtefactError, match=rf"{directory} was written by run {'f' * 32}, but "
                                            rf"{killed / 'results.json'} belongs to run {run_id}.*Move it out"):
        resume(task_dir, tokenizer, killed)
    assert sorted(p.name for p in (killed / "artefacts").iterdir()) == ["animals", "colors"]  # nothing moved


def truncate(directory: Path) -> None:
    weights = directory / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])


def reverse_labels(directory: Path) -> None:
    def change(manifest):
        manifest["labels"].reverse()
        manifest["spec"]["labels"].reverse()

    edit_json(directory / "manifest.json", change)


@pytest.mark.parametrize("damage", [truncate, reverse_labels])
def test_a_damaged_artefact_is_set_aside_and_its_stages_retrained_as_if_never_interrupted(
    damage, killed, task_dir, tokenizer, uninterrupted, caplog
):
    damage(task_artefact_dir(killed, "animals"))
    with caplog.at_level(logging.WARNING, logger="seqadapt"):
        resumed = resume(task_dir, tokenizer, killed)
    assert resumed["resumed"]["stages_restored"] == 1
    assert resumed["score_matrix"] == uninterrupted["score_matrix"]
    assert probes(resumed) == probes(uninterrupted)
    aside = killed / "artefacts" / "animals.corrupt"
    assert aside.is_dir() and sorted(p.name for p in aside.iterdir())  # kept, not deleted
    assert all(has_artefact(killed, task) for task in ORDER)
    assert "the artefact of stage 2 (animals) does not verify" in caplog.text
    assert f"aside to {aside}" in caplog.text and "resume skips only" not in caplog.text


@pytest.mark.parametrize("content", ["", '{"tasks": [', "[]", '{"tasks": "colors,animals,weather", "plan": []}'],
                         ids=["empty", "cut", "not an object", "wrong type"])
def test_an_empty_or_damaged_results_file_is_kept_aside_and_rebuilt_from_the_artefacts(
    content, killed, task_dir, tokenizer, uninterrupted, caplog
):
    run_id = written_by(killed, "colors")
    (killed / "results.json").write_text(content)
    with caplog.at_level(logging.WARNING, logger="seqadapt"):
        resumed = resume(task_dir, tokenizer, killed)
    assert resumed["resumed"]["stages_restored"] == 2
    assert set(resumed["resumed"]["rebuilt_from_artefacts"]) == {
        "stages[0]", "stages[1]", "score_matrix[0]", "score_matrix[1]"}
    assert resumed["score_matrix"] == uninterrupted["score_matrix"]
    assert probes(resumed) == probes(uninterrupted)
    assert (killed / "results.json.corrupt").read_text() == content
    assert resumed["run_id"] == run_id  # taken from the artefacts
    assert f"cannot use {killed / 'results.json'}" in caplog.text and "rebuilt from their verified artefacts" in caplog.text


def test_a_sealed_artefact_that_no_longer_reproduces_its_reference_is_refused(killed, task_dir, tokenizer):
    """As if the weights were swapped for other valid ones with a consistent, sealed manifest: not damage, so
    resume refuses instead of retraining."""
    directory = task_artefact_dir(killed, "animals")
    edit_json(directory / "manifest.json", lambda manifest: manifest["learned"].update(logits_sha256="0" * 64))
    (directory / SEAL_FILE).write_text(seal_line((directory / "manifest.json").read_bytes()))
    with pytest.raises(ArtefactError, match=r"do not reproduce.*\n  task 'animals': test logits changed"):
        resume(task_dir, tokenizer, killed)
    assert not (killed / "artefacts" / "animals.corrupt").exists()


def test_outputs_that_differ_in_another_environment_are_named_as_such_not_as_forgetting(killed, task_dir, tokenizer):
    """Exact outputs depend on the torch thread count (and device, torch build): a resume in another
    environment whose outputs differ says so, instead of reporting changed logits as forgetting."""
    directory = task_artefact_dir(killed, "animals")
    edit_json(directory / "manifest.json", lambda manifest: manifest["learned"].update(logits_sha256="0" * 64))
    (directory / SEAL_FILE).write_text(seal_line((directory / "manifest.json").read_bytes()))
    edit_json(killed / "results.json", lambda results: results["environment"].update(torch_threads=99))
    with pytest.raises(ArtefactError, match=r"another environment \(torch_threads: \d+ here, 99 when recorded\)"
                                            r".*no sign of forgetting.*OMP_NUM_THREADS"):
        resume(task_dir, tokenizer, killed)


def test_resume_of_a_folder_killed_before_its_config_starts_afresh_there(tmp_path, task_dir, caplog):
    killed = tmp_path / "killed"
    (killed / ".hydra").mkdir(parents=True)  # what Hydra leaves before seqadapt writes anything
    (killed / "train.log").write_text("")
    cfg = compose_train([*FAST, f"task_dir={task_dir}", "tasks.order=[colors,animals]", f"resume={killed}"])
    with caplog.at_level(logging.INFO, logger="seqadapt"):
        fresh, target = resume_target(cfg, tmp_path / "log")
    assert target == killed and not fresh.resume and fresh.tasks.order == ["colors", "animals"]
    assert "starting the stream afresh in it with the current config" in caplog.text
    record = run(cfg, tmp_path / "log").to_dict()
    assert record["completed_stages"] == 2 and "resumed" not in record
    assert (killed / "run_config.yaml").is_file() and has_artefact(killed, "animals")


def test_resume_of_saved_stages_without_their_config_is_refused_naming_what_is_missing(killed):
    cfg = compose_train([*FAST, f"resume={killed}"])
    assert not (killed / "run_config.yaml").exists()  # the stream was run without the CLI, which writes it
    with pytest.raises(FileNotFoundError) as caught:
        resume_target(cfg, killed.parent / "log")
    message = str(caught.value)
    assert f"it has {killed / 'results.json'} and {killed / 'artefacts'} but no run_config.yaml" in message
    assert "Put that run's run_config.yaml back" in message and "start a new run in another folder" in message


def test_resume_of_a_folder_that_does_not_exist_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot resume .*nowhere: it has no run_config.yaml, there is no such folder"):
        resume_target(compose_train([*FAST, f"resume={tmp_path / 'nowhere'}"]), tmp_path / "log")


def test_a_refused_resume_leaves_the_folder_as_it_was(killed, task_dir, tokenizer):
    (killed / "results.json").write_text("")
    other_backbone = stream(SeqAdaptModule, task_dir, tokenizer, killed, backbone_seed=1, resume=True)
    with pytest.raises(ArtefactError, match="trained on backbone"):
        other_backbone.run()
    assert (killed / "results.json").read_text() == "" and not (killed / "results.json.corrupt").exists()
    assert sorted(p.name for p in (killed / "artefacts").iterdir()) == ["animals", "colors"]

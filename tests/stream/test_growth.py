"""Growing a finished run: ``resume=<run> tasks.order=[<its order>, <new tasks>]`` trains the new tasks as its next
stages and ends exactly as a run that declared the whole order up front; what the run cannot take is refused with
the folder left as it was."""

import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml

from seqadapt.artefacts import ARTEFACTS, MANIFEST_FILE, SEAL_FILE, ArtefactError, seal_line, task_artefact_dir
from seqadapt.cli.train import run
from seqadapt.overrides import INVOCATION_KEYS, OverrideError
from seqadapt.record import RunRecord
from seqadapt.serving import load_stream
from tests.cli.test_train import FAST, compose_train
from tests.cli.test_train_kill import RUN_KEY, files_under
from tests.conftest import TOY_TASKS, make_toy_task_dir
from tests.wandb_reader import read_offline_run

ORDER = list(TOY_TASKS)  # colors, animals, weather
BASE = ORDER[:2]


@pytest.fixture(scope="module")
def task_dir(tmp_path_factory) -> Path:
    return make_toy_task_dir(tmp_path_factory.mktemp("growth"))


def launch(task_dir: Path, out: Path, order: list[str], *extra: str):
    """``seqadapt`` with the fast settings, as typed: the overrides go to ``run`` as Hydra hands them over."""
    overrides = [*FAST, f"task_dir={task_dir}", f"tasks.order=[{','.join(order)}]", *extra]
    return run(compose_train(overrides), out, overrides=overrides)


@pytest.fixture(scope="module")
def base(task_dir, tmp_path_factory) -> Path:
    """A finished run of the first two tasks; tests grow copies of it."""
    out = tmp_path_factory.mktemp("base") / "run"
    launch(task_dir, out, BASE)
    return out


@pytest.fixture(scope="module")
def one_go(task_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("one_go") / "run"
    launch(task_dir, out, ORDER)
    return out


@pytest.fixture(scope="module")
def grown(base, task_dir, tmp_path_factory) -> Path:
    """A copy of ``base`` grown by the third task, tracked to W&B (a new offline run in the run's group)."""
    out = Path(shutil.copytree(base, tmp_path_factory.mktemp("grown") / "run"))
    launch(task_dir, tmp_path_factory.mktemp("grown_log") / "log", ORDER, f"resume={out}", "logger=wandb")
    return out


@pytest.fixture
def copy(base, tmp_path) -> Path:
    return Path(shutil.copytree(base, tmp_path / "run"))


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def without_seconds(selection: dict | None) -> dict | None:
    return None if selection is None else {key: value for key, value in selection.items() if key != "seconds"}


def test_a_grown_run_equals_the_run_that_declared_the_whole_order(grown, one_go, base):
    expected, actual = results(one_go), results(grown)
    assert actual["tasks"] == expected["tasks"] == ORDER and actual["plan"] == expected["plan"]
    assert actual["score_matrix"] == expected["score_matrix"] and actual["metrics"] == expected["metrics"]
    for mine, theirs in zip(actual["stages"], expected["stages"], strict=True):
        assert mine["evaluations"] == theirs["evaluations"]  # every output hash and selection hash
        if mine["stage"] == 2:  # it ended the two-task run, so it got the end-of-stream full check (conf/train.yaml)
            assert (mine["guard"]["kind"], theirs["guard"]["kind"]) == ("full", "rotating")
            mine["guard"] = {**mine["guard"], "kind": "rotating", "re_evaluated": theirs["guard"]["re_evaluated"]}
        assert mine["guard"] == theirs["guard"] and mine["settings"] == theirs["settings"]
        assert without_seconds(mine["task_selection"]) == without_seconds(theirs["task_selection"])
    assert actual["run_id"] == results(base)["run_id"] != expected["run_id"]  # growing keeps the run's id
    assert actual["resumed"]["stages_restored"] == 2 and actual["resumed"]["tasks_added"] == ["weather"]


def test_a_grown_run_s_artefacts_are_the_one_go_run_s_byte_for_byte_but_for_the_run_that_wrote_them(grown, one_go):
    expected_files, actual_files = files_under(one_go / ARTEFACTS), files_under(grown / ARTEFACTS)
    assert sorted(actual_files) == sorted(expected_files)
    assert {f"{task}/{name}" for task in ORDER for name in ("adapter.safetensors", MANIFEST_FILE, SEAL_FILE)} <= set(
        actual_files)
    sealed = {name for name in actual_files if name.endswith((MANIFEST_FILE, SEAL_FILE))}
    for name in sorted(set(actual_files) - sealed):  # weights (and whatever else an artefact holds) byte for byte
        assert actual_files[name] == expected_files[name], name
    run_ids = [results(folder)["run_id"] for folder in (one_go, grown)]
    for task in ORDER:
        manifests = [json.loads(files[f"{task}/{MANIFEST_FILE}"]) for files in (expected_files, actual_files)]
        assert [manifest.pop(RUN_KEY) for manifest in manifests] == run_ids  # the one key allowed to differ
        assert manifests[0] == manifests[1], task
        assert actual_files[f"{task}/{SEAL_FILE}"].decode() == seal_line(actual_files[f"{task}/{MANIFEST_FILE}"])


def test_a_grown_run_s_config_is_the_one_go_run_s_and_its_wandb_run_shows_the_whole_stream(grown, one_go, base):
    def settings(folder: Path) -> dict:
        config = yaml.safe_load((folder / "run_config.yaml").read_text())
        return {key: value for key, value in config.items() if key not in INVOCATION_KEYS}

    assert settings(grown) == settings(one_go) != settings(base)
    assert yaml.safe_load((grown / "run_config.yaml").read_text())["resume"] is None
    (wandb_run,) = (grown / "wandb").glob("offline-run-*")
    logged = read_offline_run(wandb_run)
    assert logged["exit_code"] == 0 and logged["run"]["group"] == results(grown)["run_name"]
    assert [row["stage/index"] for row in logged["history"] if "stage/index" in row] == [1, 2, 3]
    assert logged["summary"]["completed_stages"] == 3 and logged["summary"]["stages_restored"] == 2
    assert logged["summary"]["acc"] == results(grown)["metrics"]["acc"]
    assert (grown / "score_matrix.png").read_bytes() != (base / "score_matrix.png").read_bytes()  # redrawn


def first_test_text(task_dir: Path, task: str) -> str:
    with open(task_dir / f"{task}_test.csv", encoding="utf-8") as handle:
        return next(csv.DictReader(handle))["sentence"]


def test_serving_without_task_ids_chooses_among_every_task_of_a_grown_run_as_of_the_one_go_run(grown, one_go, task_dir):
    texts = [first_test_text(task_dir, task) for task in ORDER]
    served = [load_stream(folder) for folder in (grown, one_go)]
    assert [stream.tasks for stream in served] == [ORDER, ORDER]
    answers = [[p.to_json() for p in stream.predict(texts, selector="mahalanobis")] for stream in served]
    assert answers[0] == answers[1] and "weather" in {answer["task"] for answer in answers[0]}


def test_a_results_file_from_before_stage_settings_still_loads(base, tmp_path):
    data = results(base)
    for stage in data["stages"]:
        del stage["settings"]
    (tmp_path / "results.json").write_text(json.dumps(data))
    assert [stage.settings for stage in RunRecord.load(tmp_path / "results.json").stages] == [{}, {}]


def test_settings_given_on_growth_shape_only_the_new_stages_and_are_recorded_per_stage(copy, task_dir, tmp_path):
    """In a sweep's job folder (``resume=true``): more epochs, fewer training rows and a sparser guard for the new
    task; the earlier tasks keep their split sizes (pinned in run_config.yaml) and their records as they ran."""
    before = results(copy)
    launch(task_dir, copy, ORDER, "resume=true", "trainer.max_epochs=2", "data.train_size=32",
           "guard.full_check_every=3")
    after = results(copy)
    assert after["stages"][:2] == before["stages"] and after["score_matrix"][1][:2] == before["score_matrix"][1]
    assert after["stages"][1]["guard"]["kind"] == "full"  # what ran when stage 2 was the last: the record says so
    settings = after["stages"][2]["settings"]
    assert (settings["trainer.max_epochs"], settings["data.train_size"], settings["data.test_size"]) == (2, 32, 24)
    assert before["stages"][1]["settings"]["trainer.max_epochs"] == 1 and after["stages"][2]["train_examples"] == 32
    assert [stage["guard"]["passed"] for stage in after["stages"]] == [True] * 3
    config = yaml.safe_load((copy / "run_config.yaml").read_text())
    assert config["data"]["task_sizes"] == {task: {"train_size": 48, "val_size": 8, "test_size": 24} for task in BASE}
    assert (config["data"]["train_size"], config["trainer"]["max_epochs"]) == (32, 2)
    assert config["guard"]["full_check_every"] == 3


@pytest.mark.parametrize(
    ("order", "extra", "refusal"),
    [
        (ORDER, ["seed=1", "adapter.bottleneck=8"],
         r"(?s)adapter.bottleneck: the run has 64, this command line gives 8"
         r".*seed: the run has 0, this command line gives 1.*another folder"),
        (BASE, ["data.train_size=32"],
         r"data.train_size: the run has 48, this command line gives 32 \(split sizes "
         r"apply to tasks added to the run, and tasks.order adds none"),
        (["colors", "weather"], [],
         r"tasks.order=\['colors', 'weather'\] leaves out its task\(s\) \['animals'\].*"
         r"grows by appending tasks \(tasks.order=\[colors,animals,<new tasks>\]\).*retrain"),
        ([*BASE, "colors"], [], r"task\(s\) \['colors'\] are already stage\(s\) \[1\] of it.*retrain it in place"),
    ],
    ids=["model settings", "sizes without new tasks", "not a prefix", "a task it has"],
)
def test_what_a_run_cannot_take_is_refused_naming_it_and_the_folder_is_left_as_it_was(
    copy, task_dir, tmp_path, order, extra, refusal
):
    before = files_under(copy)
    with pytest.raises(OverrideError, match=refusal):
        launch(task_dir, tmp_path / "log", order, f"resume={copy}", *extra)
    assert files_under(copy) == before


def test_growing_a_run_whose_artefact_is_damaged_is_refused_with_the_resume_way_out(copy, task_dir, tmp_path):
    weights = task_artefact_dir(copy, "animals") / "adapter.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    before = files_under(copy)
    with pytest.raises(ArtefactError, match=rf"cannot grow the run in {copy}: the artefact of its stage 2 \(animals\) "
                                            rf"does not verify: .*truncated.*Resume the run first .*resume={copy}"):
        launch(task_dir, tmp_path / "log", ORDER, f"resume={copy}")
    after = files_under(copy)
    assert after.pop("train.log", b"") == b"" and after == before  # nothing set aside, every file as it was

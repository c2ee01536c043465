"""check_run: a run's tasks re-evaluated and compared exactly, within a tolerance, or by score; data changes,
refused artefacts and the run folder's lock."""

import csv
import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save

from seqadapt import preservation
from seqadapt.artefacts import REFERENCE_FILE, read_manifest, task_artefact_dir
from seqadapt.comparison import Tolerance
from seqadapt.lock import RunLock, RunLockedError
from seqadapt.preservation import VerifyUsageError, check_run
from seqadapt.selection.statistics import unpacked
from seqadapt.versions import write_retired
from tests.preserved_run import TASKS, finished_run, run_copy  # noqa: F401  (fixtures)
from tests.test_artefacts import reseal

NUDGE = 1e-5  # what nudged outputs differ by: far below the default tolerance, far above float32 rounding


def learned(run_dir: Path) -> dict[str, float]:
    """Each task's score when learned, as results.json recorded it (not as the check reads it)."""
    results = json.loads((run_dir / "results.json").read_text())
    return {evaluation["task"]: evaluation["score"] for evaluation in results["stages"][-1]["evaluations"]}


@pytest.fixture
def nudged(monkeypatch):
    """Every re-evaluated output off by NUDGE in one value: what another environment's last bits look like."""
    original = preservation.task_outputs

    def outputs(*args):
        values, targets = original(*args)
        values = values.clone()
        values.view(-1)[0] += NUDGE
        return values, targets

    monkeypatch.setattr(preservation, "task_outputs", outputs)


@pytest.fixture
def other_threads():
    """This process with one torch thread more than the run recorded: another environment, truly."""
    before = torch.get_num_threads()
    torch.set_num_threads(before + 1)
    yield before + 1
    torch.set_num_threads(before)


def tamper_adapter(run_dir: Path, task: str, by: float) -> None:
    """Raise the task's first label's bias by ``by`` (so its first output column moves by exactly that) and
    reseal its manifest, as someone re-sealing a folder would."""
    directory = task_artefact_dir(run_dir, task)
    tensors = load_file(directory / "adapter.safetensors")
    tensors[f"heads.{task}.classifier.bias"][0] += by
    data = save(tensors, metadata={"seqadapt_task": task})
    (directory / "adapter.safetensors").write_bytes(data)
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["weights"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    reseal(directory, manifest)


def by_task(checked) -> dict:
    return {check.task: check for check in checked.tasks}


def test_an_untouched_run_is_preserved_exactly(finished_run):
    checked = check_run(finished_run)
    assert checked.passed and [c.task for c in checked.tasks] == list(TASKS)
    for check in checked.tasks:
        assert (check.outcome, check.comparison, check.max_abs_diff) == ("preserved", "exact", 0.0)
        assert check.learned == check.now == learned(finished_run)[check.task]
        assert "outputs identical to those recorded" in check.explanation


def test_in_another_environment_outputs_within_tolerance_pass_and_say_so(finished_run, nudged, other_threads):
    checks = by_task(check_run(finished_run))
    for check in checks.values():
        assert (check.outcome, check.comparison) == ("preserved", "tolerance")
        assert check.max_abs_diff == pytest.approx(NUDGE, rel=0.05) and check.agreement == 1.0
        assert f"another environment (torch_threads: {other_threads} here, {other_threads - 1} when recorded)" in check.why
        assert "within tolerance of its reference outputs" in check.why


def test_in_the_same_environment_any_difference_fails_and_names_the_way_out(finished_run, nudged):
    check = by_task(check_run(finished_run, ["colors"]))["colors"]
    assert (check.outcome, check.comparison) == ("changed", "exact")
    assert "outputs differ from those recorded when it was learned, in the same environment" in check.why
    assert "within the tolerance: if this machine differs" in check.why and "--compare tolerance" in check.why
    forced = by_task(check_run(finished_run, ["colors"], compare="tolerance"))["colors"]
    assert (forced.outcome, forced.comparison) == ("preserved", "tolerance")


def test_a_tampered_adapter_fails_exactly_and_beyond_tolerance(run_copy):
    tamper_adapter(run_copy, "animals", by=0.5)
    checks = by_task(check_run(run_copy))
    assert checks["colors"].passed and not checks["animals"].passed
    assert (checks["animals"].outcome, checks["animals"].comparison) == ("changed", "exact")
    tolerated = by_task(check_run(run_copy, ["animals"], compare="tolerance"))["animals"]
    assert (tolerated.outcome, tolerated.comparison) == ("changed", "tolerance")
    assert tolerated.max_abs_diff == pytest.approx(0.5, abs=1e-5)
    assert f"largest output difference {tolerated.max_abs_diff:.3g} > 0.001" in tolerated.why


def test_changed_test_rows_are_a_data_change_naming_the_task_not_forgetting(run_copy):
    path = run_copy.parent / "tasks" / "colors_test.csv"
    rows = list(csv.reader(path.open(encoding="utf-8")))
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([rows[0]] + [[text + " again", label] for text, label in rows[1:]])
    checks = by_task(check_run(run_copy))
    assert checks["animals"].passed
    colors = checks["colors"]
    assert (colors.outcome, colors.now) == ("data changed", None)
    assert "colors: data changed: accuracy" in colors.explanation and "not measured now" in colors.explanation
    assert "its test split's rows are not the ones it was evaluated on (24 rows now, 24 when learned; rows SHA-256" in colors.why


def test_a_changed_task_definition_is_a_data_change_naming_its_keys(run_copy):
    path = run_copy.parent / "tasks" / "animals.yaml"
    definition = yaml.safe_load(path.read_text())
    definition["labels"].reverse()
    path.write_text(yaml.safe_dump(definition))
    check = by_task(check_run(run_copy, ["animals"]))["animals"]
    assert check.outcome == "data changed" and "its definition now differs from the one it was learned with in ['labels']" in check.why


def test_an_artefact_without_reference_outputs_is_compared_by_score_and_says_so(run_copy, nudged, other_threads):
    directory = task_artefact_dir(run_copy, "colors")
    manifest = json.loads((directory / "manifest.json").read_text())
    del manifest["reference"]
    reseal(directory, manifest)  # as an artefact written before references were stored
    (directory / REFERENCE_FILE).unlink()
    check = by_task(check_run(run_copy, ["colors"]))["colors"]
    assert (check.outcome, check.comparison) == ("preserved", "score only")
    assert "holds no reference outputs (written before seqadapt stored them)" in check.why
    assert "torch_threads" in check.why  # the run's recorded environment, from results.json
    strict = by_task(check_run(run_copy, ["colors"], Tolerance(max_score_diff=0.0)))["colors"]
    assert strict.passed  # the nudge moves no prediction: the score is the learned one


def test_a_refused_artefact_is_a_failure_naming_why_and_the_others_are_checked(run_copy):
    weights = task_artefact_dir(run_copy, "colors") / "adapter.safetensors"
    data = bytearray(weights.read_bytes())
    weights.write_bytes(bytes(data[:-1] + bytes([data[-1] ^ 0xFF])))
    checks = by_task(check_run(run_copy))
    assert checks["animals"].passed
    assert checks["colors"].outcome == "refused"
    assert "its artefact was refused: " in checks["colors"].why and "adapter.safetensors is corrupt" in checks["colors"].why


def test_damaged_reference_outputs_are_refused(run_copy):
    reference = task_artefact_dir(run_copy, "animals") / REFERENCE_FILE
    reference.write_bytes(reference.read_bytes()[:-4] + b"\0\0\0\0")
    check = by_task(check_run(run_copy))["animals"]
    assert check.outcome == "refused" and "its reference outputs were refused" in check.why and "corrupt" in check.why


def test_unknown_tasks_and_folders_are_usage_errors_listing_what_there_is(finished_run, tmp_path):
    with pytest.raises(VerifyUsageError, match=r"has no artefact for task\(s\) \['weather'\]; its tasks are "
                                               r"\['colors', 'animals'\]"):
        check_run(finished_run, ["colors", "weather"])
    with pytest.raises(VerifyUsageError, match=rf"{tmp_path} is not a seqadapt run folder: it has no run_config.yaml"):
        check_run(tmp_path)


def test_a_folder_being_written_is_refused_and_the_check_holds_it_as_a_reader(finished_run, monkeypatch):
    with RunLock(finished_run), pytest.raises(RunLockedError, match="is being written by another seqadapt run"):
        check_run(finished_run)
    told, original = [], preservation.task_outputs

    def outputs(*args):
        try:
            with RunLock(finished_run):
                told.append("let in")
        except RunLockedError as err:
            told.append(str(err))
        return original(*args)

    monkeypatch.setattr(preservation, "task_outputs", outputs)
    check_run(finished_run, ["colors"])
    assert len(told) == 1 and "is being read by another process" in told[0]


def test_a_retired_task_is_not_checked_and_asking_for_it_says_how_to_serve_it_again(run_copy):
    write_retired(run_copy, {"animals": {"version": 1, "time": "2026-01-01 00:00:00"}})
    checked = check_run(run_copy)
    assert [check.task for check in checked.tasks] == ["colors"] and checked.retired == ["animals"] and checked.passed
    with pytest.raises(VerifyUsageError, match=r"task 'animals' of .* is retired \(version 1, since 2026-01-01 "
                                               r"00:00:00\).*seqadapt-task restore"):
        check_run(run_copy, ["animals"])


def test_a_format_3_artefact_with_whole_selection_sums_still_verifies_and_serves(run_copy):
    """Format 3 (seqadapt before the sums were packed) stored scatter and gram as whole symmetric matrices: such a
    folder, rewritten here as that seqadapt wrote it, must still load and pass seqadapt-verify exactly, the
    selection fingerprint its manifest recorded then included."""
    directory = task_artefact_dir(run_copy, "colors")
    manifest = read_manifest(directory)
    weights = directory / manifest["weights"]["file"]
    tensors = load_file(weights)
    whole = {key: unpacked(t) if key.endswith((".scatter", ".gram")) else t for key, t in tensors.items()}
    assert whole["selection.tasks.colors.scatter"].dim() == 2
    weights.write_bytes(save(whole))
    data = weights.read_bytes()
    manifest["weights"] = {**manifest["weights"], "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    reseal(directory, {**manifest, "format_version": 3})
    check = check_run(run_copy)
    assert check.passed and {c.comparison for c in check.tasks} == {"exact"}, check.failure_report()

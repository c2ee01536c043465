"""Strategies that share weights resume from their last stage's checkpoint: a run killed in stage 2 and resumed,
or one grown by a task, ends bit-identical to one that ran in one go, with its method's state (the replay
memory, the Fisher) restored; a checkpoint that changed, or that another model or run wrote, is refused."""

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file

from seqadapt.artefacts import ArtefactError
from seqadapt.stage_checkpoint import CHECKPOINT_DIR, MANIFEST
from tests.conftest import make_toy_task_dir
from tests.continual.streams import method_stream
from tests.stream.test_run import ORDER, crashing_at

SETTINGS = {"replay": {"rows_per_task": 5}, "ewc": {"ewc_lambda": 100.0}}
TWO = ORDER[:2]


@pytest.fixture(scope="module")
def toy_task_dir(tmp_path_factory) -> Path:
    return make_toy_task_dir(tmp_path_factory.mktemp("tasks"))


def outcome(out: Path) -> dict:
    """What must not depend on an interruption: every score, output fingerprint, the metrics and the ledger."""
    saved = json.loads((out / "results.json").read_text())
    fingerprints = [[(e["task"], e["logits_sha256"]) for e in stage["evaluations"]] for stage in saved["stages"]]
    return {"matrix": saved["score_matrix"], "outputs": fingerprints, "metrics": saved["metrics"],
            "ledger": saved["params_per_task"], "completed": saved["completed_stages"]}


def files(out: Path) -> dict[str, str]:
    """SHA-256 of the method's files and of the final checkpoint's weights."""
    paths = [*sorted((out / "continual").glob("*")), *sorted((out / CHECKPOINT_DIR).glob("*.safetensors"))]
    return {p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.fixture(scope="module", params=list(SETTINGS))
def runs(request, toy_task_dir, tokenizer, tmp_path_factory) -> dict:
    """One method's two-task run in one go, and the same run killed while stage 2 trained (stage 1 finished)."""
    strategy, root = request.param, tmp_path_factory.mktemp(request.param)
    settings = SETTINGS[strategy]
    method_stream(toy_task_dir, tokenizer, root / "whole", strategy, order=TWO, **settings).run()
    with pytest.raises(MemoryError, match="simulated crash in stage 2"):
        method_stream(toy_task_dir, tokenizer, root / "killed", strategy, order=TWO, make_trainer=crashing_at(2),
                      **settings).run()
    return {"strategy": strategy, "settings": settings, "whole": root / "whole", "killed": root / "killed"}


@pytest.fixture
def killed(runs, tmp_path) -> Path:
    return Path(shutil.copytree(runs["killed"], tmp_path / "run"))


def resume(runs, task_dir, tokenizer, out: Path, order=TWO):
    return method_stream(task_dir, tokenizer, out, runs["strategy"], order=order, resume=True, **runs["settings"])


def test_a_killed_run_resumed_from_its_checkpoint_equals_the_run_in_one_go(runs, killed, toy_task_dir, tokenizer):
    manifest = json.loads((killed / CHECKPOINT_DIR / MANIFEST).read_text())
    assert manifest["stage"] == 1 and manifest["tasks"] == TWO[:1]
    saved = {p.name: p.read_bytes() for p in (killed / "continual").glob("*")}
    run = resume(runs, toy_task_dir, tokenizer, killed)
    record = run.run()
    assert record.resumed["stages_restored"] == 1
    assert outcome(killed) == outcome(runs["whole"])
    assert files(killed) == files(runs["whole"])  # the memory / Fisher and the final weights, byte for byte
    if runs["strategy"] == "replay":  # the memory of stage 1 was read back, replayed in stage 2, then grown by it
        before = json.loads(saved["replay_memory.json"])["rows"]
        memory = run.module.continual.memory
        assert list(before) == TWO[:1] and memory.rows[TWO[0]] == before[TWO[0]]
        assert {task: len(rows) for task, rows in memory.rows.items()} == {task: 5 for task in TWO}


def test_growing_a_finished_run_by_a_task_equals_declaring_it_up_front(toy_task_dir, tokenizer, tmp_path):
    """O-LoRA (a frozen backbone: the checkpoint holds the LoRAs and heads only) grown from one task to two."""
    method_stream(toy_task_dir, tokenizer, tmp_path / "whole", "olora", order=TWO).run()
    method_stream(toy_task_dir, tokenizer, tmp_path / "grown", "olora", order=TWO[:1]).run()
    record = method_stream(toy_task_dir, tokenizer, tmp_path / "grown", "olora", order=TWO, resume=True).run()
    assert record.resumed["tasks_added"] == TWO[1:]
    assert outcome(tmp_path / "grown") == outcome(tmp_path / "whole")
    assert files(tmp_path / "grown") == files(tmp_path / "whole")


def test_a_changed_method_file_is_refused_before_anything_trains(runs, killed, toy_task_dir, tokenizer):
    changed = next((killed / "continual").glob("*"))
    changed.write_bytes(changed.read_bytes()[:-1] + b" ")
    with pytest.raises(ArtefactError, match=f"{changed} is not the file .* records .*start it again"):
        resume(runs, toy_task_dir, tokenizer, killed).run()
    assert json.loads((killed / "results.json").read_text())["completed_stages"] == 1


def test_weights_that_do_not_fit_the_model_are_refused_naming_the_tensor(runs, killed, toy_task_dir, tokenizer):
    checkpoint = killed / CHECKPOINT_DIR
    weights = checkpoint / "stage-1.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[0]
    tensors[name] = tensors[name].flatten()[:3].clone()
    save_file(tensors, weights)
    manifest = json.loads((checkpoint / MANIFEST).read_text())
    data = weights.read_bytes()
    manifest["weights"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))  # a consistent forgery
    (checkpoint / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=f"does not fit the model: {name} \\(3,\\)"):
        resume(runs, toy_task_dir, tokenizer, killed).run()


def test_weights_changed_after_the_stage_are_refused(runs, killed, toy_task_dir, tokenizer):
    weights = killed / CHECKPOINT_DIR / "stage-1.safetensors"
    tensors = load_file(weights)
    name = sorted(tensors)[-1]
    tensors[name] = tensors[name] + 1
    save_file(tensors, weights)
    with pytest.raises(ArtefactError, match="is corrupt or truncated|is not the file"):
        resume(runs, toy_task_dir, tokenizer, killed).run()


def test_a_checkpoint_whose_outputs_no_longer_reproduce_is_refused(runs, killed, toy_task_dir, tokenizer):
    manifest_path = killed / CHECKPOINT_DIR / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["stages"][-1]["evaluations"][0]["logits_sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=f"task '{TWO[0]}': test logits changed since stage 1 ended"):
        resume(runs, toy_task_dir, tokenizer, killed).run()


def test_a_checkpoint_of_another_run_or_stream_is_refused(runs, killed, toy_task_dir, tokenizer):
    manifest_path = killed / CHECKPOINT_DIR / MANIFEST
    manifest = json.loads(manifest_path.read_text())
    manifest["run_id"] = "f" * 32
    manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(ArtefactError, match=f"was written by run {'f' * 32}, but .*results.json belongs to run"):
        resume(runs, toy_task_dir, tokenizer, killed).run()
    with pytest.raises(ArtefactError, match="do not begin with them"):
        resume(runs, toy_task_dir, tokenizer, killed, order=list(reversed(TWO))).run()


def test_stages_without_a_checkpoint_are_refused_with_the_way_out(runs, killed, toy_task_dir, tokenizer):
    shutil.rmtree(killed / CHECKPOINT_DIR)
    with pytest.raises(ArtefactError, match="records 1 finished stage\\(s\\) .* holds no checkpoint .*start it again"):
        resume(runs, toy_task_dir, tokenizer, killed).run()

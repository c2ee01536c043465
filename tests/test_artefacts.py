"""Per-task artefacts: what they hold, and every way a damaged or unsafe one is refused."""

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from seqadapt.adapters import AdapterConfig
from seqadapt.artefacts import (
    REFERENCE_FILE,
    SEAL_FILE,
    ArtefactError,
    CorruptArtefactError,
    Reference,
    TaskArtefact,
    check_written_by,
    has_artefact,
    install_task,
    load_reference,
    load_task_artefact,
    load_tensors,
    read_manifest,
    save_task_artefact,
    seal_line,
    task_artefact_dir,
)
from seqadapt import __version__
from seqadapt.backbone import tensor_bytes, weights_hash
from seqadapt.data import TaskSpec
from seqadapt.evaluation import evaluate_task, rows_sha256, task_outputs
from seqadapt.record import TaskEvaluation
from seqadapt.model import SeqAdaptModule
from seqadapt.selection import SelectionConfig
from tests.conftest import TOY_TASKS, tiny_model, write_toy_task
from tests.stream.test_run import ORDER, stream
from tests.test_untrusted_json import NOT_AN_OBJECT

PACKAGE = Path(__file__).resolve().parents[1] / "seqadapt"
NO_REFERENCE = Reference(torch.zeros(2, 2), "0" * 64, {})  # for artefacts whose outputs no test reads


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tokenizer):
    """One finished 3-task stream, shared read-only; tests that damage files work on a copy."""
    root = tmp_path_factory.mktemp("artefacts")
    task_dir = root / "tasks"
    task_dir.mkdir()
    for name in TOY_TASKS:
        write_toy_task(task_dir, name)
    run = stream(SeqAdaptModule, task_dir, tokenizer, root / "run")
    results = run.run().to_dict()
    return run, results


@pytest.fixture
def run_copy(finished_run, tmp_path) -> Path:
    run, _ = finished_run
    return Path(shutil.copytree(run.output_dir, tmp_path / "run"))


def test_each_stage_leaves_only_its_own_tensors_and_a_manifest(finished_run):
    run, results = finished_run
    owned = {id(p) for task in ORDER for p in run.module.task_parameters(task)}
    frozen_keys = {key for key, p in run.module.named_parameters() if id(p) not in owned}
    assert any(key.startswith("backbone.embeddings.") for key in frozen_keys)
    for stage, task in enumerate(ORDER, start=1):
        directory = task_artefact_dir(run.output_dir, task)
        manifest = read_manifest(directory)
        assert manifest["task"] == task and manifest["stage"] == stage
        assert manifest["labels"] == sorted(TOY_TASKS[task])
        assert manifest["backbone"]["sha256"] == results["backbone_sha256"] == weights_hash(run.module.backbone)
        assert manifest["adapter"]["bottleneck"] == 8
        assert manifest["learned"] == results["stages"][stage - 1]["evaluations"][-1]
        assert manifest["settings"] == {"max_length": 16, "batch_size": 16, "eval_batch_size": 32}

        artefact = load_task_artefact(directory, backbone_sha256=results["backbone_sha256"])
        assert set(artefact.tensors) == set(run.module.tensors.of(task))
        assert not set(artefact.tensors) & frozen_keys  # no frozen backbone weight is ever saved
        assert all(f".{task}." in key or key.startswith(f"heads.{task}.") for key in artefact.tensors)
        for key, value in run.module.tensors.of(task).items():
            assert torch.equal(artefact.tensors[key], value)
        assert sorted(p.name for p in directory.iterdir()) == ["adapter.safetensors", "manifest.json", "manifest.sha256",
                                                               REFERENCE_FILE]
        manifest_sha256 = hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest()
        assert (directory / SEAL_FILE).read_text() == f"{manifest_sha256}  manifest.json\n"  # sha256sum -c reads it
    backbone_bytes = sum(len(tensor_bytes(t)) for t in run.module.backbone.state_dict().values())
    assert manifest["weights"]["bytes"] < 0.05 * backbone_bytes


def test_each_artefact_stores_the_outputs_its_learned_evaluation_hashed(finished_run):
    """Reference outputs: what the learned hash covers, the test rows they came from, where they were computed."""
    run, results = finished_run
    for task in run.tasks:
        directory = task_artefact_dir(run.output_dir, task.spec.name)
        manifest = read_manifest(directory)
        reference = load_reference(directory, manifest)
        assert hashlib.sha256(tensor_bytes(reference)).hexdigest() == manifest["learned"]["logits_sha256"]
        assert torch.equal(reference, task_outputs(run.module, task.spec.name, run.loaders.test(task))[0])
        assert reference.shape == (len(task.test), task.spec.num_labels) and reference.dtype == torch.float32
        assert manifest["reference"]["test_rows_sha256"] == rows_sha256(task.test)
        assert manifest["reference"]["environment"] == results["environment"]
        assert manifest["reference"]["bytes"] == (directory / REFERENCE_FILE).stat().st_size


def test_damaged_reference_outputs_are_refused_and_an_artefact_from_before_has_none(run_copy):
    directory = task_artefact_dir(run_copy, "animals")
    manifest = read_manifest(directory)
    (directory / REFERENCE_FILE).write_bytes((directory / REFERENCE_FILE).read_bytes()[:-1] + b"\x01")
    with pytest.raises(CorruptArtefactError, match=rf"{REFERENCE_FILE} is corrupt or truncated: its SHA-256 \w+ is not"):
        load_reference(directory, manifest)
    del manifest["reference"]
    reseal(directory, manifest)
    assert load_reference(directory, read_manifest(directory)) is None


def test_artefacts_rebuild_the_task_exactly_in_a_fresh_model(finished_run):
    run, _ = finished_run
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8), selection=SelectionConfig(projection_dim=16))
    sha = weights_hash(module.backbone)
    for task in run.tasks:
        artefact = load_task_artefact(task_artefact_dir(run.output_dir, task.spec.name), backbone_sha256=sha)
        install_task(module, artefact)
        assert evaluate_task(module, task.spec.name, run.loaders.test(task), task.test) == artefact.learned


@pytest.mark.parametrize(("selection", "differs"), [
    (SelectionConfig(projection_dim=16, projection_seed=1), "'projection_seed': 1"),
    (SelectionConfig(projection_dim=0), "'projection_dim': 0"),
    (SelectionConfig(projection_dim=16, layers=(-1,)), "'layers': [-1]"),
])
def test_statistics_made_another_way_are_refused_naming_both(finished_run, selection, differs):
    """A task's statistics only mean something with the features and random projection they were made with."""
    run, _ = finished_run
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8), selection=selection)
    artefact = load_task_artefact(task_artefact_dir(run.output_dir, "colors"), backbone_sha256=weights_hash(module.backbone))
    with pytest.raises(ArtefactError, match=rf"stores selection statistics made with .*'projection_dim': 16.*the model has .*{re.escape(differs)}"):
        install_task(module, artefact)


def test_a_projection_that_hashes_differently_is_refused(finished_run, monkeypatch):
    run, _ = finished_run
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8), selection=SelectionConfig(projection_dim=16))
    with torch.no_grad():
        module.selection.projection.weight[0, 0] += 1.0  # as another random generator would draw it
    artefact = load_task_artefact(task_artefact_dir(run.output_dir, "colors"), backbone_sha256=weights_hash(module.backbone))
    with pytest.raises(ArtefactError, match="hashes differently"):
        install_task(module, artefact)


def test_wrong_backbone_is_refused_naming_both_hashes(finished_run):
    run, results = finished_run
    other = weights_hash(tiny_model(seed=1))
    with pytest.raises(ArtefactError) as caught:
        load_task_artefact(task_artefact_dir(run.output_dir, "colors"), backbone_sha256=other)
    assert results["backbone_sha256"] in str(caught.value) and other in str(caught.value)
    assert "trained on backbone 'unnamed'" in str(caught.value)


@pytest.mark.parametrize("damage", ["truncate", "flip_byte"])
def test_truncated_or_corrupt_weights_are_refused(run_copy, damage):
    weights = task_artefact_dir(run_copy, "animals") / "adapter.safetensors"
    data = bytearray(weights.read_bytes())
    weights.write_bytes(data[: len(data) // 2] if damage == "truncate" else data[:-1] + bytes([data[-1] ^ 0xFF]))
    differs = r"it holds \d+ bytes, its manifest records \d+" if damage == "truncate" else r"its SHA-256 \w+ is not"
    with pytest.raises(CorruptArtefactError, match=rf"adapter.safetensors is corrupt or truncated: {differs}") as caught:
        load_task_artefact(weights.parent, backbone_sha256=read_manifest(weights.parent)["backbone"]["sha256"])
    assert "resume skips only" not in str(caught.value)  # it never did: resume sets the artefact aside and retrains
    assert "Resume the run (resume=<run dir>): it moves animals aside as animals.corrupt and trains that stage again" in str(caught.value)


def test_garbage_with_a_matching_hash_is_still_refused(run_copy):
    directory = task_artefact_dir(run_copy, "animals")
    (directory / "adapter.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(ArtefactError, match="not a readable safetensors file"):
        load_tensors(directory / "adapter.safetensors")


def test_damaged_manifest_is_refused(run_copy):
    directory = task_artefact_dir(run_copy, "colors")
    (directory / "manifest.json").write_text('{"format_version": 1, "task": ')
    with pytest.raises(ArtefactError, match="manifest.json is not valid JSON"):
        read_manifest(directory)


@pytest.mark.parametrize("suffix", [".bin", ".pt", ".pkl", ".ckpt"])
def test_pickle_formats_are_refused_without_being_opened(tmp_path, suffix):
    path = tmp_path / f"adapter{suffix}"
    path.write_bytes(b"\x80\x04 this would be unpickled")
    with pytest.raises(ArtefactError, match=rf"refusing to load .*adapter\{suffix}: .*pickles"):
        load_tensors(path)


def test_manifest_pointing_at_a_pickle_is_refused(run_copy):
    directory = task_artefact_dir(run_copy, "weather")
    manifest = read_manifest(directory)
    torch.save({"x": torch.zeros(1)}, directory / "adapter.bin")
    manifest["weights"]["file"] = "adapter.bin"
    (directory / "manifest.json").write_text(json.dumps(manifest))
    (directory / SEAL_FILE).write_text(seal_line((directory / "manifest.json").read_bytes()))  # sealed, yet refused
    with pytest.raises(ArtefactError, match="refusing to load"):
        load_task_artefact(directory, backbone_sha256=manifest["backbone"]["sha256"])


def test_a_folder_of_pickles_is_named_as_such(tmp_path):
    torch.save({"x": torch.zeros(1)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(ArtefactError, match=r"pickle-based file\(s\) \['pytorch_model.bin'\].*refuses"):
        read_manifest(tmp_path)


def test_weights_without_a_manifest_do_not_count_as_an_artefact(tmp_path):
    directory = task_artefact_dir(tmp_path, "colors")
    directory.mkdir(parents=True)
    save_file({"x": torch.zeros(2)}, directory / "adapter.safetensors")  # a stage killed before its manifest
    assert not has_artefact(tmp_path, "colors")
    with pytest.raises(ArtefactError, match="did not finish"):
        read_manifest(directory)


def test_adapter_config_mismatch_is_named(finished_run):
    run, results = finished_run
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=4))
    artefact = load_task_artefact(task_artefact_dir(run.output_dir, "colors"), backbone_sha256=results["backbone_sha256"])
    with pytest.raises(ArtefactError, match=r"saved with adapter config .*'bottleneck': 8.*the model has .*'bottleneck': 4"):
        install_task(module, artefact)


def test_package_never_unpickles():
    """No pickle import anywhere, and torch.load only ever with weights_only=True."""
    for path in PACKAGE.rglob("*.py"):
        source = path.read_text()
        assert not re.search(r"^\s*(import|from)\s+(pickle|dill|joblib|cloudpickle)\b", source, re.M), path
        for call in re.findall(r"torch\.load\([^)]*\)", source):
            assert "weights_only=True" in call, f"{path}: {call}"


def test_per_task_layer_norms_travel_with_the_task(tmp_path):
    config = AdapterConfig(bottleneck=8, train_layer_norm=True)
    module = SeqAdaptModule(tiny_model(), config)
    module.add_task(TaskSpec(name="t", labels=("a", "b"), source={}))
    with torch.no_grad():
        for value in module.tensors.of("t").values():
            value.add_(torch.randn_like(value))  # as if trained: differs from any fresh init
    learned = TaskEvaluation(task="t", metric="accuracy", score=0.5, examples=2, logits_sha256="0" * 64)
    sha = weights_hash(module.backbone)
    directory = save_task_artefact(
        module, learned, tmp_path, stage=1, backbone_name="tiny", backbone_sha256=sha, settings={}, run_id="0" * 32,
        reference=NO_REFERENCE,
    )
    artefact = load_task_artefact(directory, backbone_sha256=sha)
    assert any(".norms.t." in key for key in artefact.tensors)
    fresh = SeqAdaptModule(tiny_model(), config)
    install_task(fresh, artefact)
    for key, value in module.tensors.of("t").items():
        assert torch.equal(fresh.tensors.of("t")[key], value), key


def reverse_labels(manifest):
    manifest["labels"].reverse()
    manifest["spec"]["labels"].reverse()


@pytest.mark.parametrize(
    "edit",
    [reverse_labels, lambda m: m.update(pooling="cls"), lambda m: m["learned"].update(score=0.99),
     lambda m: m["weights"].update(sha256="0" * 64)],
    ids=["labels reversed", "pooling", "learned accuracy", "weights sha256"],
)
def test_an_edited_manifest_does_not_pass_its_seal(run_copy, edit):
    directory = task_artefact_dir(run_copy, "animals")
    manifest = json.loads((directory / "manifest.json").read_text())
    edit(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2))
    with pytest.raises(CorruptArtefactError, match=r"manifest.json does not match its seal .*manifest.sha256: its SHA-256"):
        load_task_artefact(directory, backbone_sha256=manifest["backbone"]["sha256"])


def test_an_unsealed_manifest_is_refused_with_the_way_out(run_copy):
    directory = task_artefact_dir(run_copy, "animals")
    (directory / SEAL_FILE).unlink()  # as an artefact written before manifests were sealed
    with pytest.raises(CorruptArtefactError) as caught:
        read_manifest(directory)
    message = str(caught.value)
    assert "manifest.sha256 is missing" in message and "it moves animals aside as animals.corrupt" in message
    assert f"seal it: cd {directory} && sha256sum manifest.json > manifest.sha256" in message
    (directory / SEAL_FILE).write_bytes(hashlib.sha256((directory / "manifest.json").read_bytes()).hexdigest().encode()
                                        + b"  manifest.json\n")  # what the advice's sha256sum writes
    assert read_manifest(directory)["task"] == "animals"


def test_a_new_artefact_folder_is_made_durable_in_its_parent(tmp_path, monkeypatch):
    """The task folder's entry in artefacts/ (and artefacts/ in the run folder) is fsync'd, not only the files."""
    synced = []
    fsync = os.fsync

    def recording_fsync(fd):
        synced.append(Path(os.readlink(f"/proc/self/fd/{fd}")))
        fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8))
    module.add_task(TaskSpec(name="t", labels=("a", "b"), source={}))
    learned = TaskEvaluation(task="t", metric="accuracy", score=0.5, examples=2, logits_sha256="0" * 64)
    save_task_artefact(module, learned, tmp_path, stage=1, backbone_name="tiny", backbone_sha256="x", settings={},
                       run_id="0" * 32, reference=NO_REFERENCE)
    assert tmp_path / "artefacts" in synced and tmp_path in synced


def reseal(directory: Path, manifest) -> None:
    """Write ``manifest`` (an object, or raw text) with a matching seal: as someone forging a folder would."""
    data = (manifest if isinstance(manifest, str) else json.dumps(manifest, indent=2)).encode()
    (directory / "manifest.json").write_bytes(data)
    (directory / SEAL_FILE).write_text(seal_line(data))


@NOT_AN_OBJECT
def test_a_manifest_that_is_not_a_json_object_is_refused_even_when_sealed(run_copy, content, problem):
    directory = task_artefact_dir(run_copy, "colors")
    reseal(directory, content)
    with pytest.raises(CorruptArtefactError, match=rf"manifest.json is {problem}; the artefact is damaged\. Resume the run"):
        load_task_artefact(directory, backbone_sha256="unused")


def test_a_manifest_over_the_size_cap_is_refused_unread(run_copy, monkeypatch):
    directory = task_artefact_dir(run_copy, "colors")
    size = (directory / "manifest.json").stat().st_size
    monkeypatch.setattr("seqadapt.artefacts.MAX_MANIFEST_BYTES", size - 1)
    with pytest.raises(CorruptArtefactError, match=rf"manifest.json is larger than the {size - 1} bytes allowed \({size} bytes\)"):
        read_manifest(directory)


@pytest.mark.parametrize(
    ("edit", "problem"),
    [(lambda m: m.update(stage="2"), 'stage is a JSON string ("2"), not an integer'),
     (lambda m: m["weights"].pop("file"), "weights is an object without 'file'"),
     (lambda m: m["backbone"].update(sha256=5), "backbone.sha256 is a JSON number (5), not a string"),
     (lambda m: m["learned"].update(score="high"), 'learned.score is a JSON string ("high"), not a number'),
     (lambda m: m.update(labels="cat,dog"), 'labels is a JSON string ("cat,dog"), not an array'),
     (lambda m: m.update(written_by_run=["x"]), "written_by_run is a JSON array, not a string")],
    ids=["stage", "weights file", "backbone sha256", "learned score", "labels", "written_by_run"],
)
def test_a_sealed_manifest_with_a_value_of_the_wrong_type_is_refused_naming_its_key(run_copy, edit, problem):
    directory = task_artefact_dir(run_copy, "animals")
    manifest = json.loads((directory / "manifest.json").read_text())
    edit(manifest)
    reseal(directory, manifest)
    with pytest.raises(CorruptArtefactError) as caught:
        load_task_artefact(directory, backbone_sha256=read_manifest(task_artefact_dir(run_copy, "colors"))["backbone"]["sha256"])
    assert f"manifest.json is not a manifest seqadapt wrote: {problem}. Resume the run" in str(caught.value)


def test_weights_named_outside_the_artefact_folder_are_refused(run_copy, tmp_path):
    """A sealed manifest naming another folder's weights (with their hash) would otherwise load them."""
    directory, colors = task_artefact_dir(run_copy, "animals"), read_manifest(task_artefact_dir(run_copy, "colors"))
    manifest = read_manifest(directory)
    for name in ("../colors/adapter.safetensors", str(task_artefact_dir(run_copy, "colors") / "adapter.safetensors")):
        reseal(directory, {**manifest, "weights": {**colors["weights"], "file": name}})
        with pytest.raises(ArtefactError, match=rf"manifest.json: weights.file is '{re.escape(name)}', which is not a "
                                                r"file name: an artefact's files must lie directly in its folder"):
            load_task_artefact(directory, backbone_sha256=manifest["backbone"]["sha256"])
    reseal(directory, {**manifest, "reference": {**colors["reference"], "file": f"../colors/{REFERENCE_FILE}"}})
    with pytest.raises(ArtefactError, match=rf"manifest.json: reference.file is '../colors/{REFERENCE_FILE}', which is not"):
        read_manifest(directory)


def test_a_link_leading_out_of_the_artefact_folder_is_refused(run_copy, tmp_path):
    directory = task_artefact_dir(run_copy, "animals")
    manifest = read_manifest(directory)
    outside = tmp_path / "elsewhere.safetensors"
    (directory / "adapter.safetensors").rename(outside)
    (directory / "adapter.safetensors").symlink_to(outside)  # the same bytes: only where they lie is wrong
    with pytest.raises(ArtefactError, match=rf"weights.file is 'adapter.safetensors', a link to {re.escape(str(outside))}, "
                                            r"outside its artefact folder"):
        load_task_artefact(directory, backbone_sha256=manifest["backbone"]["sha256"])
    (directory / "adapter.safetensors").unlink()
    shutil.copy(outside, directory / "adapter.safetensors")
    shutil.move(directory / "manifest.json", tmp_path / "manifest.json")
    (directory / "manifest.json").symlink_to(tmp_path / "manifest.json")
    with pytest.raises(ArtefactError, match=r"animals/manifest.json, a link to .*/manifest.json, outside its artefact folder"):
        read_manifest(directory)


def test_a_folder_named_after_another_task_is_refused_naming_both(run_copy):
    artefacts = run_copy / "artefacts"
    (artefacts / "animals").rename(artefacts / "pets")
    with pytest.raises(ArtefactError, match=r"is the artefact of task 'animals' \(its spec names 'animals'\), but its "
                                            r"folder is named 'pets'.*Rename the folder to 'animals'"):
        read_manifest(artefacts / "pets")


@pytest.mark.parametrize("version", [1, 2])
@pytest.mark.parametrize("sealed", [False, True])
def test_artefacts_of_format_versions_1_and_2_are_refused_with_what_to_do(run_copy, version, sealed):
    directory = task_artefact_dir(run_copy, "colors")
    manifest = {**read_manifest(directory), "format_version": version, "seqadapt_version": "0.4.0"}
    reseal(directory, manifest)
    if not sealed:  # versions before 3 were written without a seal
        (directory / SEAL_FILE).unlink()
    with pytest.raises(ArtefactError) as caught:
        read_manifest(directory)
    assert str(caught.value) == (
        f"{directory / 'manifest.json'} has format_version {version}; this seqadapt ({__version__}) reads versions 3 and 4. "
        "Serve it with seqadapt 0.4.0 (pip install 'seqadapt==0.4.0'), or run the stream again with this seqadapt, "
        "in a new folder, to write artefacts it can load."
    )


def test_a_newer_format_asks_for_an_upgrade(run_copy):
    directory = task_artefact_dir(run_copy, "colors")
    reseal(directory, {**read_manifest(directory), "format_version": 5})
    with pytest.raises(ArtefactError, match=r"has format_version 5; .*Upgrade seqadapt to load it \(pip install -U seqadapt\)"):
        read_manifest(directory)


def test_each_manifest_records_the_run_that_wrote_it_and_one_from_before_still_loads(finished_run, run_copy):
    run, results = finished_run
    assert len(results["run_id"]) == 32
    for task in ORDER:
        assert read_manifest(task_artefact_dir(run.output_dir, task))["written_by_run"] == results["run_id"]
    directory = task_artefact_dir(run_copy, "colors")
    manifest = read_manifest(directory)
    del manifest["written_by_run"]
    reseal(directory, manifest)  # as a manifest written before runs had ids
    assert "written_by_run" not in load_task_artefact(directory, backbone_sha256=results["backbone_sha256"]).manifest
    check_written_by(directory, manifest, results["run_id"], run_copy / "results.json")  # nothing to compare


def test_an_artefact_of_another_run_is_refused_naming_both_runs(finished_run):
    run, results = finished_run
    directory = task_artefact_dir(run.output_dir, "colors")
    with pytest.raises(ArtefactError) as caught:
        check_written_by(directory, read_manifest(directory), "f" * 32, run.output_dir / "results.json")
    assert str(caught.value).startswith(
        f"{directory} was written by run {results['run_id']}, but {run.output_dir / 'results.json'} belongs to run "
        f"{'f' * 32}: it was copied in from another run's folder")
    assert "Move it out of this folder (a resume then trains its stage again)" in str(caught.value)


def test_tensors_that_do_not_fit_are_an_artefact_error(finished_run):
    run, results = finished_run
    artefact = load_task_artefact(task_artefact_dir(run.output_dir, "colors"), backbone_sha256=results["backbone_sha256"])
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8), selection=SelectionConfig(projection_dim=16))
    with pytest.raises(ArtefactError, match=r"artefacts/colors does not fit the model: saved tensors do not fit task "
                                            r"'colors' as configured: missing \["):
        install_task(module, TaskArtefact(artefact.directory, artefact.manifest, tensors={}))


"""The model as a run's last finished stage left it, for strategies that share weights, so such a run can resume.

A strategy that isolates tasks leaves a verified artefact per task (:mod:`seqadapt.artefacts`). One that shares
weights (fine-tuning, EWC, LwF, replay, A-GEM, O-LoRA's summed LoRAs) changes earlier tasks every stage, so a
resume needs the whole model after the last finished stage, plus what its continual method keeps (a replay
memory, a Fisher). After every stage ``<run>/checkpoint/`` gets

* ``stage-<n>.safetensors``: every tensor of the module the stage may have changed (a frozen backbone is left
  out: it is the named backbone, whose SHA-256 the manifest records);
* ``manifest.json``: the stage, the tasks learned, the run's id, the backbone's SHA-256, the SHA-256 and size of
  the weights and of each file the method wrote, and every stage's record and score-matrix row so far;

the weights first and the manifest last (atomically), so a kill leaves the previous stage's checkpoint whole;
older weights are removed afterwards. Reading treats the folder as received: JSON parsed with capped size,
the weights' size and SHA-256 checked before they are parsed (safetensors, never a pickle), every tensor's name,
shape and dtype the module's own.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import torch
from safetensors.torch import save as safetensors_bytes

from seqadapt.artefacts import ArtefactError, confined, load_tensors
from seqadapt.io import atomic_write, atomic_write_json
from seqadapt.selection.statistics import packed_statistics
from seqadapt.model.checkpoint import without_frozen_backbone
from seqadapt.record import StageRecord
from seqadapt.untrusted_json import UntrustedJsonError, check_type, read_json_object

if TYPE_CHECKING:
    from seqadapt.model import SeqAdaptModule

CHECKPOINT_DIR = "checkpoint"
MANIFEST = "manifest.json"
FORMAT = 1
MAX_MANIFEST_BYTES = 64 * 2**20
START_AGAIN = ("A run that shares weights can only continue from its last checkpoint: start it again in a new "
               "folder (or delete this one)")


class FileEntry(TypedDict):
    file: str
    sha256: str
    bytes: int


class CheckpointManifest(TypedDict):
    format: Literal[1]
    stage: int
    tasks: list[str]
    strategy: str
    run_id: str | None
    backbone_sha256: str
    environment: dict[str, Any]  # device, precision, threads: the recorded outputs depend on them
    weights: FileEntry
    method_files: list[FileEntry]  # under <run>/continual/
    stages: list[dict[str, Any]]
    score_matrix: list[list[float | None]]


@dataclass(frozen=True)
class StageCheckpoint:
    """A read, checked checkpoint: its manifest, its stage records and its weights."""

    directory: Path
    manifest: CheckpointManifest
    stages: list[StageRecord]
    tensors: dict[str, torch.Tensor]

    @property
    def stage(self) -> int:
        return self.manifest["stage"]


def file_entry(path: Path, data: bytes | None = None) -> FileEntry:
    """``path``'s name, SHA-256 and size; ``data``: its bytes where the caller just wrote them."""
    data = Path(path).read_bytes() if data is None else data
    return {"file": Path(path).name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


def changeable_state(module: SeqAdaptModule) -> dict[str, torch.Tensor]:
    """The module's tensors a stage may change (views, not copies): everything, less the backbone's own where
    it stays frozen."""
    state = module.state_dict()
    return state if module.strategy.train_backbone else without_frozen_backbone(state, module.backbone)


def save_checkpoint(
    run_dir: Path, module: SeqAdaptModule, stages: list[StageRecord], score_matrix: list[list[float | None]], *,
    run_id: str | None, backbone_sha256: str, environment: dict[str, Any], method_files: list[Path],
) -> Path:
    """Write the checkpoint of the stage ``stages`` ends with (see the module docstring); returns its folder."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    directory.mkdir(exist_ok=True)
    stage = len(stages)
    weights = directory / f"stage-{stage}.safetensors"
    # copies on the CPU: safetensors refuses tensors that share memory (tied embeddings)
    data = safetensors_bytes({key: value.detach().to("cpu").contiguous().clone()
                              for key, value in changeable_state(module).items()})
    atomic_write(weights, data)
    manifest: CheckpointManifest = {
        "format": FORMAT, "stage": stage, "tasks": list(module.tasks), "strategy": module.strategy.name,
        "run_id": run_id, "backbone_sha256": backbone_sha256, "environment": environment,
        "weights": file_entry(weights, data),
        "method_files": [file_entry(path) for path in method_files],
        "stages": [record.to_dict() for record in stages], "score_matrix": score_matrix,
    }
    atomic_write_json(directory / MANIFEST, manifest)
    for old in directory.glob("stage-*.safetensors"):
        if old != weights:
            old.unlink(missing_ok=True)
    return directory


def has_checkpoint(run_dir: Path) -> bool:
    return (Path(run_dir) / CHECKPOINT_DIR / MANIFEST).is_file()


def load_checkpoint(run_dir: Path, method_dir: Path) -> StageCheckpoint:
    """Read and check ``<run_dir>/checkpoint`` and the method's files in ``method_dir`` (their SHA-256)."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    path = directory / MANIFEST
    try:
        manifest = read_json_object(path, MAX_MANIFEST_BYTES)
        check_type(manifest, CheckpointManifest, str(path))
        stages = [StageRecord.from_dict(s, str(path), f"stages[{i}]") for i, s in enumerate(manifest["stages"])]
    except (UntrustedJsonError, OSError) as err:
        raise ArtefactError(f"cannot read the checkpoint {path}: {err}. {START_AGAIN}") from None
    if manifest["stage"] != len(stages) or len(manifest["score_matrix"]) != len(stages) or not stages:
        raise ArtefactError(f"{path} is inconsistent: stage {manifest['stage']} with {len(stages)} stage "
                            f"record(s) and {len(manifest['score_matrix'])} score-matrix row(s). {START_AGAIN}")
    for entry in manifest["method_files"]:
        check_file(method_dir, entry, path)
    weights = recorded_file(directory, manifest["weights"], path)  # load_tensors checks its size and SHA-256
    tensors = load_tensors(weights, manifest["weights"]["sha256"], manifest["weights"]["bytes"])
    return StageCheckpoint(directory, manifest, stages, tensors)  # type: ignore[arg-type]


def recorded_file(directory: Path, entry: FileEntry, manifest: Path) -> Path:
    """``entry``'s file: a plain name inside ``directory`` (:func:`~seqadapt.artefacts.confined`), a regular
    file, not a link."""
    path = confined(directory, entry["file"], manifest, "file")
    if path.is_symlink() or not path.is_file():
        raise ArtefactError(f"{path}, recorded in {manifest}, is missing or not a regular file. {START_AGAIN}")
    return path


def check_file(directory: Path, entry: FileEntry, manifest: Path) -> Path:
    """:func:`recorded_file`, of the size and SHA-256 recorded."""
    path = recorded_file(directory, entry, manifest)
    if path.stat().st_size != entry["bytes"]:
        raise ArtefactError(f"{path} holds {path.stat().st_size} bytes; {manifest} records {entry['bytes']}: it "
                            f"changed since the stage ended. {START_AGAIN}")
    if hashlib.sha256(path.read_bytes()).hexdigest() != entry["sha256"]:
        raise ArtefactError(f"{path} is not the file {manifest} records (its SHA-256 differs): it changed since "
                            f"the stage ended. {START_AGAIN}")
    return path


def install_checkpoint(module: SeqAdaptModule, checkpoint: StageCheckpoint) -> None:
    """Copy the checkpoint's tensors into ``module`` (its tasks already added): every name, shape and dtype
    must be the module's, and every tensor the module may have changed must be there."""
    expected = changeable_state(module)
    try:  # one written before the selection sums were stored packed holds them whole
        saved = packed_statistics(checkpoint.tensors)
    except ValueError as err:
        raise ArtefactError(f"the checkpoint in {checkpoint.directory} does not fit the model: {err}") from None
    missing, unknown = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    wrong = [f"{key} {tuple(saved[key].shape)} {saved[key].dtype}, the model has {tuple(value.shape)} {value.dtype}"
             for key, value in expected.items() if key in saved and (saved[key].shape != value.shape
                                                                     or saved[key].dtype != value.dtype)]
    if missing or unknown or wrong:
        shown = [f"missing {missing[:3]}"] * bool(missing) + [f"not in the model {unknown[:3]}"] * bool(unknown)
        raise ArtefactError(f"the checkpoint in {checkpoint.directory} does not fit the model: "
                            f"{'; '.join(shown + wrong[:3])}. Resume with the run's own config (its run_config.yaml)")
    module.load_state_dict(saved, strict=False)

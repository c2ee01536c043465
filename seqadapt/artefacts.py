"""Per-task artefacts: a task's own tensors as safetensors plus a JSON manifest.

Layout inside a run directory::

    run_config.yaml                        the resolved config the run was started with
    artefacts/<task>/adapter.safetensors   adapters, head (and LayerNorm copies), class prototypes: that task only
    artefacts/<task>/manifest.json         what is needed to trust and rebuild it

Both files are written with :func:`seqadapt.io.atomic_write`, and the
manifest comes last and records the weights file's SHA-256: a crash leaves
either a complete, verifiable artefact or none (weights without a manifest
are never loaded). Nothing here unpickles: weights are read only from
``.safetensors`` files, and pickle-based files are refused by name.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from seqadapt import __version__
from seqadapt.data.tasks import TaskSpec
from seqadapt.io import atomic_write
from seqadapt.model import SeqAdaptModule, parameter_budget
from seqadapt.record import TaskEvaluation

FORMAT_VERSION = 2  # 2: a task's tensors include its class prototypes
RUN_CONFIG = "run_config.yaml"
ARTEFACTS = "artefacts"
WEIGHTS_FILE = "adapter.safetensors"
MANIFEST_FILE = "manifest.json"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class ArtefactError(RuntimeError):
    """An artefact is missing, damaged, unsafe, or does not fit the model it is loaded into."""


@dataclass(frozen=True)
class TaskArtefact:
    """One task's saved tensors with the manifest they were verified against."""

    directory: Path
    manifest: dict[str, Any]
    tensors: dict[str, torch.Tensor]

    @property
    def spec(self) -> TaskSpec:
        return TaskSpec.from_dict(self.manifest["spec"])

    @property
    def learned(self) -> TaskEvaluation:
        """The task's evaluation right after its stage: the guard's reference on resume."""
        return TaskEvaluation(**self.manifest["learned"])


def task_artefact_dir(run_dir: Path, task: str) -> Path:
    return Path(run_dir) / ARTEFACTS / task


def save_task_artefact(
    module: SeqAdaptModule,
    learned: TaskEvaluation,
    run_dir: Path,
    *,
    stage: int,
    backbone_name: str,
    backbone_sha256: str,
    settings: dict[str, Any],
) -> Path:
    """Save ``learned.task``'s own tensors and manifest; returns the artefact directory.

    ``settings`` records how the task was evaluated (tokenisation, eval batch
    size), so a later load can reproduce the reference logits exactly.
    """
    task = learned.task
    directory = task_artefact_dir(run_dir, task)
    directory.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in module.tensors.of(task).items()}
    weights = save_safetensors(tensors, metadata={"seqadapt_task": task})  # one key: byte-identical files
    atomic_write(directory / WEIGHTS_FILE, weights)
    manifest = {
        "format_version": FORMAT_VERSION,
        "seqadapt_version": __version__,
        "task": task,
        "stage": stage,
        "spec": module.specs[task].to_dict(),
        "labels": list(module.specs[task].labels),
        "strategy": module.strategy.name,
        "adapter": asdict(module.adapters.config),
        "pooling": module.pooling,
        "backbone": {"name": backbone_name, "sha256": backbone_sha256},
        "weights": {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest(), "bytes": len(weights)},
        "learned": asdict(learned),
        "settings": settings,
        "budget": asdict(parameter_budget(module, task)),
    }
    atomic_write(directory / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    return directory


def has_artefact(run_dir: Path, task: str) -> bool:
    """Whether a complete artefact (manifest included) exists for ``task``."""
    return (task_artefact_dir(run_dir, task) / MANIFEST_FILE).is_file()


def load_tensors(path: Path, expected_sha256: str | None = None) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file, refusing pickle formats and files that changed since they were written."""
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES or path.suffix != ".safetensors":
        raise ArtefactError(
            f"refusing to load {path}: seqadapt reads weights only from .safetensors files. '{path.suffix}' files "
            "may be pickles, which can run arbitrary code when loaded. Re-save the tensors with "
            "safetensors.torch.save_file where you trust the file."
        )
    if not path.is_file():
        raise ArtefactError(f"artefact weights {path} are missing; the stage that wrote them did not finish")
    data = path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise ArtefactError(
            f"{path} is corrupt or truncated: its SHA-256 {hashlib.sha256(data).hexdigest()} is not the "
            f"{expected_sha256} recorded in its manifest ({len(data)} bytes on disk). Re-run that stage "
            "(resume skips only stages whose artefacts verify)."
        )
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise ArtefactError(f"{path} is not a readable safetensors file ({err}); it is corrupt or truncated") from err


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of an artefact directory, checked for format and completeness."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        pickles = sorted(p.name for p in directory.glob("*") if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f" It holds pickle-based file(s) {pickles}, which seqadapt refuses to load (they can run code)."
            if pickles else " The stage that writes it did not finish, or this is not a seqadapt artefact."
        )
        raise ArtefactError(f"no {MANIFEST_FILE} in {directory}.{hint}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ArtefactError(f"{path} is not valid JSON ({err}); the artefact is damaged") from err
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(
            f"{path} has format_version {manifest.get('format_version')!r}; this seqadapt ({__version__}) "
            f"reads version {FORMAT_VERSION}. Run the stream again with this seqadapt to write artefacts it can load"
        )
    return manifest


def load_task_artefact(directory: Path, *, backbone_sha256: str) -> TaskArtefact:
    """Load and verify one artefact against the backbone it is about to run on.

    The backbone check comes first: an adapter trained on other weights would
    load without complaint and silently predict garbage.
    """
    manifest = read_manifest(directory)
    saved = manifest["backbone"]
    if saved["sha256"] != backbone_sha256:
        raise ArtefactError(
            f"artefact for task '{manifest['task']}' in {directory} was trained on backbone '{saved['name']}' with "
            f"weights sha256 {saved['sha256']}, but the loaded backbone has sha256 {backbone_sha256}. "
            "Load it with the backbone it was saved with (see backbone in its manifest.json)."
        )
    tensors = load_tensors(Path(directory) / manifest["weights"]["file"], manifest["weights"]["sha256"])
    return TaskArtefact(directory=Path(directory), manifest=manifest, tensors=tensors)


def install_task(module: SeqAdaptModule, artefact: TaskArtefact) -> None:
    """Add the artefact's task to ``module`` and copy its saved tensors in."""
    if artefact.manifest["adapter"] != asdict(module.adapters.config):
        raise ArtefactError(
            f"artefact for task '{artefact.manifest['task']}' was saved with adapter config "
            f"{artefact.manifest['adapter']}, the model has {asdict(module.adapters.config)}"
        )
    module.add_task(artefact.spec)
    module.tensors.load(artefact.spec.name, artefact.tensors)

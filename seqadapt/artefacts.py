"""Per-task artefacts: a task's own tensors as safetensors plus a sealed JSON manifest.

Layout inside a run directory::

    run_config.yaml                        the resolved config the run was started with
    artefacts/<task>/adapter.safetensors   adapters, head (and LayerNorm copies), selection statistics: that task only
    artefacts/<task>/manifest.sha256       the manifest's seal: its SHA-256, in ``sha256sum`` format
    artefacts/<task>/manifest.json         what is needed to trust and rebuild it

The files are written with :func:`seqadapt.io.atomic_write`, weights first,
then the seal, then the manifest, which records the weights file's SHA-256:
a crash leaves either a complete, verifiable artefact or none (no manifest:
never loaded; a manifest and a seal from two different writes: refused as
damaged). Nothing here unpickles: weights are read only from
``.safetensors`` files, and pickle-based files are refused by name.

Why a seal file: the manifest says how to rebuild and serve the task (labels,
pooling, adapter shape) and what it scored when learned, and the weights'
SHA-256 is in it, so editing the manifest (a ``sed`` on ``pooling``, a
reordered ``labels`` list) would otherwise change predictions with nothing to
notice. The seal lives in its own file, so an edit of ``manifest.json`` alone
cannot pass :func:`read_manifest`. It guards against edits and damage, not
against someone set on forging a run: anyone who can write the folder could as
well retrain it, and a keyed HMAC would keep its key in the same folder, make
two identical runs' artefacts differ byte for byte and stop artefacts being
checkable with ``sha256sum -c``. Artefacts of this format written before
manifests were sealed are refused with the way out: seal them yourself if you
trust them, or resume the run, which retrains them.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from seqadapt import __version__
from seqadapt.adapters import adapter_config
from seqadapt.data.tasks import TaskSpec
from seqadapt.io import atomic_write, fsync_dir
from seqadapt.model import SeqAdaptModule, parameter_budget
from seqadapt.record import TaskEvaluation

FORMAT_VERSION = 3  # 2: a task's tensors include its class prototypes; 3: its selection statistics
RUN_CONFIG = "run_config.yaml"
ARTEFACTS = "artefacts"
WEIGHTS_FILE = "adapter.safetensors"
MANIFEST_FILE = "manifest.json"
SEAL_FILE = "manifest.sha256"
SET_ASIDE_SUFFIX = ".corrupt"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


class ArtefactError(RuntimeError):
    """An artefact is missing, damaged, unsafe, or does not fit the model it is loaded into."""


class CorruptArtefactError(ArtefactError):
    """An artefact's own files are damaged or were edited (weights, manifest or seal do not verify).

    Unlike a mismatch with the model it is loaded into, this is repaired by
    training its stage again, which is what resume does; ``problem`` is the
    message without that advice.
    """

    def __init__(self, problem: str, directory: Path, alternative: str = "") -> None:
        self.problem = problem
        super().__init__(
            f"{problem} Resume the run (resume=<run dir>): it moves {Path(directory).name} aside as "
            f"{Path(directory).name}{SET_ASIDE_SUFFIX} and trains that stage again{alternative}."
        )


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
        return TaskEvaluation.from_dict(self.manifest["learned"])


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
    """Save ``learned.task``'s own tensors, seal and manifest; returns the artefact directory.

    ``settings`` records how the task was evaluated (tokenisation, eval batch
    size), so a later load can reproduce the reference logits exactly.
    """
    task = learned.task
    directory = _make_durable_dir(task_artefact_dir(run_dir, task))
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
        "selection": module.selection.record(),
        "backbone": {"name": backbone_name, "sha256": backbone_sha256},
        "weights": {"file": WEIGHTS_FILE, "sha256": hashlib.sha256(weights).hexdigest(), "bytes": len(weights)},
        "learned": asdict(learned),
        "settings": settings,
        "budget": asdict(parameter_budget(module, task)),
    }
    data = json.dumps(manifest, indent=2).encode()
    atomic_write(directory / SEAL_FILE, seal_line(data))  # before the manifest: the manifest's rename commits
    atomic_write(directory / MANIFEST_FILE, data)
    return directory


def _make_durable_dir(directory: Path) -> Path:
    """Create ``directory`` (and ``artefacts/``) if needed and fsync each new folder's parent, so the new
    entries survive a power cut along with the files renamed into them."""
    created = [folder for folder in (directory.parent, directory) if not folder.is_dir()]
    directory.mkdir(parents=True, exist_ok=True)
    for folder in created:
        fsync_dir(folder.parent)
    return directory


def seal_line(manifest: bytes) -> str:
    """The seal of a manifest's exact bytes, in ``sha256sum`` format (``sha256sum -c manifest.sha256`` checks it)."""
    return f"{hashlib.sha256(manifest).hexdigest()}  {MANIFEST_FILE}\n"


def has_artefact(run_dir: Path, task: str) -> bool:
    """Whether a complete artefact (manifest included) exists for ``task``."""
    return (task_artefact_dir(run_dir, task) / MANIFEST_FILE).is_file()


def artefact_dirs(run_dir: Path) -> list[Path]:
    """The run's task artefact folders that hold a manifest, without those set aside as damaged."""
    return sorted(
        path.parent for path in (Path(run_dir) / ARTEFACTS).glob(f"*/{MANIFEST_FILE}")
        if not re.search(rf"{re.escape(SET_ASIDE_SUFFIX)}(\.\d+)?$", path.parent.name)
    )


def set_aside(directory: Path) -> Path:
    """Move a damaged artefact folder (or file) out of the way as ``<name>.corrupt`` (``.corrupt.2``, … if
    taken), never deleting it, so its stage can be trained again; returns where it went."""
    directory = Path(directory)
    target, number = directory.with_name(directory.name + SET_ASIDE_SUFFIX), 1
    while target.exists():
        number += 1
        target = directory.with_name(f"{directory.name}{SET_ASIDE_SUFFIX}.{number}")
    directory.rename(target)
    fsync_dir(directory.parent)
    return target


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
        raise CorruptArtefactError(f"artefact weights {path} are missing although its manifest exists.", path.parent)
    data = path.read_bytes()
    if expected_sha256 is not None and hashlib.sha256(data).hexdigest() != expected_sha256:
        raise CorruptArtefactError(
            f"{path} is corrupt or truncated: its SHA-256 {hashlib.sha256(data).hexdigest()} is not the "
            f"{expected_sha256} recorded in its manifest ({len(data)} bytes on disk).", path.parent,
        )
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, RuntimeError) as err:
        raise CorruptArtefactError(
            f"{path} is not a readable safetensors file ({err}); it is corrupt or truncated.", path.parent
        ) from err


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of an artefact directory, checked for format, completeness and against its seal."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        pickles = sorted(p.name for p in directory.glob("*") if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f" It holds pickle-based file(s) {pickles}, which seqadapt refuses to load (they can run code)."
            if pickles else " The stage that writes it did not finish, or this is not a seqadapt artefact."
        )
        raise ArtefactError(f"no {MANIFEST_FILE} in {directory}.{hint}")
    data = path.read_bytes()  # parsed and sealed from the same bytes
    try:
        manifest = json.loads(data.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CorruptArtefactError(f"{path} is not valid JSON ({err}); the artefact is damaged.", directory) from err
    sealed = (directory / SEAL_FILE).is_file()
    if sealed or manifest.get("format_version") == FORMAT_VERSION:
        check_seal(directory, data)
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ArtefactError(
            f"{path} has format_version {manifest.get('format_version')!r}; this seqadapt ({__version__}) "
            f"reads version {FORMAT_VERSION}. Run the stream again with this seqadapt to write artefacts it can load"
        )
    return manifest


def check_seal(directory: Path, manifest: bytes) -> None:
    """Refuse a manifest whose bytes are not the ones its seal file records (see the module docstring)."""
    path, seal = Path(directory) / MANIFEST_FILE, Path(directory) / SEAL_FILE
    actual = hashlib.sha256(manifest).hexdigest()
    if not seal.is_file():
        raise CorruptArtefactError(
            f"{path} has no seal ({seal} is missing): it was written by a seqadapt from before manifests were "
            "sealed, or its seal was deleted, so an edit to it could not be noticed.", directory,
            f"; or, if you trust it as it is, seal it: cd {directory} && sha256sum {MANIFEST_FILE} > {SEAL_FILE}",
        )
    try:
        recorded = seal.read_text(encoding="ascii").split()[0]
    except (UnicodeDecodeError, IndexError):
        recorded = "<unreadable>"
    if recorded != actual:
        raise CorruptArtefactError(
            f"{path} does not match its seal {seal}: its SHA-256 is {actual}, the seal records {recorded}. The "
            "manifest was edited or damaged after its stage wrote it, so nothing in it (labels, pooling, adapter "
            "config, learned scores) can be trusted. Undo the edit if it was yours.", directory,
        )


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
    if adapter_config(artefact.manifest["adapter"]) != module.adapters.config:
        raise ArtefactError(
            f"artefact for task '{artefact.manifest['task']}' was saved with adapter config "
            f"{artefact.manifest['adapter']}, the model has {asdict(module.adapters.config)}"
        )
    if artefact.manifest["selection"] != module.selection.record():
        raise ArtefactError(
            f"artefact for task '{artefact.manifest['task']}' stores selection statistics made with "
            f"{artefact.manifest['selection']}, the model has {module.selection.record()}: set selection.layers, "
            "selection.projection_dim and selection.projection_seed as the run that saved it did (its run_config.yaml); "
            "a projection of the same seed that hashes differently was drawn by another random generator"
        )
    module.add_task(artefact.spec)
    module.tensors.load(artefact.spec.name, artefact.tensors)

"""Per-task artefacts: a task's own tensors as safetensors plus a sealed JSON manifest.

Layout inside a run directory::

    run_config.yaml                        the resolved config the run was started with
    artefacts/<task>/adapter.safetensors   adapters, head (and LayerNorm copies), selection statistics: that task only
    artefacts/<task>/reference_outputs.safetensors  its exact test outputs when learned (see below)
    artefacts/<task>/manifest.sha256       the manifest's seal: its SHA-256, in ``sha256sum`` format
    artefacts/<task>/manifest.json         what is needed to trust and rebuild it

The files are written with :func:`seqadapt.io.atomic_write`, weights and
reference outputs first, then the seal, then the manifest, which records both
files' SHA-256:
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

A manifest is read as a received file (:mod:`seqadapt.untrusted_json`): at
most :data:`MAX_MANIFEST_BYTES`, a JSON object of the :class:`Manifest`
types, naming its own folder's task, its weights a file inside that folder
(no absolute path, no ``..``, no link leading out). Each manifest records the
run that wrote it (``written_by_run``, the run's ``run_id``), so artefacts
copied in from another run are refused instead of served or resumed beside
the run's own (:func:`check_written_by`); manifests from before runs had ids
lack the key and are not compared.

The reference outputs are the task's test outputs exactly as its learned
evaluation hashed them (float32; classification: test rows x labels, 4 bytes
each), with the fingerprint of the test rows they were computed on and the
environment (device, torch, threads) they were computed in. ``seqadapt-verify``
(:mod:`seqadapt.preservation`) compares with them where the exact hash cannot be
reproduced. Artefacts written before they were stored lack the ``reference``
key (the format is the same otherwise) and are checked by score alone.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, NotRequired, TypedDict

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
from seqadapt.selection.statistics import packed_statistics
from seqadapt.untrusted_json import UntrustedJsonError, check_type, parse_json_object, read_bounded

FORMAT_VERSION = 4  # 2: a task's tensors include its class prototypes; 3: its selection statistics; 4: their
READABLE_FORMATS = (3, 4)  # symmetric sums stored packed (format 3's whole ones are packed when installed)
RUN_CONFIG = "run_config.yaml"
ARTEFACTS = "artefacts"
WEIGHTS_FILE = "adapter.safetensors"
REFERENCE_FILE = "reference_outputs.safetensors"
REFERENCE_KEY = "outputs"
MANIFEST_FILE = "manifest.json"
SEAL_FILE = "manifest.sha256"
SET_ASIDE_SUFFIX = ".corrupt"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")
MAX_MANIFEST_BYTES = 64 * 2**20  # a 100 000-label task's manifest is a few MB; a larger one is refused unread
MAX_SEAL_BYTES = 4096  # one sha256sum line


class BackboneEntry(TypedDict):
    name: str
    sha256: str


class WeightsEntry(TypedDict):
    file: str
    sha256: str
    bytes: int


class ReferenceEntry(TypedDict):
    file: str
    sha256: str
    bytes: int
    test_rows_sha256: str
    environment: dict[str, Any]


class Manifest(TypedDict):
    """What a manifest must hold, as the code reads it: checked value by value before anything is used."""

    format_version: int
    seqadapt_version: str
    task: str
    stage: int
    spec: dict[str, Any]
    labels: list[str]
    strategy: str
    adapter: dict[str, Any]
    pooling: str
    selection: dict[str, Any]
    backbone: BackboneEntry
    weights: WeightsEntry
    learned: dict[str, Any]
    settings: dict[str, Any]
    budget: dict[str, Any]
    written_by_run: NotRequired[str]  # the run_id of the run that wrote it; absent before runs had one
    version: NotRequired[int]  # the task's version (seqadapt-task retrain, seqadapt.versions); absent: 1
    reference: NotRequired[ReferenceEntry]  # absent before artefacts stored their reference outputs
    imported_from: NotRequired[dict[str, Any]]  # the folder an imported task came from (tasks.imports); absent: trained


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
class Reference:
    """What an artefact keeps of its task's learned evaluation for later checks where exact outputs cannot be
    reproduced: the test ``outputs`` the evaluation's hash covers, the test rows' fingerprint
    (:func:`seqadapt.evaluation.rows_sha256`) and the ``environment`` they were computed in
    (:func:`seqadapt.environment.current_environment`)."""

    outputs: torch.Tensor
    test_rows_sha256: str
    environment: dict[str, Any]


@dataclass(frozen=True)
class TaskArtefact:
    """One task's saved tensors with the manifest they were verified against."""

    directory: Path
    manifest: Manifest
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
    run_id: str,
    reference: Reference,
    imported: dict[str, Any] | None = None,
) -> Path:
    """Save ``learned.task``'s own tensors, reference outputs, seal and manifest; returns the artefact directory.

    ``settings`` records how the task was evaluated (tokenisation, eval batch
    size), so a later load can reproduce the reference logits exactly;
    ``run_id`` the run that wrote it; ``reference`` what ``learned`` measured; ``imported`` the folder its
    adapter and head were imported from, for a task that was not trained (``tasks.imports``).
    """
    task = learned.task
    directory = _make_durable_dir(task_artefact_dir(run_dir, task))
    weights = _write_tensors(directory / WEIGHTS_FILE, module.tensors.of(task), task)
    outputs = _write_tensors(directory / REFERENCE_FILE, {REFERENCE_KEY: reference.outputs}, task)
    manifest: Manifest = {
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
        "weights": weights,
        "learned": asdict(learned),
        "settings": settings,
        "budget": asdict(parameter_budget(module, task)),
        "written_by_run": run_id,
        "reference": {**outputs, "test_rows_sha256": reference.test_rows_sha256, "environment": reference.environment},
        **({"imported_from": imported} if imported else {}),
    }
    data = json.dumps(manifest, indent=2).encode()
    atomic_write(directory / SEAL_FILE, seal_line(data))  # before the manifest: the manifest's rename commits
    atomic_write(directory / MANIFEST_FILE, data)
    return directory


def _write_tensors(path: Path, tensors: dict[str, torch.Tensor], task: str) -> WeightsEntry:
    """``tensors`` as a safetensors file at ``path`` (atomically); the manifest entry that verifies it."""
    data = save_safetensors({key: value.detach().cpu().contiguous() for key, value in tensors.items()},
                            metadata={"seqadapt_task": task})  # one metadata key: byte-identical files
    atomic_write(path, data)
    return {"file": path.name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}


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


def load_tensors(path: Path, expected_sha256: str | None = None, expected_bytes: int | None = None) -> dict[str, torch.Tensor]:
    """Read a ``.safetensors`` file, refusing pickle formats and files that changed since they were written (a
    file of another size than ``expected_bytes`` unread)."""
    path = Path(path)
    if path.suffix in PICKLE_SUFFIXES or path.suffix != ".safetensors":
        raise ArtefactError(
            f"refusing to load {path}: seqadapt reads weights only from .safetensors files. '{path.suffix}' files "
            "may be pickles, which can run arbitrary code when loaded. Re-save the tensors with "
            "safetensors.torch.save_file where you trust the file."
        )
    if not path.is_file():
        raise CorruptArtefactError(f"artefact weights {path} are missing although its manifest exists.", path.parent)
    if expected_bytes is not None and path.stat().st_size != expected_bytes:
        raise CorruptArtefactError(f"{path} is corrupt or truncated: it holds {path.stat().st_size} bytes, its "
                                   f"manifest records {expected_bytes}.", path.parent)
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


def read_manifest(directory: Path) -> Manifest:
    """The manifest of an artefact directory, checked for format, completeness, types, its folder's task and
    against its seal (see the module docstring)."""
    directory = Path(directory)
    path = directory / MANIFEST_FILE
    if not path.is_file():
        pickles = sorted(p.name for p in directory.glob("*") if p.suffix in PICKLE_SUFFIXES)
        hint = (
            f" It holds pickle-based file(s) {pickles}, which seqadapt refuses to load (they can run code)."
            if pickles else " The stage that writes it did not finish, or this is not a seqadapt artefact."
        )
        raise ArtefactError(f"no {MANIFEST_FILE} in {directory}.{hint}")
    confined(directory, MANIFEST_FILE, path)
    try:
        data = read_bounded(path, MAX_MANIFEST_BYTES)  # parsed and sealed from the same bytes
        manifest = parse_json_object(data, str(path))
    except UntrustedJsonError as err:
        raise CorruptArtefactError(f"{err}; the artefact is damaged.", directory) from err
    if (directory / SEAL_FILE).is_file() or manifest.get("format_version") in READABLE_FORMATS:
        check_seal(directory, data)
    check_format_version(path, manifest)
    check_contents(path, manifest)
    if manifest["task"] != directory.name or manifest["spec"].get("name") != manifest["task"]:
        raise ArtefactError(
            f"{path} is the artefact of task {manifest['task']!r} (its spec names {manifest['spec'].get('name')!r}), "
            f"but its folder is named {directory.name!r}: artefacts are found by their folder's name, so it would "
            f"be served or resumed as the wrong task. Rename the folder to {manifest['task']!r} if it was moved by "
            "mistake, or move it out of the run folder."
        )
    confined(directory, manifest["weights"]["file"], path, "weights.file")
    if "reference" in manifest:
        confined(directory, manifest["reference"]["file"], path, "reference.file")
    return manifest  # type: ignore[return-value]  # checked against Manifest just above


def check_contents(path: Path, manifest: dict[str, Any]) -> None:
    """Refuse a manifest whose values are not of the :class:`Manifest` types, or whose learned evaluation,
    task definition or adapter settings cannot be read: everything later read from it is then safe to use."""
    try:
        check_type(manifest, Manifest, str(path))
        TaskEvaluation.from_dict(manifest["learned"], str(path), "learned")
        TaskSpec.from_dict(manifest["spec"])
        adapter_config(manifest["adapter"])
    except (TypeError, ValueError) as err:  # UntrustedJsonError, TaskDefinitionError, adapter settings
        problem = f"{err.key} is {err.problem}" if isinstance(err, UntrustedJsonError) and err.key else str(err)
        raise CorruptArtefactError(f"{path} is not a manifest seqadapt wrote: {problem}.", path.parent) from None


def check_format_version(path: Path, manifest: dict[str, Any]) -> None:
    """Refuse a manifest of another format, saying which seqadapt reads it."""
    version, written = manifest.get("format_version"), manifest.get("seqadapt_version")
    if version in READABLE_FORMATS:
        return
    if isinstance(version, int) and version > FORMAT_VERSION:
        fix = "Upgrade seqadapt to load it (pip install -U seqadapt)."
    else:
        by = f"seqadapt {written}" if isinstance(written, str) and len(written) <= 40 else "the seqadapt that wrote it"
        install = f" (pip install 'seqadapt=={written}')" if by != "the seqadapt that wrote it" else ""
        fix = (f"Serve it with {by}{install}, or run the stream again with this seqadapt, in a new folder, to write "
               "artefacts it can load.")
    raise ArtefactError(
        f"{path} has format_version {version!r}; this seqadapt ({__version__}) reads versions {' and '.join(map(str, READABLE_FORMATS))}. {fix}"
    )


def confined(directory: Path, name: str, manifest: Path, key: str = "") -> Path:
    """``directory / name`` where ``name`` is a plain file name and the file, links followed, is inside
    ``directory``; otherwise an :class:`ArtefactError` naming the manifest's ``key`` (a received manifest could
    otherwise make seqadapt read any file on the machine)."""
    path = Path(directory) / name
    where = f"{manifest}: {key} is {name!r}" if key else f"{path}"
    if not name or name in (".", "..") or Path(name).name != name or "\\" in name:
        raise ArtefactError(f"{where}, which is not a file name: an artefact's files must lie directly in its "
                            f"folder {directory}. The manifest is not one seqadapt wrote; move the folder out.")
    if path.resolve().parent != Path(directory).resolve():
        raise ArtefactError(f"{where}, a link to {path.resolve()}, outside its artefact folder {directory}: an "
                            "artefact's files must lie in its folder. Replace the link by the file itself.")
    return path


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
    confined(directory, SEAL_FILE, seal)
    with open(seal, "rb") as handle:
        line = handle.read(MAX_SEAL_BYTES + 1)
    try:
        recorded = line.decode("ascii").split()[0] if len(line) <= MAX_SEAL_BYTES else "<unreadable>"
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
    weights = manifest["weights"]
    tensors = load_tensors(Path(directory) / weights["file"], weights["sha256"], weights["bytes"])
    return TaskArtefact(directory=Path(directory), manifest=manifest, tensors=tensors)


def load_reference(directory: Path, manifest: Manifest) -> torch.Tensor | None:
    """The reference outputs of a verified artefact (:func:`read_manifest`'s ``manifest`` of ``directory``),
    checked against the SHA-256 its sealed manifest records; ``None`` for an artefact written before they were
    stored."""
    entry = manifest.get("reference")
    if entry is None:
        return None
    tensors = load_tensors(Path(directory) / entry["file"], entry["sha256"], entry["bytes"])
    if set(tensors) != {REFERENCE_KEY}:
        raise CorruptArtefactError(f"{Path(directory) / entry['file']} holds {sorted(tensors)[:5]}, not the one "
                                   f"tensor {REFERENCE_KEY!r} seqadapt writes there.", directory)
    return tensors[REFERENCE_KEY]


def check_written_by(directory: Path, manifest: Manifest, run_id: str | None, source: Path) -> None:
    """Refuse an artefact that another run wrote (see the module docstring) than ``run_id``, the run that
    ``source`` (results.json, or the run's first artefact) belongs to. A run started into a folder that holds
    artefacts is refused, so this only happens when artefacts are copied in by hand, mixing two runs' tasks."""
    written = manifest.get("written_by_run")
    if run_id is None or written is None or written == run_id:
        return
    raise ArtefactError(
        f"{directory} was written by run {written}, but {source} belongs to run {run_id}: it was copied "
        "in from another run's folder, and two runs' tasks do not belong in one run. Move it out of this folder (a "
        "resume then trains its stage again), or use it in the folder of the run that wrote it."
    )


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
    module.add_task(artefact.spec, initialise=False)  # its tensors are copied in next
    try:
        tensors = artefact.tensors if artefact.manifest["format_version"] >= 4 else packed_statistics(artefact.tensors)
        module.tensors.load(artefact.spec.name, tensors)
    except ValueError as err:  # the task is added but holds undrawn tensors: the caller must drop this module
        raise ArtefactError(f"artefact {artefact.directory} does not fit the model: {err}") from None

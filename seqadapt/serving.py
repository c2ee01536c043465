"""Serve a finished stream: ``load_stream(run_dir)`` rebuilds it, ``LoadedStream.predict`` answers inputs.

A run directory holds ``run_config.yaml`` (how to rebuild the backbone and
adapters) and one verified artefact per learned task. Loading checks every
artefact's seal, its agreement with ``run_config.yaml`` on everything that
shapes the model, and the backbone actually loaded, so an adapter never runs
on weights or a model shape it was not trained with. A task whose artefact
does not verify is not served, and named with why; the others are. A task retired with ``seqadapt-task
retire`` (:mod:`seqadapt.versions`) is neither served nor selected; ``artefacts/<task>/`` always holds a task's
current version, so that is the one served. What a prediction holds
is the task kind's (:meth:`seqadapt.kinds.TaskKind.predictions`, see :mod:`seqadapt.answers`).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from transformers import PreTrainedTokenizerBase

from seqadapt.adapters import adapter_config, method_of
from seqadapt.answers import Answerer, Prediction, Request
from seqadapt.artefacts import (
    MANIFEST_FILE,
    RUN_CONFIG,
    ArtefactError,
    Manifest,
    artefact_dirs,
    check_written_by,
    install_task,
    load_task_artefact,
    read_manifest,
)
from seqadapt.backbone import BackboneConfig, load_backbone, weights_hash
from seqadapt.environment import current_environment, environment_differences
from seqadapt.kinds.base import RequestError
from seqadapt.lock import RunLock
from seqadapt.model import SeqAdaptModule
from seqadapt.record import RESULTS_FILE, RecordError, RunRecord
from seqadapt.saved_config import load_saved_config
from seqadapt.selection import DEFAULT_SELECTOR, SelectionConfig
from seqadapt.strategies import STRATEGIES
from seqadapt.versions import Retirement, retired_tasks


class LoadedStream:
    """A backbone with the artefacts of a run's learned tasks installed, ready to answer inputs.

    ``refused`` names each task whose artefact did not verify, with why, and
    ``retired`` each retired task, with how to serve it again: neither is
    served, and requests for them are refused with that reason.
    """

    def __init__(self, module: SeqAdaptModule, tokenizer: PreTrainedTokenizerBase, settings: dict,
                 refused: dict[str, str] | None = None, retired: dict[str, str] | None = None) -> None:
        self.module = module.eval()
        self.tokenizer = tokenizer
        self.settings = settings
        self.refused = dict(refused or {})
        self.retired = dict(retired or {})

    @property
    def tasks(self) -> list[str]:
        """The served tasks (those whose artefacts verified), in stage order."""
        return self.module.tasks

    def check(self, request: Request, task: str | None, where: str) -> None:
        """Raise why ``request`` cannot be answered under ``task`` (``None``: by a selector), naming ``where``:
        a :class:`~seqadapt.kinds.base.RequestError` for its fields, an :class:`ArtefactError` for its task."""
        answerer = Answerer(self.module, self.tokenizer, self.settings)
        if task is None:
            answerer.readers(request, where)
            return
        self.require_served(task, where)
        answerer.canonical(task, request, where)

    def require_served(self, task: str, where: str = "") -> None:
        """Refuse a task that is not served, with why: it is retired, its artefact was refused, or the run has none."""
        prefix = f"{where}: " if where else ""
        if task in self.retired:
            raise ArtefactError(f"{prefix}{self.retired[task]}")
        if task in self.refused:
            raise ArtefactError(f"{prefix}task '{task}' is not served: {self.refused[task]}")
        if task not in self.module.specs:
            raise ArtefactError(f"{prefix}no task '{task}' in this run; it serves {self.tasks}")

    def predict(
        self, inputs: list[Request], task: str | list[str] | None = None, selector: str = DEFAULT_SELECTOR
    ) -> list[Prediction]:
        """Predictions for ``inputs`` (plain texts, or requests holding a task's input fields) under one task,
        one task per input, or none.

        With one task per input, a batch may mix tasks of a kind: each input
        runs through its own task's adapters in one pass over the shared
        backbone. Without a task, ``selector`` (see :mod:`seqadapt.selection`)
        picks each input's task among the served tasks that can read it.
        """
        if not inputs:
            return []
        answerer = Answerer(self.module, self.tokenizer, self.settings)
        if task is None:
            return answerer.answer(inputs, answerer.choose(inputs, selector), selected_by=selector)
        tasks = [task] * len(inputs) if isinstance(task, str) else list(task)
        if len(tasks) != len(inputs):
            raise ValueError(f"{len(tasks)} task names for {len(inputs)} inputs; give one task or one per input")
        for name in sorted(set(tasks)):
            self.require_served(name)
        return answerer.answer(inputs, tasks)

    def predict_each(
        self, inputs: list[Request], task: str | list[str] | None = None, selector: str = DEFAULT_SELECTOR
    ) -> list[Prediction | Exception]:
        """:meth:`predict`, with each input's error in its place instead of one error for the batch: the batch
        in one call where it can be, else each input on its own, so only the one that fails gets an error.
        What ``seqadapt-predict`` and ``seqadapt-serve`` answer a batch of checked requests with."""
        try:
            return list(self.predict(inputs, task, selector))
        except (RequestError, ArtefactError, ValueError) as err:
            if len(inputs) == 1:
                return [err]
        tasks = list(task) if isinstance(task, list) else [task] * len(inputs)
        return [one for request, name in zip(inputs, tasks) for one in self.predict_each([request], name, selector)]


def load_stream(run_dir: Path, tasks: list[str] | None = None) -> LoadedStream:
    """Rebuild a run's model from ``run_config.yaml`` and its task artefacts (all of them, or ``tasks``).

    Every manifest served is sealed (:func:`seqadapt.artefacts.read_manifest`),
    written by the run that ``results.json`` records, and must agree with
    ``run_config.yaml`` on everything that shapes the model
    (:func:`check_run_config`): the config builds the model the artefacts'
    tensors go into, so an edited config would otherwise serve other
    probabilities without complaint. Retired tasks are left out (asking for
    one by name is refused, saying how to serve it again). A task whose artefact does not verify is
    not served and is named with why (a warning, and :attr:`LoadedStream.refused`);
    the others are served. Only when none verifies is it an error.

    The folder's lock is held shared while its files are read, so a resume
    (which may move a damaged artefact aside) cannot change them meanwhile; a
    folder being written is refused at once (:class:`~seqadapt.lock.RunLockedError`,
    naming the writer), not waited for.
    """
    run_dir = Path(run_dir)
    config_path = run_dir / RUN_CONFIG
    if not config_path.is_file():
        raise ArtefactError(f"{run_dir} is not a seqadapt run directory: it has no {RUN_CONFIG}")
    with RunLock(run_dir, shared=True):
        cfg = OmegaConf.to_container(load_saved_config(config_path))  # plain data: nothing resolved
        require_task_artefacts(cfg, run_dir)
        retired = {task: retired_note(run_dir, task, since) for task, since in retired_tasks(run_dir).items()}
        asked = sorted(set(tasks or ()) & set(retired))
        if asked:
            raise ArtefactError("; ".join(retired[task] for task in asked))
        manifests, refused = _verified_manifests(cfg, config_path, tasks, set(retired))
        backbone, module = _installed(cfg, config_path, manifests, refused)
    for task, reason in refused.items():
        warnings.warn(f"not serving task '{task}': {reason}", stacklevel=2)
    settings = {"max_length": cfg["data"]["max_length"], "eval_batch_size": cfg["data"]["eval_batch_size"]}
    note = environment_note(run_dir, module.device.type)
    if note:
        warnings.warn(note, stacklevel=2)
    return LoadedStream(module, backbone.tokenizer, settings, refused, retired)


def require_task_artefacts(cfg: dict[str, Any], run_dir: Path) -> None:
    """Refuse, saying why, a run whose strategy leaves no per-task artefacts to serve (fine-tuning, a continual
    method sharing weights, O-LoRA's summed LoRAs): its model after the last stage is not kept."""
    section = cfg.get("strategy")
    name = section.get("name") if isinstance(section, dict) else None
    strategy = STRATEGIES.get(name) if isinstance(name, str) else None
    if strategy is not None and not strategy.isolates_tasks:
        raise ArtefactError(f"{run_dir} is a strategy={name} run: it {strategy.sharing} and keeps no per-task "
                            "artefacts, so it cannot be served; serve a strategy=adapter run (docs/concepts/strategies.md)")


def retired_note(run_dir: Path, task: str, since: Retirement) -> str:
    """Why a retired task is not served, and how to serve it again."""
    return (f"task '{task}' of {run_dir} is retired (version {since['version']}, since {since['time']}): it is no "
            f"longer served or selected. Serve it again with: seqadapt-task restore {run_dir} --task {task}")


def _verified_manifests(
    cfg: dict[str, Any], config_path: Path, tasks: list[str] | None, retired: set[str]
) -> tuple[dict[Path, Manifest], dict[str, str]]:
    """The sealed manifests of the artefacts to serve (all but the ``retired``, or ``tasks``) that agree with the
    config and were written by this run, in stage order; and each refused task with why."""
    run_dir = config_path.parent
    found: dict[Path, Manifest | str] = {}
    for directory in (d for d in artefact_dirs(run_dir) if d.name not in retired):
        try:
            found[directory] = read_manifest(directory)
        except ArtefactError as err:
            found[directory] = str(err)
    order = sorted(found, key=lambda d: (found[d]["stage"] if isinstance(found[d], dict) else float("inf"), d.name))
    available = [directory.name for directory in order]
    missing = sorted(set(tasks or ()) - set(available))
    if missing or not found:
        raise ArtefactError(
            f"{run_dir} has no artefact for task(s) {missing or 'any'}; it has {available or 'none'} "
            "(only stages that finished and passed the guard leave one)"
            + (f", and retired {sorted(retired)} (seqadapt-task restore serves one again)" if retired else "")
        )
    recorded = run_record(run_dir)
    manifests, refused = {}, {}
    for directory in (d for d in order if tasks is None or d.name in tasks):
        try:
            manifest = found[directory]
            if isinstance(manifest, str):
                raise ArtefactError(manifest)
            check_run_config(cfg, config_path, manifest, directory / MANIFEST_FILE)
            check_written_by(directory, manifest, recorded.run_id if recorded else None, run_dir / RESULTS_FILE)
            manifests[directory] = manifest
        except ArtefactError as err:
            refused[directory.name] = str(err)
    return manifests, refused


def _installed(
    cfg: dict[str, Any], config_path: Path, manifests: dict[Path, Manifest], refused: dict[str, str]
) -> tuple[Any, SeqAdaptModule]:
    """The backbone and the model with each artefact of ``manifests`` installed that verifies on it; the
    others go to ``refused``. One refused after its task was added leaves the model half built (that task
    would answer with untrained tensors), so the model is built again without it."""
    while manifests:
        backbone = load_backbone(BackboneConfig(**cfg["backbone"]))
        module = SeqAdaptModule(
            backbone.model, adapter_config(cfg["adapter"]), pooling=cfg["pooling"],
            selection=SelectionConfig.from_mapping(cfg.get("selection")), tokenizer=backbone.tokenizer,
        )
        backbone_sha256 = weights_hash(backbone.model)
        for directory, manifest in list(manifests.items()):
            try:
                _check(config_path, directory / MANIFEST_FILE, "pooling", module.pooling, manifest["pooling"])
                check_backbone(cfg, config_path, manifest, directory / MANIFEST_FILE, backbone_sha256)
                install_task(module, load_task_artefact(directory, backbone_sha256=backbone_sha256))
            except ArtefactError as err:
                refused[directory.name] = str(err)
                del manifests[directory]
                if directory.name in module.specs:
                    break
        else:
            if manifests:
                return backbone, module
    if len(refused) == 1:
        raise ArtefactError(*refused.values())
    raise ArtefactError(f"no task of {config_path.parent} can be served:" + "".join(f"\n  {t}: {r}" for t, r in refused.items()))


def run_record(run_dir: Path) -> RunRecord | None:
    """The run's results.json, or None where it has none or it is damaged (a resume rebuilds it; serving
    needs only the artefacts)."""
    path = Path(run_dir) / RESULTS_FILE
    try:
        return RunRecord.load(path) if path.is_file() else None
    except RecordError:
        return None


def environment_note(run_dir: Path, device: str) -> str | None:
    """What differs between the run's recorded environment (results.json) and this process, in words; None
    when nothing does or the run recorded none. Outputs then differ in their last bits, never in kind."""
    record = run_record(run_dir)
    if record is None:
        return None
    changed = environment_differences(record.environment, current_environment(device))
    if not changed:
        return None
    return (f"serving {run_dir} in another environment than it was trained and evaluated in ({'; '.join(changed)}): "
            "outputs can differ from the recorded ones in their last bits; this is not a change of the model")


def check_run_config(cfg: dict[str, Any], config_path: Path, manifest: dict[str, Any], manifest_path: Path) -> None:
    """Refuse a ``run_config.yaml`` that disagrees with a (sealed) manifest on what shapes the model:
    ``data.max_length`` and every adapter setting. Pooling (``auto`` resolves per family) and the backbone's
    weights are compared once loaded (:func:`check_backbone`)."""
    _check(config_path, manifest_path, "data.max_length", cfg.get("data", {}).get("max_length"),
           manifest["settings"].get("max_length"))
    try:
        adapter = adapter_config(cfg.get("adapter", {}))
    except (TypeError, ValueError) as err:
        raise ArtefactError(f"{config_path}: its adapter settings are invalid ({err}); the run's artefacts were "
                            f"saved with adapter {manifest.get('adapter')} (see {manifest_path})") from None
    saved = adapter_config(manifest["adapter"])  # sealed and checked; an older one lacks later defaults
    _check(config_path, manifest_path, "adapter.method", method_of(adapter), method_of(saved))
    configured, settings = asdict(adapter), asdict(saved)
    for key in sorted(settings):
        _check(config_path, manifest_path, f"adapter.{key}", configured.get(key), settings[key])


def check_backbone(cfg: dict[str, Any], config_path: Path, manifest: dict[str, Any], manifest_path: Path, sha256: str) -> None:
    """Refuse serving an artefact on weights other than those it was trained on, naming the config's backbone."""
    saved = manifest["backbone"]
    if saved["sha256"] != sha256:
        raise ArtefactError(
            f"{config_path} does not match the artefact it serves: its backbone {cfg['backbone']} loads weights "
            f"with sha256 {sha256}, but {manifest_path} was trained on backbone '{saved['name']}' with sha256 "
            f"{saved['sha256']}. {RUN_CONFIG} was changed after the run (or the backbone's files were): set "
            "backbone in it back to the one the run was started with."
        )


def _check(config_path: Path, manifest_path: Path, key: str, configured: Any, saved: Any) -> None:
    if configured != saved:
        raise ArtefactError(
            f"{config_path} does not match the artefact it serves: {key} is {configured!r} there, but "
            f"{manifest_path} was trained with {saved!r}. {RUN_CONFIG} was changed after the run; set "
            f"{key} back to {saved!r} in it (the manifest is sealed and verified, the config is not)."
        )

"""One task as it leaves a run: its definition, method, head and tensors, and the backbone it was trained on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from seqadapt.adapters import MethodConfig, adapter_config, method_of
from seqadapt.artefacts import ARTEFACTS, RUN_CONFIG, ArtefactError, load_tensors, read_manifest, task_artefact_dir
from seqadapt.backbone import BackboneConfig, backbone_location, load_backbone_config
from seqadapt.data.tasks import TaskSpec
from seqadapt.model import SeqAdaptModule
from seqadapt.exchange.errors import ExchangeError
from seqadapt.exchange.layout import BACKBONE, HEADS, ModelLayout, exchanged, split_adapter_key
from seqadapt.saved_config import load_saved_config
from seqadapt.strategies import STRATEGIES


@dataclass(frozen=True)
class TaskState:
    """What travels: a task's definition, its method and pooling, its adapter and head tensors (seqadapt's names,
    selection statistics left out: they are refitted from the task's own data on import) and its backbone."""

    spec: TaskSpec
    method: MethodConfig
    pooling: str
    layout: ModelLayout
    tensors: dict[str, torch.Tensor]
    backbone: dict[str, Any] = field(default_factory=dict)  # name, sha256, location (where it loads from), gguf_file
    origin: dict[str, Any] = field(default_factory=dict)  # run_id, stage, version of the artefact it came from

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def method_name(self) -> str:
        return method_of(self.method)

    def from_pretrained_args(self) -> str:
        """``from_pretrained``'s arguments for the backbone, as a user types them (a random one has no folder:
        ``BACKBONE_DIR`` stands for wherever it is saved)."""
        gguf = self.backbone.get("gguf_file")
        return repr(self.backbone.get("location") or "BACKBONE_DIR") + (f", gguf_file={gguf!r}" if gguf else "")

    def adapter_tensors(self) -> list[tuple[str, str, torch.Tensor]]:
        """``(module path, leaf, tensor)`` of each adapter tensor, in name order."""
        return [(*split_adapter_key(key, self.name), value) for key, value in sorted(self.tensors.items())
                if key.startswith(BACKBONE)]

    def head_tensors(self) -> dict[str, torch.Tensor]:
        """The head's tensors by their name inside the head (``classifier.weight``, ``mean``…)."""
        prefix = f"{HEADS}{self.name}."
        return {key[len(prefix):]: value for key, value in self.tensors.items() if key.startswith(prefix)}


def task_state(run_dir: Path, task: str) -> TaskState:
    """``task`` of the finished run in ``run_dir``, read from its artefact (sealed manifest, weights checked
    against their SHA-256) and its run's saved config (the backbone's config, read without its weights)."""
    run_dir = Path(run_dir)
    directory = task_artefact_dir(run_dir, task)
    if not directory.is_dir():
        raise ArtefactError(f"{run_dir} has no artefact for task '{task}' (no folder {directory}); its artefacts: "
                            f"{sorted(p.name for p in (run_dir / ARTEFACTS).glob('*') if p.is_dir())}")
    manifest = read_manifest(directory)
    strategy = STRATEGIES.get(manifest["strategy"])
    if strategy is None or not strategy.isolates_tasks:
        raise ExchangeError(f"{directory} is a task of a strategy={manifest['strategy']} run, whose tasks' outputs do not "
                            "come from their own adapter and head alone; export a task of a strategy=adapter run")
    weights = manifest["weights"]
    tensors = load_tensors(directory / weights["file"], weights["sha256"], weights["bytes"])
    backbone = BackboneConfig(**OmegaConf.to_container(load_saved_config(run_dir / RUN_CONFIG).backbone,
                                                       resolve=True))
    return TaskState(
        spec=TaskSpec.from_dict(manifest["spec"]), method=adapter_config(manifest["adapter"]),
        pooling=manifest["pooling"], layout=ModelLayout.of(load_backbone_config(backbone)),
        tensors=exchanged(tensors, task),
        backbone={**manifest["backbone"], "location": backbone_location(backbone), "gguf_file": backbone.gguf_file},
        origin={"run_id": manifest.get("written_by_run"), "stage": manifest["stage"], "version": manifest.get("version", 1),
                "weights_sha256": weights["sha256"]},
    )


def module_task_state(module: SeqAdaptModule, task: str, backbone: dict[str, Any]) -> TaskState:
    """``task`` as ``module`` holds it now (``backbone``: its name, sha256 and location, as a manifest records)."""
    return TaskState(spec=module.specs[task], method=module.adapters.config, pooling=module.pooling,
                     layout=ModelLayout.of(module.backbone.config), tensors=exchanged(module.tensors.of(task), task),
                     backbone=backbone)

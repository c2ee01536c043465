"""Serve a finished stream: ``load_stream(run_dir)`` rebuilds it, ``LoadedStream.predict`` answers inputs.

A run directory holds ``run_config.yaml`` (how to rebuild the backbone and
adapters) and one verified artefact per learned task. Loading checks every
artefact against the backbone actually loaded, so an adapter never runs on
weights it was not trained with. What a prediction holds is the task kind's
(:meth:`seqadapt.kinds.TaskKind.prediction`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from transformers import PreTrainedTokenizerBase

from seqadapt.adapters import AdapterConfig
from seqadapt.artefacts import ARTEFACTS, MANIFEST_FILE, RUN_CONFIG, ArtefactError, install_task, load_task_artefact, read_manifest
from seqadapt.backbone import BackboneConfig, load_backbone, weights_hash
from seqadapt.data.loaders import make_loader
from seqadapt.kinds import TaskKind
from seqadapt.model import SeqAdaptModule
from seqadapt.selection import CandidateBatch, get_selector


class LoadedStream:
    """A backbone with the artefacts of a run's learned tasks installed, ready to answer inputs."""

    def __init__(self, module: SeqAdaptModule, tokenizer: PreTrainedTokenizerBase, settings: dict) -> None:
        self.module = module.eval()
        self.tokenizer = tokenizer
        self.settings = settings

    @property
    def tasks(self) -> list[str]:
        return self.module.tasks

    def _input_kind(self, tasks: list[str]) -> TaskKind:
        kinds = {self.module.specs[task].type: self.module.kind(task) for task in tasks}
        if len(kinds) > 1:
            raise ValueError(f"tasks {tasks} are of different kinds {sorted(kinds)}; give --task to answer one of them")
        return next(iter(kinds.values()))

    def predict(self, texts: list[str], task: str | list[str] | None = None, selector: str = "entropy") -> list[Any]:
        """Predictions for ``texts`` under one task, one task per text, or none.

        With one task per text, a batch may mix tasks: each text runs through
        its own task's adapters in one pass over the shared backbone. Without
        a task, ``selector`` (see :mod:`seqadapt.selection`) picks each text's
        task among all loaded ones.
        """
        if task is None:
            choose, tasks = get_selector(selector), None
        else:
            tasks = [task] * len(texts) if isinstance(task, str) else list(task)
            if len(tasks) != len(texts):
                raise ValueError(f"{len(tasks)} task names for {len(texts)} texts; give one task or one per text")
        kind = self._input_kind(sorted(set(tasks)) if tasks is not None else self.tasks)
        loader = make_loader(
            kind.unlabelled(texts), kind, self.tokenizer,
            max_length=self.settings["max_length"], batch_size=self.settings["eval_batch_size"],
        )
        names: list[str] = []
        outputs: list[torch.Tensor] = []
        with torch.inference_mode():
            for batch in loader:
                view = CandidateBatch(self.module, batch, self.tasks)
                if tasks is None:
                    batch_tasks = [self.tasks[i] for i in choose.scores(view).argmax(dim=1).tolist()]
                else:
                    batch_tasks = tasks[len(names):len(names) + len(view)]
                names += batch_tasks
                outputs += view.logits_under(batch_tasks)
        selected_by = None if tasks is not None else selector
        return [
            self.module.kind(name).prediction(self.module.specs[name], text, row, selected_by)
            for text, name, row in zip(texts, names, outputs)
        ]


def load_stream(run_dir: Path, tasks: list[str] | None = None) -> LoadedStream:
    """Rebuild a run's model from ``run_config.yaml`` and its task artefacts (all of them, or ``tasks``)."""
    run_dir = Path(run_dir)
    config_path = run_dir / RUN_CONFIG
    if not config_path.is_file():
        raise ArtefactError(f"{run_dir} is not a seqadapt run directory: it has no {RUN_CONFIG}")
    cfg = OmegaConf.to_container(OmegaConf.load(config_path), resolve=True)
    directories = sorted(
        (path.parent for path in (run_dir / ARTEFACTS).glob(f"*/{MANIFEST_FILE}")),
        key=lambda directory: read_manifest(directory)["stage"],
    )
    available = [directory.name for directory in directories]
    missing = sorted(set(tasks or ()) - set(available))
    if missing or not directories:
        raise ArtefactError(
            f"{run_dir} has no artefact for task(s) {missing or 'any'}; it has {available or 'none'} "
            "(only stages that finished and passed the guard leave one)"
        )
    backbone = load_backbone(BackboneConfig(**cfg["backbone"]))
    module = SeqAdaptModule(backbone.model, AdapterConfig(**cfg["adapter"]), pooling=cfg["pooling"])
    backbone_sha256 = weights_hash(backbone.model)
    for directory in directories:
        if tasks is None or directory.name in tasks:
            install_task(module, load_task_artefact(directory, backbone_sha256=backbone_sha256))
    settings = {"max_length": cfg["data"]["max_length"], "eval_batch_size": cfg["data"]["eval_batch_size"]}
    return LoadedStream(module, backbone.tokenizer, settings)

"""Serve a finished stream: ``load_stream(run_dir)`` and the ``seqadapt-predict`` command.

A run directory holds ``run_config.yaml`` (how to rebuild the backbone and
adapters) and one verified artefact per learned task. Loading checks every
artefact against the backbone actually loaded, so an adapter never runs on
weights it was not trained with.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from omegaconf import OmegaConf
from transformers import PreTrainedTokenizerBase

from seqadapt.adapters import AdapterConfig
from seqadapt.artefacts import (
    ARTEFACTS,
    MANIFEST_FILE,
    RUN_CONFIG,
    ArtefactError,
    install_task,
    load_task_artefact,
    read_manifest,
)
from seqadapt.backbone import BackboneConfig, load_backbone, weights_hash
from seqadapt.data.loaders import make_loader
from seqadapt.data.splits import Examples
from seqadapt.evaluation import task_logits
from seqadapt.module import SeqAdaptModule


@dataclass(frozen=True)
class Prediction:
    text: str
    task: str
    label: str
    probabilities: dict[str, float]


class LoadedStream:
    """A backbone with the artefacts of a run's learned tasks installed, ready to classify texts."""

    def __init__(self, module: SeqAdaptModule, tokenizer: PreTrainedTokenizerBase, settings: dict) -> None:
        self.module = module.eval()
        self.tokenizer = tokenizer
        self.settings = settings

    @property
    def tasks(self) -> list[str]:
        return self.module.tasks

    def predict(self, texts: list[str], task: str) -> list[Prediction]:
        """Label names and class probabilities for ``texts`` under ``task``'s adapters and head."""
        if task not in self.module.specs:
            raise KeyError(f"unknown task '{task}'; this run has artefacts for {self.tasks}")
        unlabelled = Examples(texts=list(texts), labels=[-1] * len(texts))
        loader = make_loader(
            unlabelled, self.tokenizer,
            max_length=self.settings["max_length"], batch_size=self.settings["eval_batch_size"],
        )
        logits, _ = task_logits(self.module, task, loader)
        labels = self.module.specs[task].labels
        probabilities = torch.softmax(logits, dim=-1)
        return [
            Prediction(text, task, labels[int(row.argmax())], {label: float(p) for label, p in zip(labels, row)})
            for text, row in zip(texts, probabilities)
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="seqadapt-predict",
        description="Classify texts with one task of a finished run; prints one JSON line per text.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds run_config.yaml and artefacts/)")
    parser.add_argument("--task", required=True, help="the task whose adapters and head classify the texts")
    parser.add_argument("texts", nargs="*", help="texts to classify; none: read one per line from standard input")
    args = parser.parse_intermixed_args(argv)
    texts = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    try:
        stream = load_stream(args.run_dir, [args.task])
        predictions = stream.predict(texts, args.task)
    except (ArtefactError, KeyError) as err:
        parser.exit(2, f"seqadapt-predict: error: {err.args[0]}\n")
    for prediction in predictions:
        print(json.dumps(asdict(prediction)))


if __name__ == "__main__":
    main()

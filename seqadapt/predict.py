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

    def predict(self, texts: list[str], task: str | list[str]) -> list[Prediction]:
        """Label names and class probabilities for ``texts``, under one task or one task per text.

        With one task per text, a batch may mix tasks: each text runs through
        its own task's adapters in one pass over the shared backbone.
        """
        tasks = [task] * len(texts) if isinstance(task, str) else list(task)
        if len(tasks) != len(texts):
            raise ValueError(f"{len(tasks)} task names for {len(texts)} texts; give one task or one per text")
        unlabelled = Examples(texts=list(texts), labels=[-1] * len(texts))
        loader = make_loader(
            unlabelled, self.tokenizer,
            max_length=self.settings["max_length"], batch_size=self.settings["eval_batch_size"],
        )
        logits: list[torch.Tensor] = []
        with torch.inference_mode():
            for batch in loader:
                batch = {key: value.to(self.module.device) for key, value in batch.items()}
                logits += self.module.mixed_logits(
                    batch["input_ids"], batch["attention_mask"], tasks[len(logits):len(logits) + len(batch["input_ids"])],
                    batch.get("token_type_ids"),
                )
        predictions = []
        for text, name, row in zip(texts, tasks, logits):
            labels = self.module.specs[name].labels
            probabilities = torch.softmax(row.float(), dim=-1)
            predictions.append(Prediction(text, name, labels[int(probabilities.argmax())],
                                          {label: float(p) for label, p in zip(labels, probabilities)}))
        return predictions


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


def read_requests(texts: list[str], task: str | None) -> tuple[list[str], list[str]]:
    """Texts and their tasks: plain texts under ``task``, or, without it, JSON lines {"text": ..., "task": ...}."""
    if task is not None:
        return texts, [task] * len(texts)
    requests = []
    for number, line in enumerate(texts, start=1):
        try:
            request = json.loads(line)
            requests.append((request["text"], request["task"]))
        except (json.JSONDecodeError, KeyError, TypeError):
            raise ValueError(
                f'input line {number} is not a JSON object with "text" and "task": {line[:80]!r}. '
                "Give --task TASK to classify plain texts with one task"
            ) from None
    return [text for text, _ in requests], [name for _, name in requests]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="seqadapt-predict",
        description="Classify texts with the tasks of a finished run; prints one JSON line per text.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds run_config.yaml and artefacts/)")
    parser.add_argument("--task", help="the task whose adapters and head classify the texts; without it, each "
                                       'input is a JSON line {"text": ..., "task": ...} and batches mix tasks')
    parser.add_argument("texts", nargs="*", help="texts to classify; none: read one per line from standard input")
    args = parser.parse_intermixed_args(argv)
    lines = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    try:
        texts, tasks = read_requests(lines, args.task)
        stream = load_stream(args.run_dir, sorted(set(tasks)))
        predictions = stream.predict(texts, tasks)
    except (ArtefactError, KeyError, ValueError) as err:
        parser.exit(2, f"seqadapt-predict: error: {err.args[0]}\n")
    for prediction in predictions:
        print(json.dumps(asdict(prediction)))


if __name__ == "__main__":
    main()

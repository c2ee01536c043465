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
from seqadapt.selection import SELECTORS, CandidateBatch, get_selector


@dataclass(frozen=True)
class Prediction:
    text: str
    task: str
    label: str
    probabilities: dict[str, float]
    selected_by: str | None = None  # the selector that picked the task; None when the task was given


class LoadedStream:
    """A backbone with the artefacts of a run's learned tasks installed, ready to classify texts."""

    def __init__(self, module: SeqAdaptModule, tokenizer: PreTrainedTokenizerBase, settings: dict) -> None:
        self.module = module.eval()
        self.tokenizer = tokenizer
        self.settings = settings

    @property
    def tasks(self) -> list[str]:
        return self.module.tasks

    def predict(self, texts: list[str], task: str | list[str] | None = None, selector: str = "entropy") -> list[Prediction]:
        """Label names and class probabilities for ``texts``, under one task, one task per text, or none.

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
        unlabelled = Examples(texts=list(texts), labels=[-1] * len(texts))
        loader = make_loader(
            unlabelled, self.tokenizer,
            max_length=self.settings["max_length"], batch_size=self.settings["eval_batch_size"],
        )
        names: list[str] = []
        logits: list[torch.Tensor] = []
        with torch.inference_mode():
            for batch in loader:
                view = CandidateBatch(self.module, batch, self.tasks)
                if tasks is None:
                    batch_tasks = [self.tasks[i] for i in choose.scores(view).argmax(dim=1).tolist()]
                else:
                    batch_tasks = tasks[len(names):len(names) + len(view)]
                names += batch_tasks
                logits += view.logits_under(batch_tasks)
        predictions = []
        for text, name, row in zip(texts, names, logits):
            labels = self.module.specs[name].labels
            probabilities = torch.softmax(row.float(), dim=-1)
            predictions.append(Prediction(text, name, labels[int(probabilities.argmax())],
                                          {label: float(p) for label, p in zip(labels, probabilities)},
                                          None if tasks is not None else selector))
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


def read_requests(texts: list[str], task: str | None, select: str | None = None) -> tuple[list[str], list[str] | None]:
    """Texts and their tasks: plain texts under ``task``, plain texts whose task a selector picks (``select``;
    no tasks returned), or, without either, JSON lines {"text": ..., "task": ...}."""
    if select is not None:
        return texts, None
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
                "Give --task TASK to classify plain texts with one task, or --select SELECTOR to let seqadapt pick the task"
            ) from None
    return [text for text, _ in requests], [name for _, name in requests]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="seqadapt-predict",
        description="Classify texts with the tasks of a finished run; prints one JSON line per text.",
    )
    parser.add_argument("run_dir", type=Path, help="a run directory (holds run_config.yaml and artefacts/)")
    given = parser.add_mutually_exclusive_group()
    given.add_argument("--task", help="the task whose adapters and head classify the texts; without it (and without "
                                      '--select), each input is a JSON line {"text": ..., "task": ...} and batches mix tasks')
    given.add_argument("--select", choices=sorted(SELECTORS),
                       help="no task given: pick each text's task among the run's tasks, by the most certain head "
                            "(entropy) or the nearest class prototype (prototype)")
    parser.add_argument("texts", nargs="*", help="texts to classify; none: read one per line from standard input")
    args = parser.parse_intermixed_args(argv)
    lines = args.texts or [line.rstrip("\n") for line in sys.stdin if line.strip()]
    try:
        texts, tasks = read_requests(lines, args.task, args.select)
        stream = load_stream(args.run_dir, None if tasks is None else sorted(set(tasks)))
        predictions = stream.predict(texts, tasks, selector=args.select or "entropy")
    except (ArtefactError, KeyError, ValueError) as err:
        parser.exit(2, f"seqadapt-predict: error: {err.args[0]}\n")
    for prediction in predictions:
        print(json.dumps(asdict(prediction)))


if __name__ == "__main__":
    main()

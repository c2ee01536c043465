"""Choosing the selection hyper-parameters on held-out training data, never on test data.

    .venv/bin/python -m bench.tune_selection                       # the default stream, 2,000 held-out rows per task
    .venv/bin/python -m bench.tune_selection --held-out 0 experiment=kinds   # the validation splits; any overrides

The statistics selectors (prototype, mahalanobis, ranpac) read only the bare
backbone's features, so no training is needed: each task's statistics are
fitted on its training split exactly as a stream does, and every candidate
setting is scored by task-ID accuracy (mean over tasks, as the stream reports
it), every task a candidate for every example. The examples scored are the
``--held-out N`` rows of each task's training pool that follow its training
split (never its validation or test split; fewer where the source has fewer),
or, with ``--held-out 0``, its validation split (also for a task whose source
has no rows beyond its training split; the output names those). Why not the validation split
alone: with 200 rows per task its accuracies saturate (differences of one row),
the unused pool resolves them. Writes ``bench/selection_tuning/<name>.md``
(and ``.json``) with the whole grid.
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.build import build_module, build_tasks, container
from seqadapt.data import make_loader
from seqadapt.data.splits import TaskSplits
from seqadapt.selection.combine import gaussian_model, mahalanobis_scores, ridge_model, ridge_scores
from seqadapt.selection.config import resolve_layers
from seqadapt.selection.fitting import features_and_classes
from seqadapt.selection.projection import RandomProjection
from seqadapt.selection.statistics import TaskStatistics

CONF = Path(__file__).resolve().parents[1] / "conf"
LAYER_SETS = ((-1,), (0, -1), (0, "middle", -1), "all")
SHRINKAGES = (0.0, 0.01, 0.03, 0.1, 0.3, 0.6, 1.0)
PROJECTION_DIMS = (512, 1024, 2048, 4096)
RIDGES = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)
OUT = Path(__file__).resolve().parent / "selection_tuning"
Split = tuple[torch.Tensor, torch.Tensor]


def split_features(cfg, module, tokenizer, task, split: str) -> Split:
    """Selection features of every hidden state [N, L + 1, d] (unit length each, as the selectors' features are
    made) and the class each row's statistics count it under."""
    loader = make_loader((task.spec, getattr(task, split)), tokenizer, max_length=cfg.data.max_length,
                         batch_size=cfg.data.eval_batch_size)
    features, labels = features_and_classes(module, task.spec.name, loader)
    return features.view(len(labels), len(module.selection.layers), -1), labels


def task_id_accuracy(scores: list[torch.Tensor]) -> float:
    """Mean over tasks of the share of a task's validation rows whose best-scoring task is their own."""
    return sum(float((s.argmax(1) == t).float().mean()) for t, s in enumerate(scores)) / len(scores)


def fit_tasks(features: list[torch.Tensor], labels: list[torch.Tensor], classes: list[int],
              projection: RandomProjection | None = None) -> list[TaskStatistics]:
    """Each task's statistics over its training ``features`` [N, D] under class ``labels``, as a stream fits them."""
    stats = []
    for x, y, k in zip(features, labels, classes):
        stats.append(TaskStatistics(x.shape[1], k, projection.dim if projection else 0))
        stats[-1].fit(x, y, projection(x) if projection else None)
    return stats


def fitted(train: list[Split], classes: list[int], layers: list[int], projection: RandomProjection | None) -> list[TaskStatistics]:
    return fit_tasks([x[:, layers].flatten(1) for x, _ in train], [y for _, y in train], classes, projection)


def statistics_bytes(stats: TaskStatistics) -> int:
    return sum(b.numel() * b.element_size() for b in stats.buffers())


def grid_for(train: list[Split], val: list[torch.Tensor], classes: list[int], layers: list[int]) -> dict[str, Any]:
    n, plain = len(train), fitted(train, classes, layers, None)
    features = [v[:, layers].flatten(1) for v in val]
    return {
        "layers": layers, "bytes_per_task": statistics_bytes(plain[0]),
        "prototype": task_id_accuracy([torch.stack([s.similarity(v) for s in plain], 1) for v in features]),
        "mahalanobis": {a: task_id_accuracy([mahalanobis_scores(v, gaussian_model(plain, a), n) for v in features])
                        for a in SHRINKAGES},
    }


def ranpac_grid(train: list[Split], val: list[torch.Tensor], classes: list[int], layers: list[int], seed: int) -> dict:
    grid, n = {}, len(train)
    for m in PROJECTION_DIMS:
        projection = RandomProjection(train[0][0].shape[2] * len(layers), m, seed)
        stats = fitted(train, classes, layers, projection)
        phis = [projection(v[:, layers].flatten(1)) for v in val]
        grid[m] = {"bytes_per_task": statistics_bytes(stats[0]),
                   **{r: task_id_accuracy([ridge_scores(p, ridge_model(stats, r), n) for p in phis]) for r in RIDGES}}
    return grid


def held_out_split(task: TaskSplits, train_size: int) -> TaskSplits:
    """``task`` with the rows after the first ``train_size`` of its (enlarged) training split as its ``val``."""
    return replace(task, train=task.train.select(range(train_size)),
                   val=task.train.select(range(train_size, len(task.train))))


def held_out_tasks(overrides: list[str], held_out: int) -> tuple[DictConfig, list[TaskSplits], list[str]]:
    """The config composed from ``overrides`` and its :func:`held_out_splits`."""
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    return (cfg, *held_out_splits(cfg, held_out))


def held_out_splits(cfg: DictConfig, held_out: int) -> tuple[list[TaskSplits], list[str]]:
    """The stream's tasks, each with the ``held_out`` rows of its training pool that follow its training split
    as ``val`` (all of them with 0: the validation splits), and the names of the tasks whose source has no rows
    beyond the stream's training split, which keep their validation split instead."""
    tasks = build_tasks(cfg)
    if not held_out:
        return tasks, []
    enlarged = OmegaConf.merge(cfg, {"data": {"train_size": cfg.data.train_size + held_out}})
    scored, kept_validation = [], []
    for task, big in zip(tasks, build_tasks(enlarged)):
        n = len(task.train)  # the enlarged split extends the stream's one unless the source ran out of rows
        if len(big.train) > n and big.train.select(range(n)).to_dict() == task.train.to_dict():
            scored.append(held_out_split(big, n))
        else:
            scored.append(task)
            kept_validation.append(task.spec.name)
    return scored, kept_validation


def tune(overrides: list[str], held_out: int) -> dict[str, Any]:
    cfg, tasks, kept_validation = held_out_tasks(overrides, held_out)
    backbone = load_backbone(BackboneConfig(**container(cfg.backbone)))
    states = backbone.model.config.num_hidden_layers + 1
    all_layers = OmegaConf.create({"layers": list(range(states)), "projection_dim": 0})
    module = build_module(OmegaConf.merge(cfg, {"selection": all_layers}), backbone).eval()
    for task in tasks:
        module.add_task(task.spec, task.train)
    train = [split_features(cfg, module, backbone.tokenizer, t, "train") for t in tasks]
    val = [split_features(cfg, module, backbone.tokenizer, t, "val")[0] for t in tasks]
    classes = [module.kind(t.spec.name).prototype_classes(t.spec) for t in tasks]
    def indices(layers) -> list[int]:  # as the stream resolves them, counted from the embeddings
        return [layer % states for layer in resolve_layers(tuple(layers), states)]

    grids = [grid_for(train, val, classes, indices(range(states) if s == "all" else s)) for s in LAYER_SETS]
    default = indices(cfg.selection.layers)
    return {"overrides": overrides, "held_out": held_out, "tasks": [t.spec.name for t in tasks], "val_sizes": [len(v) for v in val],
            "validation_scored": kept_validation, "layer_sets": grids,
            "ranpac": ranpac_grid(train, val, classes, default, cfg.selection.projection_seed), "ranpac_layers": default}


def scored_rows(held_out: int, kept_validation: list[str]) -> str:
    """What the accuracies were measured on, in words."""
    if not held_out:
        return "validation splits"
    return f"{held_out} held-out training-pool rows per task" + (
        f" (the validation split for {', '.join(kept_validation)}: no rows beyond its training split)" if kept_validation else "")


def to_markdown(result: dict[str, Any]) -> str:
    scored = scored_rows(result["held_out"], result.get("validation_scored") or [])
    lines = [f"Task-ID accuracy (mean over tasks) on {scored} for `{' '.join(result['overrides']) or 'the default stream'}`:"
             f" tasks {result['tasks']}, features scored {result['val_sizes']}.", "",
             "| layers | statistics bytes per task (M=0) | prototype | " + " | ".join(f"mahalanobis a={a}" for a in SHRINKAGES) + " |",
             "|---" * (len(SHRINKAGES) + 3) + "|"]
    for g in result["layer_sets"]:
        lines.append(f"| {g['layers']} | {g['bytes_per_task']:,} | {g['prototype']:.4f} | "
                     + " | ".join(f"{g['mahalanobis'][a]:.4f}" for a in SHRINKAGES) + " |")
    lines += ["", f"RanPAC on layers {result['ranpac_layers']}:", "",
              "| M | statistics bytes per task | " + " | ".join(f"ridge {r}" for r in RIDGES) + " |",
              "|---" * (len(RIDGES) + 2) + "|"]
    for m, row in result["ranpac"].items():
        lines.append(f"| {m} | {row['bytes_per_task']:,} | " + " | ".join(f"{row[r]:.4f}" for r in RIDGES) + " |")
    return "\n".join(lines) + "\n"


def output_name(overrides: list[str], held_out: int) -> str:
    """``default``, or the chosen ``experiment``/``tasks`` presets, plus a short hash of any other overrides
    (file names must stay short) and ``-val`` when the validation splits are scored."""
    presets = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] in ("experiment", "tasks")]
    others = [o for o in overrides if o.split("=", 1)[0] not in ("experiment", "tasks")]
    name = "_".join(presets) or "default"
    if others:
        name += "-" + hashlib.sha256(" ".join(others).encode()).hexdigest()[:8]
    return name + ("" if held_out else "-val")


def main(argv: list[str] | None = None) -> None:
    overrides = list(sys.argv[1:] if argv is None else argv)
    held_out = 2000
    if overrides[:1] == ["--held-out"]:
        held_out, overrides = int(overrides[1]), overrides[2:]
    started = time.perf_counter()
    result = tune(overrides, held_out)
    result["seconds"] = time.perf_counter() - started
    name = output_name(overrides, held_out)
    OUT.mkdir(exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    (OUT / f"{name}.md").write_text(to_markdown(result))
    print(to_markdown(result))
    print(f"{result['seconds']:.0f} s; written to {OUT / name}.md")


if __name__ == "__main__":
    main()

"""Serving a finished long run, measured in a fresh process (``bench.long_stream`` starts it): how loading
compares with its parts, and what a mixed batch and task-ID-free selection cost as the candidates grow."""

from __future__ import annotations

import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from seqadapt.artefacts import RUN_CONFIG, artefact_dirs, load_task_artefact
from seqadapt.backbone import BackboneConfig, load_backbone, weights_hash
from seqadapt.build import resolve_task_dir
from seqadapt.data import build_splits, load_task_spec, read_source
from seqadapt.data.splits import task_split_sizes
from seqadapt.saved_config import load_saved_config
from seqadapt.selection import SELECTORS, CandidateBatch
from seqadapt.serving import LoadedStream, load_stream

REPEATS = 5
CANDIDATE_COUNTS = (5, 10, 20, 30, 40, 50)


def timed(call: Callable[[], Any], repeats: int = REPEATS) -> float:
    """Median seconds of ``repeats`` calls after one untimed call."""
    call()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def measure_serving(run_dir: Path, mixed_tasks: int, rows: int) -> dict[str, Any]:
    from bench.long_stream import memory_mb

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stream = load_stream(run_dir)
    load_seconds = time.perf_counter() - started
    rss, _ = memory_mb()
    requests, tasks = mixed_requests(stream, run_dir, mixed_tasks, rows)
    by_candidates = selection_by_candidates(stream, requests)  # first: each T's model is built there
    return {
        "load": {"seconds": load_seconds, "rss_mb": rss, "tasks": len(stream.tasks), **load_parts(run_dir)},
        "batch": {"rows": len(requests), "tasks": len(set(tasks)),
                  "told_seconds": timed(lambda: stream.predict(requests, tasks)),
                  "mahalanobis_seconds": timed(lambda: stream.predict(requests, None, "mahalanobis"))},
        "selection_by_candidates": by_candidates,
    }


def load_parts(run_dir: Path) -> dict[str, float]:
    """What loading is made of: the backbone's load (and its hash, which serving checks artefacts against) and
    one artefact's read (manifest, seal, weights' SHA-256, safetensors), the median over the run's tasks."""
    cfg = OmegaConf.to_container(load_saved_config(Path(run_dir) / RUN_CONFIG))
    started = time.perf_counter()
    backbone = load_backbone(BackboneConfig(**cfg["backbone"]))
    sha256 = weights_hash(backbone.model)
    backbone_seconds = time.perf_counter() - started
    reads = []
    for directory in artefact_dirs(run_dir):
        begun = time.perf_counter()
        load_task_artefact(directory, backbone_sha256=sha256)
        reads.append(time.perf_counter() - begun)
    return {"backbone_seconds": backbone_seconds, "artefact_read_seconds": statistics.median(reads)}


def mixed_requests(stream: LoadedStream, run_dir: Path, count: int, rows: int) -> tuple[list[str], list[str]]:
    """``rows`` test inputs of the first ``count`` one-text classification tasks, in turn, and their tasks."""
    cfg = OmegaConf.to_container(load_saved_config(Path(run_dir) / RUN_CONFIG))
    task_dir = resolve_task_dir(cfg["task_dir"])
    chosen = [t for t in stream.tasks if stream.module.specs[t].type == "classification"
              and len(stream.module.specs[t].text_fields) < 2][:count]
    texts = {}
    for name in chosen:  # the run's own test rows
        spec = load_task_spec(name, task_dir)
        texts[name] = list(build_splits(spec, read_source(spec), task_split_sizes(cfg["data"], name)).test["text"])
    requests, tasks = [], []
    for i in range(rows):
        name = chosen[i % len(chosen)]
        requests.append(texts[name][i // len(chosen) % len(texts[name])])
        tasks.append(name)
    return requests, tasks


@torch.inference_mode()
def selection_by_candidates(stream: LoadedStream, texts: list[str]) -> list[dict[str, Any]]:
    """mahalanobis over the first T tasks: building its model once (the pooled covariance grown by the tasks
    added since the smaller T, its Cholesky factor, the class means times the precision) and scoring per input."""
    module, selector = stream.module, SELECTORS["mahalanobis"]
    batch = dict(stream.tokenizer(texts, padding=True, truncation=True, max_length=stream.settings["max_length"],
                                  return_tensors="pt"))
    out = []
    for count in [c for c in CANDIDATE_COUNTS if c <= len(module.tasks)] or [len(module.tasks)]:
        view = CandidateBatch(module, batch, module.tasks[:count])
        view.features  # the bare backbone pass, the same for every T, timed apart
        started = time.perf_counter()
        selector.scores(view)  # builds the model for these candidates, then scores
        first = time.perf_counter() - started
        out.append({"tasks": count, "first_call_seconds": first,
                    "ms_per_input": timed(lambda: selector.scores(view)) * 1000 / len(texts)})
    return out

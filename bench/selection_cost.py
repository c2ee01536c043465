"""What serving without task IDs costs: time per 1,000 inputs at T tasks, and each task's stored statistics.

Every selector answers the same random inputs over the same module (MiniLM, T tasks with their own adapters
and heads, statistics fitted on random inputs): the selector's work plus the chosen task's adapted pass,
against being told the task (one adapted pass). One-pass selectors (mahalanobis, prototype, ranpac) cost two
backbone passes per input whatever T; entropy selectors run every candidate's adapters.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from bench import common
from bench.common import BOTTLENECK, DEVICE
from seqadapt.adapters import AdapterConfig
from seqadapt.backbone import load_backbone
from seqadapt.data import TaskSpec
from seqadapt.model import SeqAdaptModule, mixed_outputs
from seqadapt.selection import SELECTORS, CandidateBatch, SelectionConfig, selectors_for
from seqadapt.selection.fitting import fit_statistics

PROJECTION_DIM = 4096  # the best M on the default stream's validation splits (bench/selection_tuning/default.md)
BATCH = 64


def random_batches(n: int, seq_len: int, seed: int) -> list[dict[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (n, seq_len), generator=generator)
    labels = torch.randint(0, 2, (n,), generator=generator)
    return [{"input_ids": ids[i:i + BATCH].to(DEVICE), "attention_mask": torch.ones_like(ids[i:i + BATCH]).to(DEVICE),
             "labels": labels[i:i + BATCH].to(DEVICE)} for i in range(0, n, BATCH)]


def module_with_tasks(backbone: str, tasks: int, seq_len: int) -> SeqAdaptModule:
    """MiniLM with ``tasks`` two-label tasks, each with adapters, a head and statistics fitted on 64 random inputs."""
    module = SeqAdaptModule(load_backbone(common.BACKBONES[backbone]).model, AdapterConfig(bottleneck=BOTTLENECK),
                            selection=SelectionConfig(projection_dim=PROJECTION_DIM)).to(DEVICE)
    for t in range(tasks):
        name = f"task{t}"
        module.add_task(TaskSpec(name=name, labels=("0", "1"), source={}))
        fit_statistics(module, name, random_batches(64, seq_len, seed=t))
    return module.eval()


@torch.inference_mode()
def answer(module: SeqAdaptModule, batches: list[dict[str, torch.Tensor]], selector: str | None) -> None:
    """Every batch answered: by the selector's choice (its work, then the chosen tasks' pass), or told task0."""
    for batch in batches:
        if selector is None:
            mixed_outputs(module, batch["input_ids"], batch["attention_mask"], ["task0"] * len(batch["input_ids"]))
            continue
        view = CandidateBatch(module, batch, module.tasks)
        picks = SELECTORS[selector].scores(view).argmax(dim=1).tolist()
        view.logits_under([module.tasks[i] for i in picks])


def bench_selection(backbone: str, task_counts: tuple[int, ...], inputs: int, seq_len: int) -> dict[str, Any]:
    """Milliseconds per 1,000 inputs per selector and T (after one warm-up batch that also builds each
    selector's combined model, timed separately), and the bytes each task stores."""
    rows = []
    for tasks in task_counts:
        module = module_with_tasks(backbone, tasks, seq_len)
        batches = random_batches(inputs, seq_len, seed=1000)
        row: dict[str, Any] = {"tasks": tasks, "ms_per_1000": {}, "setup_seconds": {}}
        for selector in [None, *selectors_for(module.family.architecture)]:
            started = time.perf_counter()
            answer(module, batches[:1], selector)  # warm-up: the combined model (covariance, ridge) is built here
            setup = time.perf_counter() - started
            started = time.perf_counter()
            answer(module, batches, selector)
            name = selector or "told the task"
            row["ms_per_1000"][name] = (time.perf_counter() - started) / inputs * 1e6
            row["setup_seconds"][name] = setup
        rows.append(row)
    stats = module.selection["task0"]
    buffers = {name: b.numel() * b.element_size() for name, b in stats.named_buffers()}
    return {"backbone": backbone, "seq_len": seq_len, "inputs": inputs, "projection_dim": PROJECTION_DIM,
            "layers": list(module.selection.config.layers), "rows": rows, "bytes_per_task": buffers}


def markdown(result: dict[str, Any]) -> list[str]:
    names = list(result["rows"][0]["ms_per_1000"])
    b = result["bytes_per_task"]
    one_pass = b["counts"] + b["centroids"] + b["scatter"] + b["temperature"]
    lines = ["", f"Serving without task IDs ({result['backbone']}, seq len {result['seq_len']}, {result['inputs']} random "
             f"inputs in batches of {BATCH}, scaled to 1,000): the selector's work plus the chosen task's adapted pass, "
             "in milliseconds per 1,000 inputs; 'told the task' is one adapted pass.", "",
             "| tasks T | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for row in result["rows"]:
        lines.append(f"| {row['tasks']} | " + " | ".join(f"{row['ms_per_1000'][n]:,.0f}" for n in names) + " |")
    lines += ["", f"Stored statistics per task (layers {result['layers']}): {one_pass:,} bytes without RanPAC (counts, "
              f"class means, within-class scatter, temperature); RanPAC's Gram matrix and targets at M="
              f"{result['projection_dim']} add {b['gram'] + b['ridge_targets']:,} bytes."]
    return lines

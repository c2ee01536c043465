import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from seqadapt.adapters import AdapterConfig
from seqadapt.backbone import weights_hash
from seqadapt.data import SplitSizes, build_splits, load_task_stream, read_source
from seqadapt.guard import ForgettingError
from seqadapt.module import OptimConfig, SeqAdaptModule
from seqadapt.strategies import STRATEGIES
from seqadapt.stream import LoaderConfig, StreamRun
from tests.conftest import TOY_TASKS, tiny_model

ORDER = list(TOY_TASKS)


def trainer() -> pl.Trainer:
    return pl.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, deterministic=True,
    )


def stream(module_cls, task_dir: Path, tokenizer, out: Path, strategy: str = "adapter", **kwargs) -> StreamRun:
    specs = load_task_stream(ORDER, task_dir)
    tasks = [build_splits(s, read_source(s), SplitSizes(train=96, val=16, test=48)) for s in specs]
    module = module_cls(
        tiny_model(), AdapterConfig(bottleneck=8), strategy=STRATEGIES[strategy], optim=OptimConfig(learning_rate=5e-3)
    )
    return StreamRun(
        module, tasks, tokenizer, make_trainer=trainer, output_dir=out,
        loaders=LoaderConfig(max_length=16, batch_size=16, eval_batch_size=32), **kwargs,
    )


def test_three_task_stream_keeps_earlier_tasks_exact(toy_task_dir, tokenizer, tmp_path):
    run = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run")
    backbone_before = weights_hash(run.module.backbone)
    results = run.run()

    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["accuracy_matrix"] == results["accuracy_matrix"]
    matrix = saved["accuracy_matrix"]
    for j in range(3):  # every later row repeats the accuracy recorded when task j was learned
        assert [matrix[i][j] for i in range(j, 3)] == [matrix[j][j]] * (3 - j)
    assert saved["metrics"]["bwt"] == 0.0
    assert [s["guard"]["passed"] for s in saved["stages"]] == [True, True, True]
    assert saved["stages"][2]["guard"]["checked"] == ORDER[:2]
    assert weights_hash(run.module.backbone) == backbone_before == saved["backbone_sha256"]
    assert set(saved["params_per_task"]) == set(ORDER)
    assert all(s["train_seconds"] > 0 for s in saved["stages"])


class SharedAdapterModule(SeqAdaptModule):
    """Broken on purpose: every task after the first reuses the first task's adapters."""

    def add_task(self, spec):
        super().add_task(spec)
        first = self.tasks[0]
        for slot in self.adapters.slots:
            slot.adapters[spec.name] = slot.adapters[first]


class UnfrozenBackboneModule(SeqAdaptModule):
    """Broken on purpose: the backbone is trained along with the active task."""

    def configure_optimizers(self):
        self.backbone.requires_grad_(True)
        params = [*self.task_parameters(self.active_task), *self.backbone.parameters()]
        return torch.optim.SGD({id(p): p for p in params}.values(), lr=0.5)


@pytest.mark.parametrize(
    ("module_cls", "stage", "message"),
    [
        (SharedAdapterModule, 2, r"stage 2 \(trained 'animals'\):\n  task 'colors': (accuracy|test logits) changed"),
        # the backbone hash is checked from the first stage on, so this is caught before any task is at risk
        (UnfrozenBackboneModule, 1, r"stage 1 \(trained 'colors'\):\n  backbone weights changed"),
    ],
)
def test_guard_stops_a_stream_that_forgets(module_cls, stage, message, toy_task_dir, tokenizer, tmp_path):
    run = stream(module_cls, toy_task_dir, tokenizer, tmp_path / "run")
    with pytest.raises(ForgettingError, match=message):
        run.run()
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["completed_stages"] == stage  # the failing stage is on disk with its verdict
    assert saved["stages"][stage - 1]["guard"]["passed"] is False


def test_report_mode_finishes_and_records_the_forgetting(toy_task_dir, tokenizer, tmp_path):
    results = stream(SharedAdapterModule, toy_task_dir, tokenizer, tmp_path / "run", guard_mode="report").run()
    assert results["completed_stages"] == 3
    assert [s["guard"]["passed"] for s in results["stages"]] == [True, False, False]

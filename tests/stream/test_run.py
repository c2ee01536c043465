import json
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from seqadapt.adapters import AdapterConfig
from seqadapt.artefacts import ArtefactError, has_artefact, read_manifest, task_artefact_dir
from seqadapt.backbone import weights_hash
from seqadapt.data import SplitSizes, build_splits, load_task_stream, read_source
from seqadapt.guard import ForgettingError
from seqadapt.selection import SelectionConfig
from seqadapt.model import OptimConfig, SeqAdaptModule
from seqadapt.strategies import STRATEGIES
from seqadapt.stream import LoaderConfig, StreamRun
from tests.conftest import TOY_TASKS, tiny_model

ORDER = list(TOY_TASKS)


def trainer() -> pl.Trainer:
    return pl.Trainer(
        max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, num_sanity_val_steps=0, deterministic=True,
    )


def stream(
    module_cls, task_dir: Path, tokenizer, out: Path, strategy: str = "adapter", backbone_seed: int = 0,
    order: list[str] = ORDER, **kwargs,
) -> StreamRun:
    specs = load_task_stream(order, task_dir)
    tasks = [build_splits(s, read_source(s), SplitSizes(train=96, val=16, test=48)) for s in specs]
    module = module_cls(
        tiny_model(seed=backbone_seed), AdapterConfig(bottleneck=8), strategy=STRATEGIES[strategy],
        optim=OptimConfig(learning_rate=5e-3), selection=SelectionConfig(projection_dim=16),  # ranpac's Gram stored too
    )
    kwargs.setdefault("make_trainer", trainer)
    return StreamRun(
        module, tasks, tokenizer, output_dir=out,
        loaders=LoaderConfig(max_length=16, batch_size=16, eval_batch_size=32), **kwargs,
    )


def test_three_task_stream_keeps_earlier_tasks_exact(toy_task_dir, tokenizer, tmp_path):
    run = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run")
    backbone_before = weights_hash(run.module.backbone)
    results = run.run().to_dict()

    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["score_matrix"] == results["score_matrix"]
    matrix = saved["score_matrix"]
    for j in range(3):  # every later row repeats the accuracy recorded when task j was learned
        assert [matrix[i][j] for i in range(j, 3)] == [matrix[j][j]] * (3 - j)
    assert saved["metrics"]["bwt"] == 0.0
    assert [s["guard"]["passed"] for s in saved["stages"]] == [True, True, True]
    assert saved["stages"][2]["guard"]["checked"] == ORDER[:2]
    assert weights_hash(run.module.backbone) == backbone_before == saved["backbone_sha256"]
    assert set(saved["params_per_task"]) == set(ORDER)
    assert all(s["train_seconds"] > 0 for s in saved["stages"])
    for i, stage in enumerate(saved["stages"]):  # task-ID-free inference over every task seen so far
        selection = stage["task_selection"]
        assert selection["candidates"] == ORDER[: i + 1]
        # the mixed-task pass gives the same accuracy with task IDs as the guard's single-task evaluations
        assert selection["with_task_id"]["per_task"] == dict(zip(ORDER, matrix[i][: i + 1]))
        assert set(selection["selectors"]) == {"entropy", "prototype"}
        for result in selection["selectors"].values():
            assert 0.0 <= result["accuracy"] <= result["task_id_accuracy"] <= 1.0
    assert (tmp_path / "run" / "task_selection.png").is_file()


def test_selection_can_be_switched_off_and_unknown_selectors_fail_before_training(toy_task_dir, tokenizer, tmp_path):
    results = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "off", selectors=[]).run().to_dict()
    assert [s["task_selection"] for s in results["stages"]] == [None, None, None]
    assert not (tmp_path / "off" / "task_selection.png").exists()
    with pytest.raises(KeyError, match="unknown task selector 'oracle'"):
        stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "bad", selectors=["oracle"])


class SharedAdapterModule(SeqAdaptModule):
    """Broken on purpose: every task after the first reuses the first task's adapters."""

    def add_task(self, spec, train=None):
        super().add_task(spec, train)
        first = self.tasks[0]
        for slot in self.adapters.slots:
            slot.adapters[spec.name] = slot.adapters[first]


class StatisticsOverwritingModule(SeqAdaptModule):
    """Broken on purpose: adding a task shifts the first task's class means (prototype, Mahalanobis)."""

    statistic = "centroids"

    def add_task(self, spec, train=None):
        super().add_task(spec, train)
        if len(self.tasks) > 1:
            getattr(self.selection[self.tasks[0]], self.statistic).add_(1.0)


class GramOverwritingModule(StatisticsOverwritingModule):
    """Broken on purpose: adding a task adds to the first task's RanPAC Gram matrix, as an update-in-place
    ridge selector that kept one running G would."""

    statistic = "gram"


class UnfrozenBackboneModule(SeqAdaptModule):
    """Broken on purpose: the backbone is trained along with the active task."""

    def configure_optimizers(self):
        self.backbone.requires_grad_(True)
        params = [*self.task_parameters(self.active_task), *self.backbone.parameters()]
        return torch.optim.SGD({id(p): p for p in params}.values(), lr=0.5)


@pytest.mark.parametrize(
    ("module_cls", "stage", "message"),
    [
        (SharedAdapterModule, 2, r"stage 2 \(trained 'animals'\):\n  task 'colors': (accuracy|test outputs|test logits) changed"),
        (StatisticsOverwritingModule, 2, r"stage 2 \(trained 'animals'\):\n  task 'colors': its task-selection statistics"),
        (GramOverwritingModule, 2, r"stage 2 \(trained 'animals'\):\n  task 'colors': its task-selection statistics"),
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
    results = stream(SharedAdapterModule, toy_task_dir, tokenizer, tmp_path / "run", guard_mode="report").run().to_dict()
    assert results["completed_stages"] == 3
    assert [s["guard"]["passed"] for s in results["stages"]] == [True, False, False]


def probes(results: dict) -> list[tuple[str, str]]:
    """Every (task, logits SHA-256) the guard saw, stage by stage."""
    return [(e["task"], e["logits_sha256"]) for stage in results["stages"] for e in stage["evaluations"]]


def crashing_at(stage: int):
    """A trainer factory whose stage ``stage`` dies, as a run killed mid-stream would."""
    made = []

    def make() -> pl.Trainer:
        made.append(1)
        if len(made) == stage:
            raise MemoryError(f"simulated crash in stage {stage}")
        return trainer()

    return make


def test_same_seed_and_config_give_bit_identical_runs(toy_task_dir, tokenizer, tmp_path):
    first = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "a").run().to_dict()
    second = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "b").run().to_dict()
    assert first["score_matrix"] == second["score_matrix"]
    assert probes(first) == probes(second) and len(probes(first)) == 6
    for task in ORDER:
        weights = [read_manifest(task_artefact_dir(tmp_path / run, task))["weights"]["sha256"] for run in "ab"]
        assert weights[0] == weights[1]


def test_later_stage_error_keeps_earlier_stages_and_resume_matches_an_uninterrupted_run(
    toy_task_dir, tokenizer, tmp_path
):
    uninterrupted = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "full").run().to_dict()

    crashed = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", make_trainer=crashing_at(3))
    with pytest.raises(MemoryError, match="stage 3"):
        crashed.run()
    assert [has_artefact(tmp_path / "run", task) for task in ORDER] == [True, True, False]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["completed_stages"] == 2

    resumed = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", resume=True).run().to_dict()
    assert resumed["resumed"]["stages_restored"] == 2
    assert resumed["resumed"]["verification"]["checked"] == ORDER[:2]
    assert resumed["resumed"]["verification"]["passed"] is True
    assert resumed["score_matrix"] == uninterrupted["score_matrix"]
    assert probes(resumed) == probes(uninterrupted)
    assert json.loads((tmp_path / "run" / "results.json").read_text())["completed_stages"] == 3


def test_resume_on_another_backbone_is_refused_naming_both_hashes(toy_task_dir, tokenizer, tmp_path):
    first = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", make_trainer=crashing_at(2))
    with pytest.raises(MemoryError, match="simulated crash in stage 2"):
        first.run()
    other = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", backbone_seed=1, resume=True)
    with pytest.raises(ArtefactError, match="artefact for task 'colors' in .* was trained on backbone") as caught:
        other.run()
    assert first.verifier.guard.backbone_sha256 in str(caught.value) and other.verifier.guard.backbone_sha256 in str(caught.value)
    assert has_artefact(tmp_path / "run", "colors")  # the refused resume changed nothing on disk


def test_a_finetune_run_resumes_from_its_checkpoint_as_if_never_killed(toy_task_dir, tokenizer, tmp_path):
    """No per-task artefact can stand for a stage that changes the backbone: the last stage's checkpoint does."""
    order = ORDER[:2]
    whole = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "whole", strategy="finetune", order=order, guard_mode="report")
    expected = whole.run().to_dict()
    with pytest.raises(MemoryError, match="simulated crash in stage 2"):
        stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", strategy="finetune", order=order, guard_mode="report",
               make_trainer=crashing_at(2)).run()
    resumed = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", strategy="finetune", order=order, guard_mode="report",
                     resume=True).run().to_dict()
    assert resumed["resumed"]["stages_restored"] == 1 and resumed["score_matrix"] == expected["score_matrix"]
    assert [[e["logits_sha256"] for e in s["evaluations"]] for s in resumed["stages"]] == [
        [e["logits_sha256"] for e in s["evaluations"]] for s in expected["stages"]]
    assert not (tmp_path / "run" / "artefacts").exists() and (tmp_path / "run" / "checkpoint").is_dir()


def test_tensor_checks_between_full_checks_give_the_same_matrix(toy_task_dir, tokenizer, tmp_path):
    every_stage = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "full").run().to_dict()
    last_only = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "last", full_check_every=None).run().to_dict()
    assert last_only["score_matrix"] == every_stage["score_matrix"]
    assert [s["guard"]["kind"] for s in last_only["stages"]] == ["full", "tensors", "full"]
    assert last_only["stages"][1]["carried"] == {ORDER[0]: every_stage["score_matrix"][0][0]}
    assert [e["task"] for e in last_only["stages"][1]["evaluations"]] == [ORDER[1]]
    assert last_only["stages"][2]["guard"]["checked"] == ORDER[:2]  # the last stage re-evaluates everything
    assert all(s["guard"]["passed"] for s in last_only["stages"])


@pytest.mark.parametrize(
    ("module_cls", "changed"), [(SharedAdapterModule, "adapters"), (StatisticsOverwritingModule, "selection.tasks.colors.centroids"),
                            (GramOverwritingModule, "selection.tasks.colors.gram")]
)
def test_tensor_check_stops_a_stream_that_forgets(module_cls, changed, toy_task_dir, tokenizer, tmp_path):
    run = stream(module_cls, toy_task_dir, tokenizer, tmp_path / "run", full_check_every=None)
    with pytest.raises(ForgettingError, match=rf"stage 2 \(trained 'animals'\):\n  task 'colors': \d+ of its own tensor.*{changed}"):
        run.run()


def test_tensor_checks_are_refused_for_strategies_that_change_shared_weights(toy_task_dir, tokenizer, tmp_path):
    with pytest.raises(ValueError, match="strategy 'finetune' changes shared weights.*full_check_every=1"):
        stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", strategy="finetune", full_check_every=2)


def test_resumed_tasks_get_tensor_snapshots_too(toy_task_dir, tokenizer, tmp_path):
    uninterrupted = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "full").run().to_dict()
    crashed = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", make_trainer=crashing_at(2),
                     full_check_every=None)
    with pytest.raises(MemoryError, match="stage 2"):
        crashed.run()
    resumed = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", resume=True, full_check_every=None).run().to_dict()
    assert resumed["resumed"]["stages_restored"] == 1
    assert [s["guard"]["kind"] for s in resumed["stages"]] == ["full", "tensors", "full"]
    assert all(s["guard"]["passed"] for s in resumed["stages"])
    assert resumed["score_matrix"] == uninterrupted["score_matrix"]


def test_runs_with_different_seeds_share_no_stage_training(toy_task_dir, tokenizer, tmp_path):
    """With seed + stage index, [animals] under seed 1 retrained seed 0's stage-2 animals bit for bit."""
    two = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "a", order=ORDER[:2], seed=0, selectors=[]).run()
    one = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "b", order=ORDER[1:2], seed=1, selectors=[]).run()
    assert two.stages[1].evaluations[-1].task == one.stages[0].evaluations[-1].task == ORDER[1]
    assert two.stages[1].evaluations[-1].logits_sha256 != one.stages[0].evaluations[-1].logits_sha256

"""Baselines in the same driver: they must really forget (or train jointly), and say so."""

import pytest
import torch

from seqadapt.adapters import AdapterConfig
from seqadapt.backbone import weights_hash
from seqadapt.data import TaskSpec
from seqadapt.model import SeqAdaptModule, parameter_budget
from seqadapt.model.steps import batch_loss
from seqadapt.strategies import SHARED_ADAPTER, get_strategy
from tests.conftest import tiny_model
from tests.stream.test_run import stream


def spec(name: str) -> TaskSpec:
    return TaskSpec(name=name, labels=("x", "y"), source={})


def module_for(strategy: str) -> SeqAdaptModule:
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8), strategy=get_strategy(strategy))
    module.add_task(spec("a"))
    module.add_task(spec("b"))
    return module


def test_unknown_strategy_lists_choices():
    with pytest.raises(ValueError, match=r"unknown strategy 'lora'.*adapter.*finetune"):
        get_strategy("lora")


def test_finetune_trains_backbone_and_only_the_active_head():
    module = module_for("finetune")
    module.set_active_task("b")
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    assert {id(p) for p in module.backbone.parameters()} <= trainable
    assert not {id(p) for p in module.heads["a"].parameters()} & trainable
    module.train()
    assert module.backbone.training  # dropout on while fine-tuning


def test_shared_adapter_is_one_set_of_tensors_for_all_tasks():
    module = module_for("shared_adapter")
    assert module.adapters.tasks == [SHARED_ADAPTER]
    module.set_active_task("a")
    shared = {id(p) for p in module.adapters.task_parameters(SHARED_ADAPTER)}
    assert shared <= {id(p) for p in module.parameters() if p.requires_grad}
    assert parameter_budget(module, "a").adapter_params == 0  # owned by no single task


def test_joint_step_routes_each_example_to_its_head():
    module = module_for("joint")
    module.set_active_tasks(["a", "b"])
    ids = torch.randint(5, 1000, (6, 8))
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
             "labels": torch.tensor([0, 1, 0, 1, 1, 0]), "task_index": torch.tensor([0, 0, 1, 1, 0, 1])}
    module.eval()
    hidden = module.encode(ids, batch["attention_mask"])
    expected = sum(
        torch.nn.functional.cross_entropy(
            module.heads[t](hidden[batch["task_index"] == i], batch["attention_mask"][batch["task_index"] == i]),
            batch["labels"][batch["task_index"] == i], reduction="sum")
        for i, t in enumerate(["a", "b"])
    ) / 6
    assert torch.allclose(batch_loss(module, batch, "train"), expected)


@pytest.mark.parametrize("strategy", ["finetune", "shared_adapter", "finetune_top_k", "layernorm"])
def test_forgetting_baselines_are_recorded_in_report_mode(strategy, toy_task_dir, tokenizer, tmp_path):
    run = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path, strategy=strategy, guard_mode="report")
    before = weights_hash(run.module.backbone)
    results = run.run().to_dict()
    assert results["completed_stages"] == 3
    later = [stage["guard"] for stage in results["stages"][1:]]
    assert all(not verdict["passed"] for verdict in later)
    assert (weights_hash(run.module.backbone) != before) == get_strategy(strategy).train_backbone


def test_joint_has_one_stage_and_one_row(toy_task_dir, tokenizer, tmp_path):
    results = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path, strategy="joint", guard_mode="report").run().to_dict()
    assert results["completed_stages"] == 1 and len(results["score_matrix"]) == 1
    assert all(value is not None for value in results["score_matrix"][0])
    assert results["metrics"]["bwt"] is None and results["metrics"]["acc"] > 0
    assert results["stages"][0]["task"] == "+".join(results["tasks"])


@pytest.mark.parametrize("top_k", [1, 2])
def test_finetune_top_k_trains_the_top_layers_and_the_active_head_only(top_k):
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8), strategy=get_strategy("finetune_top_k", top_k))
    module.add_task(spec("a"))
    module.set_active_task("a")
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    layers = len(module.backbone.encoder.layer)
    top = {f"backbone.encoder.layer.{i}." for i in range(layers - top_k, layers)}
    assert trainable == {name for name, _ in module.named_parameters()
                         if name.startswith(("heads.a.", *top))}
    assert any(name.startswith(tuple(top)) for name in trainable)


def test_finetune_top_k_beyond_the_layers_or_on_another_strategy_is_refused():
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8), strategy=get_strategy("finetune_top_k", 3))
    module.add_task(spec("a"))
    with pytest.raises(ValueError, match=r"strategy.top_k=3: this backbone's stack has 2 layers; choose 1..2"):
        module.set_active_task("a")
    with pytest.raises(ValueError, match="strategy.top_k=2 applies to strategy=finetune_top_k only"):
        get_strategy("finetune", 2)
    with pytest.raises(ValueError, match="strategy.top_k must be a whole number >= 1"):
        get_strategy("finetune_top_k", 0)


def test_layernorm_trains_only_the_backbones_layer_norms_and_the_active_head(family_dirs):
    from seqadapt.backbone import BackboneConfig, load_backbone

    for model, norm_word in ((tiny_model(), "LayerNorm"),
                             (load_backbone(BackboneConfig(name="llama", path=str(family_dirs["llama"]))).model, "norm")):
        module = SeqAdaptModule(model, AdapterConfig(bottleneck=8), strategy=get_strategy("layernorm"))
        module.add_task(spec("a"))
        module.set_active_task("a")
        trainable = [name for name, p in module.named_parameters() if p.requires_grad]
        backbone = [name for name in trainable if name.startswith("backbone.")]
        assert backbone and all(norm_word in name for name in backbone)
        assert set(trainable) - set(backbone) == {name for name, _ in module.heads["a"].named_parameters(prefix="heads.a")}


def text_task(name: str, prompt: str) -> TaskSpec:
    return TaskSpec(name=name, source={}, type="text_to_text", prompt=prompt, max_target_length=4)


def test_a_joint_text_to_text_batch_is_each_tasks_own_teacher_forced_loss(family_dirs):
    """Text-to-text heads cannot read a shared pass: a joint batch's loss is what each task's rows score in their
    own single-task batches (the path sequential training takes), summed and averaged over the whole batch."""
    from datasets import Dataset

    from seqadapt.backbone import BackboneConfig, load_backbone
    from seqadapt.data import make_loader
    from seqadapt.kinds import get_kind

    backbone = load_backbone(BackboneConfig(name="gpt2", path=str(family_dirs["gpt2"])))
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=8), strategy=get_strategy("joint"),
                            tokenizer=backbone.tokenizer)
    kind, tasks = get_kind("text_to_text"), [text_task("a", "{input} colour:"), text_task("b", "animal in {input}:")]
    sources = [Dataset.from_dict({"input": ["the red house", "a navy river by the old tree"], "target": ["red", "blue"]}),
               Dataset.from_dict({"input": ["one big cat", "a puppy"], "target": ["cat", "dog"]})]
    rows = [kind.prepare(task, source, "train") for task, source in zip(tasks, sources)]
    for task in tasks:
        module.add_task(task)
    module.set_active_tasks(["a", "b"])
    module.eval()  # no dropout: the two paths must see the same network
    joint = next(iter(make_loader(list(zip(tasks, rows)), backbone.tokenizer, max_length=16, batch_size=4)))
    assert joint["task_index"].tolist() == [0, 0, 1, 1]
    expected = 0.0
    for task, part in zip(tasks, rows):
        alone = next(iter(make_loader((task, part), backbone.tokenizer, max_length=16, batch_size=4)))
        outputs = kind.train_outputs(module, task.name, alone)
        expected += kind.loss(outputs, alone["labels"], module.heads[task.name], reduction="sum").item()
    assert batch_loss(module, joint, "train").item() == pytest.approx(expected / 4, rel=1e-5)


def test_a_joint_run_of_text_to_text_tasks_trains_the_language_model_and_evaluates_each_task(
    family_dirs, toy_task_dir, tmp_path
):
    import yaml

    from seqadapt.cli.train import run
    from tests.cli.test_train import FAST, compose_train
    from tests.families.tiny import write_toy_text_task

    write_toy_text_task(toy_task_dir)  # color_words, on the colors files
    definition = yaml.safe_load((toy_task_dir / "color_words.yaml").read_text())
    definition.update(name="animal_words", prompt="{input} animal:")
    definition["source"]["files"] = {"train": "animals_train.csv", "test": "animals_test.csv"}
    (toy_task_dir / "animal_words.yaml").write_text(yaml.safe_dump(definition))
    overrides = [o for o in FAST if not o.startswith("backbone=")]
    cfg = compose_train([*overrides, "backbone=pretrained", f"backbone.name={family_dirs['gpt2']}", "strategy=joint",
                         f"task_dir={toy_task_dir}", "tasks.order=[color_words,animal_words]",
                         "selection.selectors=[mahalanobis]"])
    results = run(cfg, tmp_path / "run").to_dict()
    assert results["completed_stages"] == 1 and results["stages"][0]["task"] == "color_words+animal_words"
    evaluations = results["stages"][0]["evaluations"]
    assert [e["task"] for e in evaluations] == ["color_words", "animal_words"]
    assert all(e["metric"] == "exact_match" and set(e["metrics"]) == {"exact_match", "token_f1", "rouge_l"}
               and e["examples"] == 24 for e in evaluations)
    assert results["score_matrix"] == [[e["score"] for e in evaluations]]
    guard = results["stages"][0]["guard"]  # joint fine-tunes the language model itself, and the guard reports it
    assert not guard["passed"] and guard["violations"][0].startswith("backbone weights changed")

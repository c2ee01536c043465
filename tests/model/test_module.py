import pytest
import pytorch_lightning as pl
import torch

from seqadapt.adapters import AdapterConfig
from datasets import Dataset

from seqadapt.data import TaskSpec, make_loader
from seqadapt.model import SeqAdaptModule, mixed_outputs, parameter_budget
from tests.conftest import tiny_model



def spec(name: str, n: int = 3) -> TaskSpec:
    return TaskSpec(name=name, labels=tuple(f"l{i}" for i in range(n)), source={"kind": "local_files", "files": {}})


def make_module(**adapter) -> SeqAdaptModule:
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8, **adapter))
    module.add_task(spec("a"))
    module.add_task(spec("b", 2))
    return module


def batch(n: int = 4, length: int = 10) -> dict[str, torch.Tensor]:
    ids = torch.randint(5, 1000, (n, length))
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids)}


@pytest.mark.parametrize("train_layer_norm", [False, True])
def test_only_the_active_task_gets_gradients(train_layer_norm):
    module = make_module(train_layer_norm=train_layer_norm)
    module.set_active_task("b")
    module.train()
    module(**batch()).sum().backward()
    active = {id(p) for p in module.task_parameters("b")}
    for name, param in module.named_parameters():
        if id(param) in active:
            assert param.grad is not None and param.grad.abs().sum() > 0, name
        else:
            assert param.grad is None, f"{name} got a gradient while task 'b' was active"


class _Probe(pl.Callback):
    """Records, at every training batch, whether any backbone module was in train mode."""

    def __init__(self) -> None:
        self.backbone_training: list[bool] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.backbone_training.append(any(m.training for m in pl_module.backbone.modules()))


def test_fit_optimises_only_the_active_task_and_keeps_backbone_in_eval(tokenizer):
    module = make_module()
    module.set_active_task("a")
    examples = Dataset.from_dict({"text": ["red sky", "blue sea", "green tree", "red car"] * 4, "label": [0, 1, 2, 0] * 4})
    probe = _Probe()
    trainer = pl.Trainer(
        max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False, callbacks=[probe]
    )
    before_b = [p.detach().clone() for p in module.task_parameters("b")]
    trainer.fit(module, make_loader((module.specs["a"], examples), tokenizer, max_length=16, batch_size=4, shuffle=True))
    optimised = {id(p) for group in trainer.optimizers[0].param_groups for p in group["params"]}
    assert optimised == {id(p) for p in module.task_parameters("a")}
    assert probe.backbone_training == [False] * 4
    assert all(torch.equal(p, q) for p, q in zip(module.task_parameters("b"), before_b))


def test_backbone_stays_in_eval_mode_when_module_trains():
    module = make_module()
    module.train()
    assert module.training and module.heads["a"].training
    assert not any(m.training for m in module.backbone.modules())


def test_unknown_and_duplicate_tasks_are_refused():
    module = make_module()
    with pytest.raises(KeyError, match=r"unknown task\(s\) \['c'\]"):
        module.set_active_task("c")
    with pytest.raises(ValueError, match="already added"):
        module.add_task(spec("a"))


def test_forward_without_active_task_explains_what_to_do():
    module = make_module()
    with pytest.raises(RuntimeError, match="set_active_task"):
        module(**batch())


def test_parameter_budget_adds_up():
    module = make_module(train_layer_norm=True)
    budget = parameter_budget(module, "a")
    d, m, layers = 32, 8, 2
    assert budget.adapter_params == 2 * layers * (2 * m * d + d + m)
    assert budget.head_params == d * 3 + 3
    assert budget.layer_norm_params == 2 * layers * 2 * d
    assert budget.total_params == budget.adapter_params + budget.head_params + budget.layer_norm_params
    assert budget.bytes == 4 * budget.total_params
    backbone = sum(p.numel() for p in module.backbone.parameters() if not p.requires_grad)
    assert budget.percent_of_backbone == pytest.approx(100 * budget.total_params / backbone, rel=0.2)


def test_lightning_checkpoints_hold_task_tensors_but_no_frozen_backbone_weight(tokenizer, tmp_path):
    module = make_module()
    module.set_active_task("a")
    examples = Dataset.from_dict({"text": ["red sky", "blue sea", "green tree", "red car"], "label": [0, 1, 2, 0]})
    trainer = pl.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, default_root_dir=tmp_path)
    trainer.fit(module, make_loader((module.specs["a"], examples), tokenizer, max_length=16, batch_size=4))
    trainer.save_checkpoint(tmp_path / "last.ckpt")

    saved = torch.load(tmp_path / "last.ckpt", weights_only=True)["state_dict"]
    task_keys = {key for task in module.tasks for key in module.tensors.of(task)}
    assert set(saved) == task_keys
    assert any(key.startswith("backbone.encoder.") for key in task_keys)  # adapters live inside the backbone

    fresh = make_module()
    fresh.load_state_dict(saved, strict=False)
    for key, value in module.tensors.of("a").items():
        assert torch.equal(fresh.tensors.of("a")[key], value)


@pytest.mark.parametrize("train_layer_norm", [False, True])
def test_a_mixed_task_batch_equals_single_task_batches(train_layer_norm):
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8, init_scale=0.5, train_layer_norm=train_layer_norm))
    for name, n in (("a", 3), ("b", 2), ("c", 4)):
        module.add_task(spec(name, n))
    with torch.no_grad():  # biases and LayerNorm copies away from their init, so every task computes differently
        for task in "abc":
            for param in module.adapters.task_parameters(task):
                if param.dim() == 1:
                    param.add_(torch.randn_like(param) * 0.1)
    module.eval()
    torch.manual_seed(1)
    ids = torch.randint(5, 1000, (7, 12))
    mask = torch.ones_like(ids)
    mask[[1, 4], 8:] = 0  # padded rows: the mixed batch pads them alongside longer ones
    tasks = ["a", "b", "c", "b", "a", "c", "c"]
    with torch.inference_mode():
        mixed = mixed_outputs(module, ids, mask, tasks)
        for task in "abc":
            rows = [i for i, t in enumerate(tasks) if t == task]
            with module.routed_to(task):
                alone = module(ids[rows], mask[rows])  # a batch of this task's rows only
            for row, expected in zip(rows, alone):
                assert mixed[row].shape == (module.specs[task].num_labels,)
                assert torch.allclose(mixed[row], expected, atol=1e-5)
                assert mixed[row].argmax() == expected.argmax()
        bare = mixed_outputs(module, ids, mask, ["a"] * 7)  # one task: the ordinary routed pass, bit for bit
        with module.routed_to("a"):
            assert torch.equal(torch.stack(bare), module(ids, mask))
    assert module.adapters.router.rows is None  # routing is put back after the pass


def test_mixed_batch_with_a_wrong_task_list_is_refused():
    module = make_module()
    with pytest.raises(ValueError, match="2 task names for a batch of 4 rows"):
        mixed_outputs(module, **batch(), tasks=["a", "b"])
    with pytest.raises(KeyError, match=r"unknown task\(s\) \['z'\]"):
        mixed_outputs(module, **batch(), tasks=["a", "b", "z", "a"])

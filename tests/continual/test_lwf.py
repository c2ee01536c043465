"""LwF does what Li & Hoiem (2017) say: the targets are the previous model's outputs of every earlier head on
the new task's inputs, and the term is the KL divergence of the softened distributions."""

import numpy as np
import pytest
import torch

from seqadapt.continual.lwf import LwF, LwFConfig, distillation
from tests.continual.units import one_task_module, splits
from seqadapt.stream import LoaderConfig
from seqadapt.stream.loaders import StreamLoaders


def test_distillation_is_the_kl_divergence_of_the_softened_distributions():
    generator = torch.Generator().manual_seed(0)
    new, old = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    T = 2.0
    p = np.exp(old.numpy() / T) / np.exp(old.numpy() / T).sum(axis=1, keepdims=True)  # by hand, numpy
    q = np.exp(new.numpy() / T) / np.exp(new.numpy() / T).sum(axis=1, keepdims=True)
    expected = float(np.sum(p * np.log(p / q)) / 5)
    assert float(distillation(new, old, T)) == pytest.approx(expected, rel=1e-5)


def test_the_targets_are_the_previous_models_outputs_for_every_earlier_head(tokenizer):
    module = one_task_module("lwf", tasks=("a", "b", "c"))  # a and b learned, c training
    loaders = StreamLoaders(tokenizer, LoaderConfig(max_length=12, batch_size=8, eval_batch_size=8))
    batch = next(iter(loaders.unshuffled_train(splits("c", 8))))
    module.eval()
    before = {}
    for task in ("a", "b"):  # what the model answered before the stage, read through the ordinary forward pass
        with torch.no_grad(), module.routed_to(task):
            before[task] = module(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
    plugin = LwF(LwFConfig())
    plugin.before_stage(module, [splits("c", 8)], loaders, seed=0)
    with torch.no_grad():  # the stage trains: the shared weights move
        for param in module.backbone.parameters():
            param.add_(0.05)
    module.train()
    targets = plugin.teacher_logits(module, batch)
    assert sorted(targets) == ["a", "b"]
    for task in ("a", "b"):
        torch.testing.assert_close(targets[task], before[task], rtol=0, atol=0)
    loss = plugin.training_loss(module, batch, torch.zeros(()))
    assert loss > 0  # the moved model no longer answers as before; the term pulls it back
    loss.backward()
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.backbone.parameters())
    assert all(p.grad is None for task in ("a", "b") for p in module.heads[task].parameters())  # heads frozen


def test_lwf_refuses_earlier_tasks_whose_outputs_are_not_class_logits(tokenizer):
    from seqadapt.data import TaskSpec

    module = one_task_module("lwf", tasks=())
    module.add_task(TaskSpec(name="score", source={}, type="regression"))
    module.add_task(TaskSpec(name="c", labels=("x", "y"), source={}))
    module.set_active_task("c")
    loaders = StreamLoaders(tokenizer, LoaderConfig())
    with pytest.raises(ValueError, match=r"strategy=lwf .* \['score'\] have no class logits"):
        LwF(LwFConfig()).before_stage(module, [splits("c", 8)], loaders, seed=0)

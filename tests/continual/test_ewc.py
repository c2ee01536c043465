"""Online EWC does what Kirkpatrick et al. (2017) and Schwarz et al. (2018) say: the penalty is
(lambda / 2) sum_i F_i (theta_i - theta*_i)^2, and F is the mean squared gradient of the task's batch loss."""

import numpy as np
import torch
from torch.nn import functional as F

from seqadapt.continual.ewc import EWC, EWCConfig, fisher_diagonal
from seqadapt.continual.plugin import trained_shared
from tests.continual.units import one_task_module, toy_splits


def test_the_penalty_is_half_lambda_times_the_fisher_weighted_squared_distance_and_grows_with_it():
    module = one_task_module("ewc")
    plugin = EWC(EWCConfig(ewc_lambda=3.0))
    shared = dict(trained_shared(module))
    generator = torch.Generator().manual_seed(0)
    plugin.fisher = {name: torch.rand(p.shape, generator=generator) for name, p in shared.items()}
    plugin.anchor = {name: p.detach().clone() for name, p in shared.items()}
    step = {name: torch.randn(p.shape, generator=generator) * 1e-2 for name, p in shared.items()}
    weighted = sum(float(np.sum(plugin.fisher[n].numpy().astype(np.float64) * step[n].numpy().astype(np.float64) ** 2))
                   for n in shared)  # sum_i F_i delta_i^2, by hand in float64
    penalties = []
    for scale in (0.0, 1.0, 2.0):
        with torch.no_grad():
            for name, param in shared.items():
                param.copy_(plugin.anchor[name] + scale * step[name])
        penalties.append(float(plugin.penalty(module)))
    assert penalties[0] == 0.0
    np.testing.assert_allclose(penalties[1:], [0.5 * 3.0 * weighted, 0.5 * 3.0 * 4 * weighted], rtol=1e-4)


def test_the_fisher_is_the_mean_squared_gradient_of_each_batch_loss(tokenizer):
    module, task, loaders = toy_splits("ewc", tokenizer, train=48, eval_batch_size=16)  # 3 batches
    fisher = fisher_diagonal(module, task, loaders)
    name = task.spec.name
    shared = dict(trained_shared(module))
    expected = {key: torch.zeros_like(p) for key, p in shared.items()}
    module.eval()
    for batch in loaders.unshuffled_train(task):  # by hand: cross-entropy of the head's logits, backward, square
        module.zero_grad()
        with module.routed_to(name):
            logits = module(batch["input_ids"], batch["attention_mask"], batch.get("token_type_ids"))
        F.cross_entropy(logits, batch["labels"]).backward()
        for key, param in shared.items():
            if param.grad is not None:  # weights the pass never reads (the pooler) have no gradient: F = 0
                expected[key] += param.grad.pow(2) / 3
    for key in shared:
        torch.testing.assert_close(fisher[key], expected[key], rtol=1e-5, atol=1e-12)


def test_online_fisher_decays_the_earlier_tasks_and_adds_the_new_one(tokenizer):
    module, task, loaders = toy_splits("ewc", tokenizer, train=32, eval_batch_size=16)
    plugin = EWC(EWCConfig(decay=0.5))
    plugin.after_stage(module, [task], loaders, seed=0)
    first = {k: v.clone() for k, v in plugin.fisher.items()}
    plugin.after_stage(module, [task], loaders, seed=0)  # the same task again: F <- 0.5 F + F = 1.5 F
    for key, value in plugin.fisher.items():
        torch.testing.assert_close(value, 1.5 * first[key])
    assert all(torch.equal(plugin.anchor[k], p) for k, p in trained_shared(module))

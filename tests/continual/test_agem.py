"""A-GEM (Chaudhry et al. 2019, eq. 11): a gradient that conflicts with the memory's reference gradient is
projected to g - (g.r / r.r) r, whose dot product with r is then zero; one that does not is left alone."""

import torch
from torch.nn import functional as F

from seqadapt.continual.agem import AGEM, AGEMConfig, project
from seqadapt.stream import LoaderConfig
from seqadapt.stream.loaders import StreamLoaders
from tests.continual.units import one_task_module, splits


def test_a_conflicting_gradient_is_projected_onto_the_plane_orthogonal_to_the_reference():
    g, r = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.0, 1.0, 1.0])  # g.r = -1.5, r.r = 2
    torch.testing.assert_close(project(g, r), torch.tensor([1.0, -2.0 + 0.75, 0.5 + 0.75]))  # by hand
    assert float(torch.dot(project(g, r), r)) == 0.0
    agreeing = torch.tensor([1.0, 2.0, 0.0])
    assert project(agreeing, r) is agreeing


def test_after_backward_leaves_a_gradient_with_a_non_negative_dot_product_with_the_memorys(tokenizer):
    module = one_task_module("agem", tasks=("a", "b"))
    loaders = StreamLoaders(tokenizer, LoaderConfig(max_length=12, batch_size=8, eval_batch_size=8))
    plugin = AGEM(AGEMConfig(rows_per_task=8, reference_size=8))
    plugin.memory.add(splits("a", 16), loaders, seed=0)
    module.eval()  # no dropout: the reference gradient recomputed below is the one the hook used
    conflicts = 0
    for seed in range(4):
        plugin.before_stage(module, [splits("b", 8)], loaders, seed=seed)
        batch = next(iter(loaders.unshuffled_train(splits("b", 8, seed=seed))))
        module.zero_grad()
        F.cross_entropy(module(batch["input_ids"], batch["attention_mask"]), batch["labels"]).backward()
        params = [p for p in module.parameters() if p.grad is not None]
        before = torch.cat([p.grad.reshape(-1) for p in params]).clone()
        plugin.after_backward(module)
        after = torch.cat([p.grad.reshape(-1) for p in params])
        generator = torch.Generator().manual_seed(seed)  # the hook's memory sample, drawn again
        picked = plugin.memory.sample(8, generator)
        module.zero_grad()
        (plugin.memory.summed_loss(module, picked, tokenizer) / 8).backward()
        reference = torch.cat([p.grad.reshape(-1) if p.grad is not None else torch.zeros(p.numel()) for p in params])
        assert float(torch.dot(after, reference)) >= -1e-6 * float(reference.norm() * after.norm())
        if float(torch.dot(before, reference)) < 0:
            conflicts += 1
            assert plugin.projected == 1
            torch.testing.assert_close(after, before - torch.dot(before, reference) / torch.dot(reference, reference)
                                       * reference)
        else:
            assert torch.equal(after, before) and plugin.projected == 0
        assert plugin.batches == 1  # counted per stage
    assert 0 < conflicts < 4  # these seeds exercise both branches

"""O-LoRA (Wang et al. 2023): earlier tasks' LoRAs never change, the orthogonality term is
sum over projections of sum_ij |A_old A_new^T|_ij, and at inference every task's LoRA is summed."""

import numpy as np
import pytest
import torch

from seqadapt.adapters.layer import SUMMED, SideSlot
from seqadapt.continual.olora import OLoRA, OLoRAConfig, l2_norms, orthogonality
from tests.continual.streams import method_stream
from tests.continual.units import one_task_module
from seqadapt.stream import StreamCallback


def lora_tensors(module, task):
    return {f"{i}.{name}": p.detach().clone() for i, slot in enumerate(module.adapters.slots)
            for name, p in slot.adapters[task].named_parameters()}


def test_the_orthogonality_and_l2_terms_are_the_papers_formulas():
    module = one_task_module("olora", tasks=("a", "b", "c"))
    slots = [s for s in module.adapters.slots if isinstance(s, SideSlot)]
    assert len(slots) == 2 * 2  # query and value in each of the tiny model's 2 layers
    expected = 0.0
    for slot in slots:  # numpy, float64: |[A_a; A_b] A_c^T| summed
        old = np.concatenate([slot.adapters[t].down.weight.detach().double().numpy() for t in ("a", "b")])
        expected += np.abs(old @ slot.adapters["c"].down.weight.detach().double().numpy().T).sum()
    assert float(orthogonality(module, "c", ["a", "b"])) == pytest.approx(expected, rel=1e-5)
    norms = sum(np.linalg.norm(p.detach().double().numpy()) for s in slots for p in s.adapters["c"].parameters())
    assert float(l2_norms(module, "c")) == pytest.approx(norms, rel=1e-5)
    module.log = lambda *args, **kwargs: None
    batch = {"labels": torch.zeros(2)}
    loss = OLoRA(OLoRAConfig(lambda_1=0.5, lambda_2=0.1)).training_loss(module, batch, torch.tensor(1.0))
    assert float(loss) == pytest.approx(1.0 + 0.5 * expected + 0.1 * norms, rel=1e-5)


def test_only_the_new_tasks_lora_and_head_train():
    module = one_task_module("olora", tasks=("a", "b"))
    trainable = {id(p) for p in module.parameters() if p.requires_grad}
    assert trainable == {id(p) for p in module.task_parameters("b")}
    assert not {id(p) for p in module.task_parameters("a")} & trainable


def test_every_tasks_lora_is_summed_at_inference_whatever_task_is_asked_for():
    module = one_task_module("olora", tasks=("a", "b"))
    with torch.no_grad():
        for slot in module.adapters.slots:
            for lora in slot.adapters.values():
                lora.up.weight.normal_(0, 0.1)  # B starts at zero: give every LoRA an update
    slot = module.adapters.slots[0]
    x = torch.randn(3, slot.base_layer.in_features)
    merged = slot.base_layer.weight + sum(lora.delta_weight() for lora in slot.adapters.values())  # W + sum s B A
    by_hand = x @ merged.T + slot.base_layer.bias
    for task in ("a", "b"):
        assert module.strategy.route_of(task) == SUMMED
        with module.routed_to(task):
            torch.testing.assert_close(slot(x), by_hand)
    ids = torch.randint(5, 1000, (2, 6))
    states = {}
    for task in ("a", "b"):
        with torch.no_grad(), module.routed_to(task):
            states[task] = module.encode(ids, torch.ones_like(ids))
    torch.testing.assert_close(states["a"], states["b"], rtol=0, atol=0)  # one model: no task ID in the states


class Snapshot(StreamCallback):
    def __init__(self):
        self.after = {}

    def on_stage_end(self, run, stage, record):
        self.after[stage.name] = {t: lora_tensors(run.module, t) for t in run.module.tasks}


def test_earlier_tasks_loras_never_change_while_later_tasks_train(toy_task_dir, tokenizer, tmp_path):
    snapshot = Snapshot()
    run = method_stream(toy_task_dir, tokenizer, tmp_path / "run", "olora", order=["colors", "animals"],
                        callbacks=[snapshot])
    run.run()
    first, last = snapshot.after["colors"]["colors"], snapshot.after["animals"]["colors"]
    assert first.keys() == last.keys() and all(torch.equal(first[k], last[k]) for k in first)
    trained = snapshot.after["animals"]["animals"]  # the new LoRA did train (B left zero, A moved)
    assert any(not torch.equal(trained[k], last[k]) for k in trained)

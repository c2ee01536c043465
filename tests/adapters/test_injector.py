import pytest
import torch
from transformers import AutoConfig, AutoModel

from seqadapt.adapters import AdapterConfig, TaskAdapters, UnsupportedArchitectureError, shared_state, shared_tensor_reader
from seqadapt.backbone import weights_hash
from tests.conftest import tiny_model


@pytest.mark.parametrize(("placement", "slots_per_layer"), [("houlsby", 2), ("pfeiffer", 1)])
def test_one_adapter_per_placement_per_layer(placement, slots_per_layer):
    model = tiny_model()
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=8, placement=placement))
    assert len(adapters.slots) == slots_per_layer * model.config.num_hidden_layers
    adapters.add_task("t")
    expected = len(adapters.slots) * (2 * 8 * 32 + 32 + 8)
    assert sum(p.numel() for p in adapters.task_parameters("t")) == expected


def test_unsupported_architecture_names_the_supported_ones():
    bloom = AutoModel.from_config(AutoConfig.for_model("bloom", hidden_size=32, n_layer=1, n_head=2, vocab_size=100))
    with pytest.raises(UnsupportedArchitectureError, match=r"BloomModel.*'bloom'.*Supported model types: .*bart.*gpt2.*t5"):
        TaskAdapters(bloom, AdapterConfig())


def test_adding_a_task_never_touches_another_tasks_tensors():
    model = tiny_model()
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=8, train_layer_norm=True))
    adapters.add_task("a")
    before = [(p, p.detach().clone()) for p in adapters.task_parameters("a")]
    adapters.add_task("b")
    after = list(adapters.task_parameters("a"))
    assert [p for p, _ in before] == after  # same tensor objects
    assert all(torch.equal(p, saved) for p, saved in before)  # same values
    assert not {id(p) for p in after} & {id(p) for p in adapters.task_parameters("b")}


def test_duplicate_task_is_refused():
    adapters = TaskAdapters(tiny_model(), AdapterConfig(bottleneck=8))
    adapters.add_task("a")
    with pytest.raises(ValueError, match="already has adapters"):
        adapters.add_task("a")


def test_shared_state_and_hash_ignore_injection_and_task_modules():
    model = tiny_model()
    reference_keys = set(model.state_dict())
    reference_hash = weights_hash(model)
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=8, train_layer_norm=True))
    adapters.add_task("a")
    assert set(shared_state(model)) == reference_keys
    assert weights_hash(model) == reference_hash
    with torch.no_grad():
        next(adapters.task_parameters("a")).add_(1.0)
    assert weights_hash(model) == reference_hash  # task tensors are not backbone
    with torch.no_grad():
        model.embeddings.word_embeddings.weight[0, 0] += 1.0
    assert weights_hash(model) != reference_hash


def test_per_task_layer_norms_are_separate_copies():
    model = tiny_model()
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=8, train_layer_norm=True))
    adapters.add_task("a")
    adapters.add_task("b")
    norm = adapters.norms[0]
    with torch.no_grad():
        norm.norms["b"].weight.mul_(2.0)
    assert torch.equal(norm.norms["a"].weight, norm.base_layer.weight)
    assert not norm.base_layer.weight.requires_grad
    assert norm.norms["a"].weight.requires_grad


def test_shared_tensor_reader_reads_the_backbone_afresh_without_task_tensors():
    model = tiny_model()
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=4, train_layer_norm=True))
    read = shared_tensor_reader(model)
    adapters.add_task("a")  # added after the reader was made: still not read
    tensors = read()
    assert set(shared_tensor_reader(model)()) == set(tensors)  # made after: task modules are skipped by name
    assert set(shared_state(model)) <= set(tensors)  # plus the non-persistent buffers state_dict leaves out
    assert not any(".adapters." in key or ".norms." in key for key in tensors)
    dense = model.encoder.layer[0].output.dense.base_layer
    dense.weight = torch.nn.Parameter(dense.weight.detach().clone())
    assert read()["encoder.layer.0.output.dense.weight"] is dense.weight

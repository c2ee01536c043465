import pytest
import torch

from seqadapt.adapters import AdapterConfig, BottleneckAdapter, TaskAdapters
from tests.conftest import tiny_model


def _hidden(model, input_ids):
    return model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).last_hidden_state


@pytest.mark.parametrize("model_type", ["bert", "roberta", "distilbert", "electra", "xlm-roberta"])
@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
def test_zero_init_adapter_is_exact_identity(model_type, placement):
    model = tiny_model(model_type)
    input_ids = torch.randint(5, 1000, (3, 12))
    bare = _hidden(model, input_ids)
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=8, init_scale=0.0, placement=placement))
    adapters.add_task("t")
    adapters.router.activate("t")
    assert torch.equal(_hidden(model, input_ids), bare)


def test_default_init_is_near_identity_but_not_identity():
    model = tiny_model()
    input_ids = torch.randint(5, 1000, (3, 12))
    bare = _hidden(model, input_ids)
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=8))
    adapters.add_task("t")
    adapters.router.activate("t")
    adapted = _hidden(model, input_ids)
    assert not torch.equal(adapted, bare)
    assert (adapted - bare).abs().max() < 1e-2


def test_init_is_truncated_normal_with_zero_biases():
    adapter = BottleneckAdapter(hidden_size=256, bottleneck=64, non_linearity="gelu", init_scale=0.05)
    for proj in (adapter.down, adapter.up):
        assert proj.weight.abs().max() <= 0.1 + 1e-7  # cut at 2 sigma
        assert 0.03 < proj.weight.std() < 0.05  # truncation shrinks the std below sigma
        assert torch.count_nonzero(proj.bias) == 0


@pytest.mark.parametrize(("d", "m"), [(32, 8), (384, 64), (768, 48)])
def test_parameter_count_is_2md_plus_d_plus_m(d, m):
    adapter = BottleneckAdapter(hidden_size=d, bottleneck=m, non_linearity="gelu", init_scale=0.01)
    assert sum(p.numel() for p in adapter.parameters()) == 2 * m * d + d + m == BottleneckAdapter.num_parameters(d, m)


def test_reduction_factor_sets_bottleneck():
    model = tiny_model()
    adapters = TaskAdapters(model, AdapterConfig(bottleneck=None, reduction_factor=4))
    adapters.add_task("t")
    assert adapters.slots[0].adapters["t"].down.out_features == 8


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bottleneck": 8, "reduction_factor": 4}, r"exactly one of bottleneck \(m\) or reduction_factor \(d/m\); got "
                                                   r"bottleneck=8, reduction_factor=4. Set the other one to null"),
        ({"bottleneck": None, "reduction_factor": None}, r"exactly one of .* got bottleneck=None, reduction_factor=None"),
        ({"non_linearity": "sigmoidish"}, r"unknown adapter non_linearity 'sigmoidish'; choose one of \('gelu'"),
        ({"placement": "everywhere"}, r"unknown adapter placement 'everywhere'; choose 'houlsby' or 'pfeiffer'"),
        ({"init_scale": -1.0}, r"adapter init_scale must be >= 0, got -1.0"),
    ],
)
def test_bad_adapter_config_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        AdapterConfig(**kwargs)


def test_router_contexts_put_the_routing_back_also_on_error():
    adapters = TaskAdapters(tiny_model(), AdapterConfig(bottleneck=8))
    adapters.add_task("t")
    router = adapters.router
    router.activate("t")
    with router.route(None):
        assert router.active is None
    rows = {"t": torch.tensor([0, 2])}
    with pytest.raises(RuntimeError, match="boom"), router.route_rows(rows):
        assert router.rows is rows and router.active == "t"
        raise RuntimeError("boom")
    assert router.active == "t" and router.rows is None

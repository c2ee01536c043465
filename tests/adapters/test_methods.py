"""LoRA, parallel adapters and (IA)^3 beside the bottleneck adapter: placed where the families table says, an
exact identity when fresh, routed per row, and equal to each method's definition."""

from __future__ import annotations

import copy

import pytest
import torch

from seqadapt.adapters import AdapterConfig, IA3Config, LoraConfig, ParallelConfig, TaskAdapters, adapter_config
from seqadapt.backbone import auto_class, weights_hash
from seqadapt.families import model_family
from tests.conftest import tiny_model
from tests.families.tiny import FAMILY_TYPES

METHODS = {"lora": LoraConfig(rank=4), "parallel": ParallelConfig(bottleneck=8), "ia3": IA3Config()}


def _model(model_type: str, family_dirs) -> torch.nn.Module:
    model = tiny_model() if model_type == "bert" else auto_class(model_type).from_pretrained(family_dirs[model_type])
    return model.eval().requires_grad_(False)  # frozen first: T5 computes in other kernels with gradients on


def _outputs(model: torch.nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """Every stack's work: the encoder's states, or the LM logits (through the decoder, and the encoder)."""
    mask = torch.ones_like(ids)
    architecture = model_family(model).architecture
    if architecture == "encoder":
        return model(input_ids=ids, attention_mask=mask).last_hidden_state
    if architecture == "encoder_decoder":
        return model(input_ids=ids, attention_mask=mask, decoder_input_ids=ids).logits
    return model(input_ids=ids, attention_mask=mask).logits


def _slots_per_layer(method: str, stack) -> int:
    """What each method wraps in one layer: distinct target projections (a fused one once), or the FFN."""
    if method == "lora":
        return len({stack.query, stack.value})
    if method == "ia3":
        return len({stack.key, stack.value}) + 1
    return 1


def _perturb(adapters: TaskAdapters, task: str, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in adapters.task_parameters(task):
            p.add_(0.1 * torch.randn(p.shape, generator=generator))


@pytest.mark.parametrize("model_type", ["bert", *FAMILY_TYPES])
@pytest.mark.parametrize("method", sorted(METHODS))
def test_a_method_is_placed_per_family_starts_as_identity_and_routes_rows(family_dirs, model_type, method):
    model = _model(model_type, family_dirs)
    ids = torch.randint(3, 300, (3, 7))
    bare, reference_hash = _outputs(model, ids), weights_hash(model)
    adapters = TaskAdapters(model, METHODS[method])
    stacks = model_family(model).stacks
    layers = [len(model.base_model.get_submodule(stack.layers)) for stack in stacks]
    assert len(adapters.slots) == sum(n * _slots_per_layer(method, s) for n, s in zip(layers, stacks))
    adapters.add_task("a")
    adapters.add_task("b")
    adapters.router.activate("a")
    assert torch.equal(_outputs(model, ids), bare)  # fresh: exactly the backbone
    _perturb(adapters, "a", 0)
    _perturb(adapters, "b", 1)
    alone = {}
    for task in ("a", "b"):
        adapters.router.activate(task)
        alone[task] = _outputs(model, ids)
        assert not torch.allclose(alone[task], bare)  # trained: the task's modules are on the path
    adapters.router.activate(None)
    with adapters.router.route_rows({"a": torch.tensor([0, 2]), "b": torch.tensor([1])}):
        mixed = _outputs(model, ids)
    torch.testing.assert_close(mixed[[0, 2]], alone["a"][[0, 2]])
    torch.testing.assert_close(mixed[[1]], alone["b"][[1]])
    assert weights_hash(model) == reference_hash


def test_lora_merged_weight_gives_the_same_outputs():
    model = tiny_model()
    ids = torch.randint(5, 1000, (2, 9))
    adapters = TaskAdapters(model, LoraConfig(rank=4, alpha=8.0))
    adapters.add_task("t")
    _perturb(adapters, "t", 0)
    adapters.router.activate("t")
    adapted = _outputs(model, ids)
    merged = tiny_model()
    with torch.no_grad():
        for index, layer in enumerate(model.encoder.layer):
            for name in ("query", "value"):
                update = getattr(layer.attention.self, name).adapters["t"]
                assert update.scaling == 2.0  # alpha / r
                getattr(merged.encoder.layer[index].attention.self, name).weight += update.delta_weight()
    torch.testing.assert_close(_outputs(merged, ids), adapted, rtol=1e-5, atol=1e-5)


def test_ia3_rescales_keys_values_and_the_feed_forward_activations():
    model = tiny_model()
    adapters = TaskAdapters(model, IA3Config())
    adapters.add_task("t")
    _perturb(adapters, "t", 0)
    adapters.router.activate("t")
    layer = model.encoder.layer[0]
    hidden, inner = torch.randn(2, 5, 32), torch.randn(2, 5, 64)
    for projection in (layer.attention.self.key, layer.attention.self.value):
        scale = projection.adapters["t"].scale
        torch.testing.assert_close(projection(hidden), projection.base_layer(hidden) * scale)
    assert layer.attention.self.query.__class__ is torch.nn.Linear  # queries are left alone
    ffn = layer.output.dense
    assert ffn.adapters["t"].scale.shape == (64,)  # l_ff rescales the inner activations: d_ff of them
    torch.testing.assert_close(ffn(inner), ffn.base_layer(inner * ffn.adapters["t"].scale))


def test_parallel_adds_a_scaled_bottleneck_of_the_feed_forward_input():
    model = tiny_model()
    bare_layer = copy.deepcopy(model.encoder.layer[0])
    adapters = TaskAdapters(model, ParallelConfig(bottleneck=8, scaling=4.0))
    adapters.add_task("t")
    _perturb(adapters, "t", 0)
    adapters.router.activate("t")
    layer = model.encoder.layer[0]
    adapter = layer.output.dense.adapters["t"]
    x = torch.randn(2, 5, 32)  # the attention block's output: the feed-forward block's input
    expected_side = 4.0 * adapter.up(torch.relu(adapter.down(x)))
    expected = bare_layer.output.LayerNorm(bare_layer.output.dense(bare_layer.intermediate(x)) + expected_side + x)
    torch.testing.assert_close(layer.feed_forward_chunk(x), expected)


def test_gpt2_fused_attention_is_adapted_once_as_a_whole(family_dirs):
    model = _model("gpt2", family_dirs)
    lora, ia3 = TaskAdapters(model, LoraConfig(rank=2)), None
    lora.add_task("t")
    attention = model.transformer.h[0].attn.c_attn
    assert attention.adapters["t"].up.out_features == 3 * 32  # q, k, v in one Conv1D
    ia3 = TaskAdapters(_model("gpt2", family_dirs), IA3Config())
    ia3.add_task("t")
    assert [tuple(p.shape) for p in ia3.task_parameters("t")][:2] == [(96,), (128,)]  # c_attn output, mlp inner


@pytest.mark.parametrize(
    ("config", "per_layer"),
    [
        (LoraConfig(rank=4), 2 * 4 * (32 + 32)),  # query and value: r (d_in + d_out) each
        (LoraConfig(rank=2, targets=("query", "key", "value", "attention", "ffn")), 2 * (4 * (32 + 32) + (64 + 32))),
        (ParallelConfig(bottleneck=8), 2 * 8 * 32 + 32 + 8),
        (IA3Config(), 32 + 32 + 64),  # l_k, l_v (d each) and l_ff (d_ff)
    ],
)
def test_parameters_per_task_follow_each_method(config, per_layer):
    adapters = TaskAdapters(tiny_model(), config)
    adapters.add_task("t")
    assert sum(p.numel() for p in adapters.task_parameters("t")) == 2 * per_layer  # 2 layers


def test_adapter_settings_parse_per_method_and_old_manifests_stay_bottleneck():
    old_manifest = {"bottleneck": 64, "reduction_factor": None, "non_linearity": "gelu", "init_scale": 0.01,
                    "placement": "houlsby", "train_layer_norm": False}
    assert adapter_config(old_manifest) == AdapterConfig()
    assert adapter_config({"method": "bottleneck", "bottleneck": 8}) == AdapterConfig(bottleneck=8)
    saved = {"method": "lora", "rank": 4, "alpha": 8.0, "targets": ["query", "value"]}  # JSON: a list
    assert adapter_config(saved) == LoraConfig(rank=4, alpha=8.0)
    with pytest.raises(ValueError, match=r"adapter.bottleneck is not a setting of adapter method 'lora'; it takes alpha, rank, targets"):
        adapter_config({"method": "lora", "bottleneck": 8})
    with pytest.raises(ValueError, match=r"unknown adapter.method 'prefix'.*ia3.*lora.*parallel"):
        adapter_config({"method": "prefix"})
    for bad in ({"method": "lora", "rank": 0}, {"method": "lora", "targets": ["keys"]},
                {"method": "ia3", "targets": ["query"]}, {"method": "parallel", "scaling": 0}):
        with pytest.raises(ValueError, match=r"adapter\.(rank|targets|scaling)"):
            adapter_config(bad)

"""Every supported family, on tiny random models saved with save_pretrained: loading, placement, identity at
init, mixed-task routing and padding side."""

from __future__ import annotations

import pytest
import torch

from seqadapt.adapters import AdapterConfig
from seqadapt.backbone import BackboneConfig, load_backbone, weights_hash
from seqadapt.data import TaskSpec
from seqadapt.families import FAMILIES, family_of
from seqadapt.model import SeqAdaptModule, mixed_outputs
from tests.families.tiny import DECODER_TYPES, FAMILY_TYPES

LAYERS = 2  # every tiny config has 2 layers per stack


def spec(name: str, n: int = 3) -> TaskSpec:
    return TaskSpec(name=name, labels=tuple(f"l{i}" for i in range(n)), source={"kind": "local_files", "files": {}})


def load(family_dirs, model_type: str):
    return load_backbone(BackboneConfig(name=f"tiny-{model_type}", source="pretrained", path=str(family_dirs[model_type])))


def inputs(tokenizer, texts: list[str]) -> dict[str, torch.Tensor]:
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}


TEXTS = ["a red apple in the old house", "the puppy", "storm over the river city and a big tree", "navy book"]


def test_every_family_in_the_table_is_tested():
    assert sorted(FAMILIES) == sorted({"bert", "roberta", "xlm-roberta", "electra", "camembert", "distilbert", *FAMILY_TYPES})


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_loads_with_its_auto_class_and_eos_as_padding_without_resizing(family_dirs, model_type):
    backbone = load(family_dirs, model_type)
    architecture = family_of(model_type).architecture
    assert backbone.model.config.model_type == model_type
    assert type(backbone.model).__name__.endswith("ForCausalLM" if architecture == "decoder" else "ForConditionalGeneration") \
        or (model_type == "gpt2" and type(backbone.model).__name__ == "GPT2LMHeadModel")
    if architecture == "decoder":
        assert backbone.tokenizer.pad_token == backbone.tokenizer.eos_token == "<|endoftext|>"
    assert backbone.model.get_input_embeddings().num_embeddings == len(backbone.tokenizer)  # never resized
    assert not any(p.requires_grad for p in backbone.model.parameters())


@pytest.mark.parametrize("placement", ["houlsby", "pfeiffer"])
@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_adapters_go_in_every_layer_of_every_stack_and_start_as_the_identity(family_dirs, model_type, placement):
    backbone = load(family_dirs, model_type)
    before = weights_hash(backbone.model)
    batch = inputs(backbone.tokenizer, TEXTS)
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=4, placement=placement))
    with torch.inference_mode():
        bare = module.encode(**batch)
    module.add_task(spec("a"))
    stacks = len(family_of(model_type).stacks)
    assert len(module.adapters.slots) == stacks * LAYERS * (2 if placement == "houlsby" else 1)
    assert weights_hash(backbone.model) == before  # injection and a task's adapters leave the backbone's tensors
    with torch.inference_mode(), module.routed_to("a"):
        adapted = module.encode(**batch)
    assert adapted.shape == bare.shape
    assert not torch.equal(adapted, bare)  # the adapters run...
    real = batch["attention_mask"].bool()
    assert torch.allclose(adapted[real], bare[real], atol=0.1 * bare[real].abs().max().item())  # ...near the identity


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_zero_initialised_adapters_are_exactly_the_bare_model(family_dirs, model_type):
    backbone = load(family_dirs, model_type)
    batch = inputs(backbone.tokenizer, TEXTS)
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=4, init_scale=0.0, train_layer_norm=True))
    with torch.inference_mode():
        bare = module.encode(**batch)
    module.add_task(spec("a"))
    with torch.inference_mode(), module.routed_to("a"):
        assert torch.equal(module.encode(**batch), bare)


@pytest.mark.parametrize("model_type", FAMILY_TYPES)
def test_a_mixed_task_batch_equals_single_task_batches(family_dirs, model_type):
    backbone = load(family_dirs, model_type)
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=4, init_scale=0.5, train_layer_norm=True))
    for name, n in (("a", 3), ("b", 2)):
        module.add_task(spec(name, n))
    with torch.no_grad():  # biases and LayerNorm copies away from their init, so the tasks compute differently
        for task in "ab":
            for param in module.adapters.task_parameters(task):
                param.add_(torch.randn_like(param) * 0.1)
    module.eval()
    batch = inputs(backbone.tokenizer, TEXTS)
    tasks = ["a", "b", "b", "a"]
    with torch.inference_mode():
        mixed = mixed_outputs(module, batch["input_ids"], batch["attention_mask"], tasks)
        for task in "ab":
            rows = [i for i, t in enumerate(tasks) if t == task]
            with module.routed_to(task):
                alone = module(batch["input_ids"][rows], batch["attention_mask"][rows])
            for row, expected in zip(rows, alone):
                assert torch.allclose(mixed[row], expected, atol=1e-5)


@pytest.mark.parametrize("model_type", DECODER_TYPES)
def test_decoders_pool_the_last_real_token_with_left_or_right_padding(family_dirs, model_type):
    backbone = load(family_dirs, model_type)
    module = SeqAdaptModule(backbone.model, AdapterConfig(bottleneck=4, init_scale=0.5))
    assert module.pooling == "last"
    module.add_task(spec("a"))
    module.eval()
    outputs = {}
    for side in ("left", "right"):
        backbone.tokenizer.padding_side = side
        batch = inputs(backbone.tokenizer, TEXTS)
        with torch.inference_mode(), module.routed_to("a"):
            outputs[side] = module(**batch)
    assert torch.allclose(outputs["left"], outputs["right"], atol=1e-5)
    alone = inputs(backbone.tokenizer, TEXTS[1:2])  # no padding at all
    with torch.inference_mode(), module.routed_to("a"):
        assert torch.allclose(module(**alone)[0], outputs["right"][1], atol=1e-5)


@pytest.mark.parametrize(("model_type", "pooling"), [("t5", "mean"), ("bart", "last"), ("gpt2", "last")])
def test_auto_pooling_follows_the_family(family_dirs, model_type, pooling):
    module = SeqAdaptModule(load(family_dirs, model_type).model, AdapterConfig(bottleneck=4))
    assert module.pooling == pooling
    assert SeqAdaptModule(load(family_dirs, model_type).model, AdapterConfig(bottleneck=4), pooling="mean").pooling == "mean"

"""The real thing, small: packaged all-MiniLM-L6-v2 and two real bundled tasks."""

from collections import Counter

import pytest
from hydra import compose, initialize_config_dir

from seqadapt.data import SplitSizes, build_splits, load_task_spec, read_source
from seqadapt.cli.train import CONFIG_DIR, run

pytestmark = pytest.mark.integration


def majority_share(task: str, sizes: SplitSizes) -> float:
    spec = load_task_spec(task)
    test = build_splits(spec, read_source(spec), sizes).test
    return max(Counter(test["label"]).values()) / len(test)


def test_minilm_learns_two_real_tasks_without_forgetting(tmp_path):
    overrides = [
        "tasks.order=[trec,reuters_r8]",
        "data.train_size=400",
        "data.val_size=50",
        "data.test_size=200",
        "trainer.max_epochs=2",
        "+trainer.enable_progress_bar=false",
    ]
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=overrides)
    results = run(cfg, tmp_path).to_dict()

    sizes = SplitSizes(train=400, val=50, test=200, seed=cfg.data.split_seed)
    final = results["score_matrix"][-1]
    for j, task in enumerate(["trec", "reuters_r8"]):
        majority = majority_share(task, sizes)
        assert final[j] >= majority + 0.2, f"{task}: accuracy {final[j]:.3f} vs majority class {majority:.3f}"
    assert results["metrics"]["bwt"] == 0.0
    assert all(stage["guard"]["passed"] for stage in results["stages"])


def test_the_offline_decoder_loads_as_a_llama_and_adapts_generates_and_pads_with_eos():
    """SmolLM2-135M from its PyPI package (GGUF, dequantised): what backbone=smollm2 runs on."""
    import torch

    from seqadapt.adapters import AdapterConfig
    from seqadapt.backbone import BackboneConfig, load_backbone
    from seqadapt.data import TaskSpec
    from seqadapt.families.generation import greedy
    from seqadapt.model import SeqAdaptModule

    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="train", overrides=["backbone=smollm2"])
    backbone = load_backbone(BackboneConfig(**cfg.backbone))
    model, tok = backbone.model, backbone.tokenizer
    assert model.config.model_type == "llama" and model.config.num_hidden_layers == 30
    assert sum(p.numel() for p in model.parameters()) == 134_515_008
    assert tok.pad_token is not None and model.get_input_embeddings().num_embeddings == 49_152
    module = SeqAdaptModule(model, AdapterConfig(bottleneck=16, init_scale=0.0), tokenizer=tok)
    batch = tok(["The capital of France is", "Past tense of walk:"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        bare = module.encode(batch["input_ids"], batch["attention_mask"])
        module.add_task(TaskSpec(name="t", source={}, type="text_to_text"))
        with module.routed_to("t"):
            assert torch.equal(module.encode(batch["input_ids"], batch["attention_mask"]), bare)
            ids, _ = greedy(model, module.family, batch["input_ids"][:1], batch["attention_mask"][:1], 3,
                            tok.eos_token_id, tok.pad_token_id)
    assert "Paris" in tok.decode(ids[0][ids[0] >= 0])  # the pretrained LM, intact under zero-initialised adapters

"""Task-ID-free inference: the selectors, the prototypes they read, and the per-stage report."""

import pytest
import torch

from seqadapt.adapters import AdapterConfig
from datasets import Dataset

from seqadapt.data import make_loader
from seqadapt.evaluation import evaluate_task
from seqadapt.model import SeqAdaptModule
from seqadapt.model import parameter_budget
from seqadapt.prototypes import fit_prototypes
from seqadapt.selection import SELECTORS, CandidateBatch, check_selectors, evaluate_selection
from seqadapt.selection import candidates
from tests.conftest import tiny_model
from tests.model.test_module import spec

TEXTS = {
    "a": ["red crimson scarlet", "blue navy azure", "green olive lime"],
    "b": ["the cat sat on the mat", "a dog ran in the park"],
}


def two_task_module() -> SeqAdaptModule:
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8, init_scale=0.5))
    module.add_task(spec("a", 3))
    module.add_task(spec("b", 2))
    with torch.no_grad():  # adapters away from their init, so the two tasks compute differently
        for task in "ab":
            for param in module.adapters.task_parameters(task):
                param.add_(torch.randn_like(param) * 0.1)
    return module.eval()


def loader(task: str, tokenizer, batch_size: int = 8):
    return make_loader((spec(task, len(TEXTS[task])), rows(task)), tokenizer, max_length=16, batch_size=batch_size)


def rows(task: str) -> Dataset:
    return Dataset.from_dict({"text": TEXTS[task], "label": list(range(len(TEXTS[task])))})


def test_candidate_logits_come_from_one_mixed_pass_and_equal_each_task_alone(tokenizer):
    module = two_task_module()
    batch = next(iter(loader("a", tokenizer)))
    view = CandidateBatch(module, batch, ["a", "b"])
    with torch.inference_mode():
        for c, task in enumerate(view.candidates):
            with module.routed_to(task):
                alone = module(batch["input_ids"], batch["attention_mask"])
            assert torch.allclose(torch.stack(view.logits[c]), alone, atol=1e-5)
            assert torch.equal(torch.stack(view.logits[c]).argmax(-1), alone.argmax(-1))
        assert view.logits_under(["b", "a", "b"])[1] is view.logits[0][1]  # read from the pass, not run again


def test_entropy_selector_picks_the_most_certain_head(tokenizer):
    module = two_task_module()
    heads = {task: module.heads[task].classifier for task in "ab"}
    with torch.no_grad():
        for head in heads.values():
            head.weight.zero_()
            head.bias.zero_()  # uniform: normalised entropy 1, the least certain possible
        heads["b"].bias.copy_(torch.tensor([6.0, -6.0]))
    batch = next(iter(loader("a", tokenizer)))
    with torch.inference_mode():
        assert SELECTORS["entropy"].scores(CandidateBatch(module, batch, ["a", "b"])).argmax(1).tolist() == [1, 1, 1]
        with torch.no_grad():
            heads["a"].bias.copy_(torch.tensor([9.0, -9.0, -9.0]))
        assert SELECTORS["entropy"].scores(CandidateBatch(module, batch, ["a", "b"])).argmax(1).tolist() == [0, 0, 0]


def test_prototype_selector_picks_the_task_whose_training_examples_the_input_resembles(tokenizer):
    module = two_task_module()
    for task in "ab":  # one example per class: each centroid is that example's feature
        fit_prototypes(module, task, loader(task, tokenizer, batch_size=1))
    with torch.inference_mode():
        for true, task in enumerate("ab"):
            view = CandidateBatch(module, next(iter(loader(task, tokenizer))), ["a", "b"])
            scores = SELECTORS["prototype"].scores(view)
            assert scores.argmax(1).tolist() == [true] * len(TEXTS[task])
            assert torch.allclose(scores[:, true], torch.ones(len(TEXTS[task])), atol=1e-5)


def test_prototypes_use_the_bare_backbone_whatever_is_routed(tokenizer):
    module = two_task_module()
    batch = next(iter(loader("a", tokenizer)))
    with torch.inference_mode():
        bare = module.backbone_features(batch["input_ids"], batch["attention_mask"])
        with module.routed_to("a"):
            assert torch.equal(module.backbone_features(batch["input_ids"], batch["attention_mask"]), bare)
            routed = module.encode(batch["input_ids"], batch["attention_mask"])
            assert module.adapters.router.active == "a"  # routing is put back afterwards
    assert not torch.allclose(routed.mean(1), bare, atol=1e-3)


def test_selection_report_counts_every_example_once_and_matches_evaluation_with_task_ids(tokenizer):
    module = two_task_module()
    for task in "ab":
        fit_prototypes(module, task, loader(task, tokenizer, batch_size=1))
    loaders = {task: loader(task, tokenizer, batch_size=2) for task in "ab"}
    report = evaluate_selection(module, loaders, ["entropy", "prototype"])
    assert report["candidates"] == ["a", "b"] and report["examples"] == 5
    for task in "ab":
        assert report["with_task_id"]["per_task"][task] == evaluate_task(module, task, loaders[task], rows(task)).score
    assert report["selectors"]["prototype"]["task_id_accuracy"] == 1.0
    assert report["selectors"]["prototype"]["accuracy"] == report["with_task_id"]["accuracy"]
    for result in report["selectors"].values():
        assert [sum(row) for row in result["confusion"]] == [3, 2]
        for task, j in (("a", 0), ("b", 1)):
            per_task = result["per_task"][task]
            assert per_task["task_id_accuracy"] == result["confusion"][j][j] / len(TEXTS[task])
            assert per_task["accuracy"] <= min(per_task["task_id_accuracy"], report["with_task_id"]["per_task"][task])


def test_unknown_selector_and_no_candidates_are_refused(tokenizer):
    with pytest.raises(KeyError, match=r"unknown task selector 'nearest'; choose one of \['entropy', 'prototype'\]"):
        check_selectors(["entropy", "nearest"])
    with pytest.raises(ValueError, match="no candidate tasks"):
        CandidateBatch(two_task_module(), next(iter(loader("a", tokenizer))), [])


def test_memo_computes_only_what_a_new_task_adds(tokenizer, monkeypatch):
    module = two_task_module()
    for task in "ab":
        fit_prototypes(module, task, loader(task, tokenizer, batch_size=1))
    loaders = {task: loader(task, tokenizer, batch_size=2) for task in "ab"}
    fresh = evaluate_selection(module, loaders, ["entropy", "prototype"])
    memo = {}
    evaluate_selection(module, {"a": loaders["a"]}, ["entropy", "prototype"], memo)  # the stage that learned a
    assert {key: set(entry["logits"]) for key, entry in memo.items()} == {("a", 0): {"a"}, ("a", 1): {"a"}}
    grown = evaluate_selection(module, loaders, ["entropy", "prototype"], memo)  # b added: a's data gains b only
    assert {key: set(entry["logits"]) for key, entry in memo.items()} == {key: {"a", "b"} for key in memo}
    assert {k: v for k, v in grown.items() if k != "seconds"} == {k: v for k, v in fresh.items() if k != "seconds"}

    def no_pass(*args, **kwargs):
        raise AssertionError("a forward pass ran although everything was remembered")

    monkeypatch.setattr(candidates, "mixed_outputs", no_pass)
    monkeypatch.setattr(module, "backbone_features", no_pass)
    again = evaluate_selection(module, loaders, ["entropy", "prototype"], memo)
    assert again["selectors"] == fresh["selectors"]


def test_prototypes_belong_to_their_task_state_and_are_restored_with_it(tokenizer):
    module = two_task_module()
    fit_prototypes(module, "a", loader("a", tokenizer, batch_size=1))
    state = module.tensors.of("a")
    assert {"prototypes.a.centroids", "prototypes.a.counts"} <= set(state)
    assert not any(key.startswith("prototypes.b") for key in state)  # never another task's
    assert parameter_budget(module, "a").total_params == sum(p.numel() for p in module.task_parameters("a"))
    fresh = two_task_module()
    fresh.tensors.load("a", {key: value.clone() for key, value in state.items()})
    assert torch.equal(fresh.prototypes["a"].centroids, module.prototypes["a"].centroids)
    assert fresh.prototypes["a"].fitted and not fresh.prototypes["b"].fitted

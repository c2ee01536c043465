"""Task-ID-free inference: the selectors, the prototypes they read, and the per-stage report."""

import pytest
import torch

from seqadapt.adapters import AdapterConfig
from datasets import Dataset

from seqadapt.data import make_loader
from seqadapt.evaluation import evaluate_task
from seqadapt.model import SeqAdaptModule
from seqadapt.model import parameter_budget
from seqadapt.selection.features import selection_features
from seqadapt.selection.fitting import fit_statistics
from seqadapt.selection import SELECTORS, CandidateBatch, SelectionConfig, check_selectors, evaluate_selection, selectors_for
from seqadapt.selection import candidates
from tests.conftest import tiny_model
from tests.model.test_module import spec

TEXTS = {
    "a": ["red crimson scarlet", "blue navy azure", "green olive lime"],
    "b": ["the cat sat on the mat", "a dog ran in the park"],
}


def two_task_module() -> SeqAdaptModule:
    selection = SelectionConfig(projection_dim=64)  # ranpac on, small
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8, init_scale=0.5), selection=selection)
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
        fit_statistics(module, task, loader(task, tokenizer, batch_size=1))
    with torch.inference_mode():
        for true, task in enumerate("ab"):
            view = CandidateBatch(module, next(iter(loader(task, tokenizer))), ["a", "b"])
            scores = SELECTORS["prototype"].scores(view)
            assert scores.argmax(1).tolist() == [true] * len(TEXTS[task])
            assert torch.allclose(scores[:, true], torch.ones(len(TEXTS[task])), atol=1e-5)


def test_selection_features_use_the_bare_backbone_whatever_is_routed(tokenizer):
    module = two_task_module()
    batch = next(iter(loader("a", tokenizer)))
    with torch.inference_mode():
        bare = selection_features(module, batch["input_ids"], batch["attention_mask"])
        with module.routed_to("a"):
            assert torch.equal(selection_features(module, batch["input_ids"], batch["attention_mask"]), bare)
            routed = module.encode(batch["input_ids"], batch["attention_mask"])
            assert module.adapters.router.active == "a"  # routing is put back afterwards
        last = torch.nn.functional.normalize(routed.mean(1), dim=-1)
    hidden = module.backbone.config.hidden_size
    assert module.selection.layers == [0, 1, -1]  # the default: embeddings, middle (L // 2 of L = 2), last layer
    assert bare.shape == (3, 3 * hidden)
    assert torch.allclose(bare.view(3, 3, hidden).norm(dim=-1), torch.ones(3, 3), atol=1e-5)
    assert not torch.allclose(last, bare[:, 2 * hidden:], atol=1e-3)  # the last layer without adapters differs


def test_selection_report_counts_every_example_once_and_matches_evaluation_with_task_ids(tokenizer):
    module = two_task_module()
    for task in "ab":
        fit_statistics(module, task, loader(task, tokenizer, batch_size=1))
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
    with pytest.raises(KeyError, match=r"unknown task selector 'nearest'; choose one of \['calibrated_entropy', 'entropy', 'mahalanobis', 'perplexity', 'prototype', 'ranpac'\]"):
        check_selectors(["entropy", "nearest"])
    with pytest.raises(ValueError, match="no candidate tasks"):
        CandidateBatch(two_task_module(), next(iter(loader("a", tokenizer))), [])


def test_memo_computes_only_what_a_new_task_adds(tokenizer, monkeypatch):
    module = two_task_module()
    for task in "ab":
        fit_statistics(module, task, loader(task, tokenizer, batch_size=1))
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
    monkeypatch.setattr(candidates, "selection_features", no_pass)
    again = evaluate_selection(module, loaders, ["entropy", "prototype"], memo)
    assert again["selectors"] == fresh["selectors"]


def test_selection_statistics_belong_to_their_task_state_and_are_restored_with_it(tokenizer):
    module = two_task_module()
    fit_statistics(module, "a", loader("a", tokenizer, batch_size=1), loader("a", tokenizer))
    state = module.tensors.of("a")
    names = {"counts", "centroids", "scatter", "gram", "ridge_targets", "temperature"}
    assert {f"selection.tasks.a.{name}" for name in names} <= set(state)
    assert not any(key.startswith("selection.tasks.b") for key in state)  # never another task's
    assert parameter_budget(module, "a").total_params == sum(p.numel() for p in module.task_parameters("a"))
    fresh = two_task_module()
    fresh.tensors.load("a", {key: value.clone() for key, value in state.items()})
    for name in names:
        assert torch.equal(getattr(fresh.selection["a"], name), getattr(module.selection["a"], name))
    assert fresh.selection["a"].fitted and not fresh.selection["b"].fitted


@pytest.mark.parametrize("name", ["mahalanobis", "ranpac"])
def test_statistics_selectors_pick_the_task_of_its_training_examples_from_one_bare_pass(name, tokenizer, monkeypatch):
    module = two_task_module()
    for task in "ab":
        fit_statistics(module, task, loader(task, tokenizer, batch_size=1))

    def no_adapted_pass(*args, **kwargs):
        raise AssertionError("a one-pass selector ran the candidates' adapters")

    monkeypatch.setattr(candidates, "mixed_outputs", no_adapted_pass)
    passes = []
    bare = candidates.selection_features
    monkeypatch.setattr(candidates, "selection_features", lambda *a: passes.append(1) or bare(*a))
    with torch.inference_mode():
        for true, task in enumerate("ab"):
            view = CandidateBatch(module, next(iter(loader(task, tokenizer))), ["a", "b"])
            assert SELECTORS[name].scores(view).argmax(1).tolist() == [true] * len(TEXTS[task])
    assert len(passes) == 2  # one bare backbone pass per batch, whatever the number of tasks


def test_statistics_selectors_refuse_tasks_whose_statistics_were_never_computed(tokenizer):
    module = two_task_module()
    fit_statistics(module, "a", loader("a", tokenizer, batch_size=1))
    view = CandidateBatch(module, next(iter(loader("a", tokenizer))), ["a", "b"])
    with pytest.raises(RuntimeError, match=r"selector 'mahalanobis' needs the selection statistics of \['b'\]"):
        SELECTORS["mahalanobis"].scores(view)


def test_temperature_is_fitted_on_validation_and_divides_the_outputs_for_calibrated_entropy(tokenizer):
    module = two_task_module()
    with torch.no_grad():  # a head that is right and far too sure: the fitted temperature must soften it
        module.heads["a"].classifier.weight.mul_(40.0)
    for task in "ab":
        fit_statistics(module, task, loader(task, tokenizer, batch_size=1), loader(task, tokenizer))
    temperature = float(module.selection["a"].temperature)
    assert temperature != 1.0
    view = CandidateBatch(module, next(iter(loader("a", tokenizer))), ["a", "b"])
    with torch.inference_mode():
        calibrated = SELECTORS["calibrated_entropy"].scores(view)
        expected = module.kind("a").confidence(torch.stack(view.logits[0]) / temperature, view.attention_mask)
    assert torch.allclose(calibrated[:, 0], expected, atol=1e-6)


def test_ranpac_on_a_run_without_a_projection_is_a_usage_error(tokenizer):
    module = SeqAdaptModule(tiny_model(), AdapterConfig(bottleneck=8))  # selection.projection_dim 0, the default
    module.add_task(spec("a", 3))
    fit_statistics(module, "a", loader("a", tokenizer))
    with pytest.raises(ValueError, match="selector 'ranpac' needs a random projection.*projection_dim=0"):
        SELECTORS["ranpac"].scores(CandidateBatch(module, next(iter(loader("a", tokenizer))), ["a"]))


def test_ranpac_without_a_projection_is_refused_before_training():
    with pytest.raises(ValueError, match="selection.selectors has 'ranpac'.*selection.projection_dim is 0"):
        check_selectors(["mahalanobis", "ranpac"], SelectionConfig())
    assert check_selectors(["ranpac"], SelectionConfig(projection_dim=8)) == ["ranpac"]


def test_perplexity_needs_a_decoder_and_is_refused_before_training_on_others():
    with pytest.raises(ValueError, match=r"selection.selectors has \['perplexity'\].*this backbone is encoder-decoder"):
        check_selectors(["mahalanobis", "perplexity"], SelectionConfig(), "encoder_decoder")
    assert check_selectors(["perplexity"], SelectionConfig(), "decoder") == ["perplexity"]
    assert "perplexity" not in selectors_for("encoder") and "perplexity" in selectors_for("decoder")

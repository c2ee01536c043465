import re

import pytest
import torch

from seqadapt.guard import ForgettingError, ForgettingGuard
from seqadapt.model import SeqAdaptModule
from seqadapt.record import TaskEvaluation
from seqadapt.stream import StreamCallback
from tests.stream.test_run import stream


def ev(task: str, accuracy: float = 0.8, digest: str = "aa" * 32) -> TaskEvaluation:
    return TaskEvaluation(task=task, metric="accuracy", score=accuracy, examples=100, logits_sha256=digest)


def test_unchanged_earlier_tasks_pass():
    guard = ForgettingGuard("b" * 64)
    guard.learn(ev("a"))
    verdict = guard.check(2, "b", [ev("a"), ev("b", 0.7)], "b" * 64)
    assert verdict.passed and verdict.checked == ["a"]
    guard.enforce(verdict)


def test_each_kind_of_change_is_named():
    guard = ForgettingGuard("b" * 64)
    guard.learn(ev("a"))
    verdict = guard.check(2, "b", [ev("a", 0.75, "cc" * 32), ev("b")], "d" * 64)
    text = "\n".join(verdict.violations)
    assert "backbone weights changed" in text
    assert "task 'a': accuracy changed 0.800000 -> 0.750000" in text
    assert "task 'a': test logits changed" in text
    with pytest.raises(ForgettingError, match=r"after stage 2 \(trained 'b'\)"):
        guard.enforce(verdict)


def test_logit_change_alone_fails_even_if_accuracy_is_equal():
    guard = ForgettingGuard("b" * 64)
    guard.learn(ev("a"))
    verdict = guard.check(2, "b", [ev("a", 0.8, "cc" * 32)], "b" * 64)
    assert not verdict.passed


def test_report_mode_records_without_raising():
    guard = ForgettingGuard("b" * 64, mode="report")
    guard.learn(ev("a"))
    verdict = guard.check(2, "b", [ev("a", 0.5)], "b" * 64)
    assert not verdict.passed
    guard.enforce(verdict)  # no raise


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="strict"):
        ForgettingGuard("b" * 64, mode="lenient")


def tensor_guard(backbone: dict) -> ForgettingGuard:
    guard = ForgettingGuard("b" * 64, backbone=backbone)
    guard.learn(ev("a"), {"adapter.weight": torch.ones(3, 2), "head.bias": torch.zeros(2)})
    return guard


def test_tensor_check_passes_while_nothing_is_written():
    backbone = {"layer.weight": torch.randn(4, 4)}
    guard = tensor_guard(backbone)
    verdict = guard.check_tensors(2, "b", {"a": {"adapter.weight": torch.ones(3, 2), "head.bias": torch.zeros(2)}},
                                  backbone)
    assert verdict.passed and verdict.kind == "tensors" and verdict.checked == ["a"]


def test_tensor_check_names_a_changed_task_tensor():
    backbone = {"layer.weight": torch.randn(4, 4)}
    guard = tensor_guard(backbone)
    changed = torch.ones(3, 2)
    changed[0, 0] = 1 + 1e-7  # one ulp away: the check is bit identity, not closeness
    verdict = guard.check_tensors(2, "b", {"a": {"adapter.weight": changed, "head.bias": torch.zeros(2)}}, backbone)
    assert verdict.violations == ["task 'a': 1 of its own tensor(s) changed, e.g. ['adapter.weight']"]


@pytest.mark.parametrize("write", ["in_place", "optimizer", "replaced"])
def test_tensor_check_sees_any_write_to_the_backbone(write):
    weight = torch.nn.Parameter(torch.randn(4, 4), requires_grad=False)
    guard = tensor_guard({"layer.weight": weight.detach()})  # as state_dict() hands it out
    if write == "in_place":
        with torch.no_grad():
            weight.mul_(1.0)  # same values: the write itself is what the guard sees
    elif write == "optimizer":
        weight.requires_grad_(True)
        weight.grad = torch.ones(4, 4)
        torch.optim.SGD([weight], lr=0.1).step()
    else:
        weight = torch.nn.Parameter(weight.detach().clone())
    verdict = guard.check_tensors(2, "b", {"a": {"adapter.weight": torch.ones(3, 2), "head.bias": torch.zeros(2)}},
                                  {"layer.weight": weight.detach()})
    assert verdict.violations == [
        "backbone weights changed: 1 tensor(s) written in place or replaced, e.g. ['layer.weight']"
    ]


class WriteBeforeStage2(StreamCallback):
    """Writes to a tensor ``colors`` (stage 1) computes with, after it was learned and before stage 2 trains."""

    def __init__(self, write: str) -> None:
        self.write = write

    def on_stage_start(self, run, stage) -> None:
        if stage.number != 2:
            return
        embeddings = run.module.backbone.embeddings.word_embeddings.weight
        if self.write == "task .data":  # bypasses autograd and the version counter, keeps the tensor object
            next(run.module.adapters.task_parameters("colors")).data.add_(0.5)
        elif self.write == "backbone .data":
            embeddings.data.add_(0.5)
        else:  # "backbone in place": an ordinary in-place write, as an optimizer step makes
            with torch.no_grad():
                embeddings.add_(0.5)


# What each check of the guard sees, by what was written (guard.py: the tensor check compares an earlier task's
# own tensors by value with a snapshot, but the backbone only by storage address and version counter, which a
# `.data` write leaves as they were; the full check re-evaluates outputs and hashes the backbone's values).
@pytest.mark.parametrize(("write", "tensor_check", "full_check"), [
    ("task .data", r"task 'colors': \d+ of its own tensor\(s\) changed", r"task 'colors': test logits changed"),
    ("backbone in place", r"backbone weights changed: 1 tensor\(s\) written in place or replaced, e.g. "
                          r"\['embeddings.word_embeddings.weight'\]", r"backbone weights changed: sha256"),
    ("backbone .data", None, r"backbone weights changed: sha256"),  # only the full check catches it
], ids=["task-data", "backbone-in-place", "backbone-data"])
def test_which_check_catches_a_write_to_what_an_earlier_task_computes_with(write, tensor_check, full_check, toy_task_dir,
                                                                          tokenizer, tmp_path):
    run = stream(SeqAdaptModule, toy_task_dir, tokenizer, tmp_path / "run", full_check_every=None, guard_mode="report",
                 selectors=[], callbacks=[WriteBeforeStage2(write)])
    stages = run.run().to_dict()["stages"]
    assert [s["guard"]["kind"] for s in stages] == ["full", "tensors", "full"]
    tensors, full = ("\n".join(stage["guard"]["violations"]) for stage in stages[1:])
    if tensor_check is None:
        assert stages[1]["guard"]["passed"] and tensors == ""
    else:
        assert re.search(tensor_check, tensors), tensors
    assert not stages[2]["guard"]["passed"] and re.search(full_check, full), full

import pytest

from seqadapt.evaluation import TaskEvaluation
from seqadapt.guard import ForgettingError, ForgettingGuard


def ev(task: str, accuracy: float = 0.8, digest: str = "aa" * 32) -> TaskEvaluation:
    return TaskEvaluation(task=task, accuracy=accuracy, examples=100, logits_sha256=digest)


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

"""The forgetting guard: proof after every stage that earlier tasks are exactly as they were learned."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

from seqadapt.evaluation import TaskEvaluation

GuardMode = Literal["strict", "report"]


class ForgettingError(RuntimeError):
    """An earlier task changed after a later stage: the stream stops here."""


@dataclass(frozen=True)
class GuardVerdict:
    stage: int
    trained_task: str
    checked: list[str]
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations

    def to_dict(self) -> dict:
        return {**asdict(self), "passed": self.passed}


class ForgettingGuard:
    """Remembers each task's accuracy and logit fingerprint when it is learned, then checks them.

    A task passes a later stage only if (a) its test accuracy is exactly the
    learned value, (b) its test logits are bit-identical (same SHA-256), and
    (c) the backbone's weight hash is the one the stream started with.
    ``mode="strict"`` raises :class:`ForgettingError` on the first failing
    stage; ``"report"`` only records the verdict.
    """

    def __init__(self, backbone_sha256: str, mode: GuardMode = "strict") -> None:
        if mode not in ("strict", "report"):
            raise ValueError(f"unknown guard mode '{mode}'; choose 'strict' or 'report'")
        self.backbone_sha256 = backbone_sha256
        self.mode = mode
        self.references: dict[str, TaskEvaluation] = {}

    def learn(self, evaluation: TaskEvaluation) -> None:
        """Record a task's reference right after the stage that trained it."""
        self.references[evaluation.task] = evaluation

    def check(self, stage: int, trained_task: str, evaluations: list[TaskEvaluation], backbone_sha256: str) -> GuardVerdict:
        """Compare every task that has a reference with its fresh evaluation; call before :meth:`learn`."""
        violations = []
        if backbone_sha256 != self.backbone_sha256:
            violations.append(
                f"backbone weights changed: sha256 {self.backbone_sha256[:16]}… -> {backbone_sha256[:16]}…"
            )
        checked = []
        for current in evaluations:
            reference = self.references.get(current.task)
            if reference is None:  # learned in this very stage: it becomes a reference afterwards
                continue
            checked.append(current.task)
            if current.accuracy != reference.accuracy:
                violations.append(
                    f"task '{current.task}': accuracy changed {reference.accuracy:.6f} -> {current.accuracy:.6f}"
                )
            if current.logits_sha256 != reference.logits_sha256:
                violations.append(
                    f"task '{current.task}': test logits changed "
                    f"(sha256 {reference.logits_sha256[:16]}… -> {current.logits_sha256[:16]}…)"
                )
        return GuardVerdict(stage=stage, trained_task=trained_task, checked=checked, violations=violations)

    def enforce(self, verdict: GuardVerdict) -> None:
        """Raise in strict mode if ``verdict`` failed."""
        if self.mode == "strict" and not verdict.passed:
            raise ForgettingError(
                f"forgetting guard failed after stage {verdict.stage} (trained '{verdict.trained_task}'):\n  "
                + "\n  ".join(verdict.violations)
            )

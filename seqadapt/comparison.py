"""How a task's outputs now are compared with those recorded when it was learned: exactly, within a
:class:`Tolerance` of its reference outputs, or by score alone (see :mod:`seqadapt.preservation`).

Exact outputs depend on the device, the torch build, its thread count and the precision (see
:mod:`seqadapt.environment`). Where all of those are as recorded, anything but the recorded SHA-256 is a
change of the model. Elsewhere the last bits may differ while the model is the same, so outputs are compared
with the reference outputs its artefact stores; an artefact written before those were stored can only be
compared by score, which is said.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from seqadapt.environment import environment_differences
from seqadapt.model import SeqAdaptModule
from seqadapt.record import RunRecord, TaskEvaluation

Outcome = Literal["preserved", "changed", "refused", "data changed"]
Comparison = Literal["exact", "tolerance", "score only", "none"]
FULL_PRECISION = ("32-true", "32", "64-true", "64")  # evaluation runs in float32; these record nothing else


@dataclass(frozen=True)
class Tolerance:
    """How far outputs measured in another environment may be from a task's reference outputs; all three must hold.

    ``max_abs_diff``: the largest absolute difference of any output value (logits, regression values, span
    scores; a generated token id that differs is a difference of at least 1). Float32 outputs of the same
    weights differ by about 1e-6 between thread counts and 1e-5 between CPU and GPU, while an adapter that
    changed moves them by far more. ``min_agreement``: the share of test features the task's kind judges
    the same way (right or wrong) now as when learned. ``max_score_diff``: the primary score's absolute
    difference, also the whole check of an artefact without reference outputs.
    """

    max_abs_diff: float = 1e-3
    min_agreement: float = 0.99
    max_score_diff: float = 0.01

    def __post_init__(self) -> None:
        if not (self.max_abs_diff >= 0 and self.max_score_diff >= 0 and 0 <= self.min_agreement <= 1):
            raise ValueError(f"a tolerance needs max_abs_diff >= 0, max_score_diff >= 0 and min_agreement in "
                             f"[0, 1]; got {self}")


@dataclass(frozen=True)
class TaskCheck:
    """One task's verdict: its outcome, the comparison that decided it, why (in words), the learned score and
    the score now, what the outputs differed by (where measured) and the seconds it took."""

    task: str
    outcome: Outcome
    comparison: Comparison
    why: str
    metric: str = ""
    learned: float | None = None
    now: float | None = None
    max_abs_diff: float | None = None
    agreement: float | None = None
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == "preserved"

    @property
    def explanation(self) -> str:
        """The verdict in one line, as seqadapt-verify, JUnit and the pytest plugin give it."""
        scores = "" if self.learned is None else (
            f"{self.metric} {self.learned:.4f} when learned, " + ("not measured now" if self.now is None else
                                                                   f"{self.now:.4f} now") + "; ")
        how = "" if self.comparison == "none" else f"[{self.comparison}] "
        return f"{self.task}: {self.outcome}: {scores}{how}{self.why}"


def recorded_environment(manifest: dict[str, Any], record: RunRecord | None) -> dict[str, Any] | None:
    """Where the task's learned outputs were computed: its artefact's record, else the run's (results.json),
    else ``None`` (unknown)."""
    if "reference" in manifest:
        return manifest["reference"]["environment"]
    return record.environment if record is not None and record.environment else None


def environment_changes(recorded: dict[str, Any] | None, current: dict[str, Any]) -> list[str] | None:
    """What differs between ``recorded`` and ``current`` (:func:`environment_differences`, and a precision other
    than float32); ``None`` when nothing was recorded."""
    if recorded is None:
        return None
    changed = environment_differences(recorded, current)
    if recorded.get("precision", "32-true") not in FULL_PRECISION:
        changed.append(f"precision: float32 here, {recorded['precision']} when recorded")
    return changed


def max_abs_difference(outputs: torch.Tensor, reference: torch.Tensor) -> float:
    """The largest absolute difference of two tensors of one shape; equal infinities differ by 0, a NaN by inf."""
    difference = (outputs.double() - reference.double()).abs()
    difference[outputs == reference] = 0.0
    return float(difference.nan_to_num(nan=float("inf"), posinf=float("inf")).max()) if difference.numel() else 0.0


@dataclass(frozen=True)
class Measurement:
    """A task evaluated again: its evaluation when learned and now, the outputs now with their targets, the
    reference outputs its artefact stores (``None`` where it stores none) and the environment its learned
    outputs were computed in (:func:`recorded_environment`)."""

    module: SeqAdaptModule
    task: str
    learned: TaskEvaluation
    now: TaskEvaluation
    outputs: torch.Tensor
    targets: dict[str, torch.Tensor]
    reference: torch.Tensor | None
    recorded: dict[str, Any] | None

    def scores(self, **verdict: Any) -> TaskCheck:
        """A verdict on this task, with its metric and both scores."""
        return TaskCheck(task=self.task, metric=self.now.metric, learned=self.learned.score, now=self.now.score,
                         **verdict)

    def differences(self) -> tuple[float, float]:
        """The largest absolute output difference from the reference outputs, and the share of features the
        task's kind judges the same way (right or wrong) under both."""
        assert self.reference is not None
        kind, head = self.module.kind(self.task), self.module.heads[self.task]
        same = kind.correct(self.outputs, self.targets, head) == kind.correct(self.reference, self.targets, head)
        return max_abs_difference(self.outputs, self.reference), float(same.float().mean()) if same.numel() else 1.0


def judge(measured: Measurement, current: dict[str, Any], tolerance: Tolerance, compare: str) -> TaskCheck:
    """The verdict on a task evaluated again; ``compare`` is ``auto`` (exact where ``current`` is the recorded
    environment, else within ``tolerance``), ``exact`` or ``tolerance``."""
    learned, now, reference = measured.learned, measured.now, measured.reference
    if now.selection_sha256 != learned.selection_sha256:
        return measured.scores(outcome="changed", comparison="exact", why=(
            f"its task-selection statistics changed (SHA-256 {str(now.selection_sha256)[:12]}… now, "
            f"{str(learned.selection_sha256)[:12]}… when learned)"))
    if reference is not None and measured.module.kind(measured.task).fingerprint(reference) != learned.logits_sha256:
        return measured.scores(outcome="refused", comparison="none", why=(
            "its reference outputs are not the outputs its learned evaluation hashed: the artefact was not "
            "written by seqadapt as it is. Resume the run to train it again"))
    if now.logits_sha256 == learned.logits_sha256:
        return measured.scores(outcome="preserved", comparison="exact", max_abs_diff=0.0, agreement=1.0, why=(
            f"outputs identical to those recorded when it was learned (SHA-256 {learned.logits_sha256[:12]}…)"))
    if reference is not None and reference.shape != measured.outputs.shape:
        return measured.scores(outcome="changed", comparison="tolerance", why=(
            f"its outputs have shape {list(measured.outputs.shape)}, its reference outputs {list(reference.shape)}: "
            "the test split is encoded differently now (tokenizer or max_length)"))
    changes = environment_changes(measured.recorded, current)
    if compare == "exact" or (compare == "auto" and changes == []):
        return _changed_exactly(measured, tolerance)
    where = ("the recorded environment is unknown" if changes is None else
             f"another environment ({'; '.join(changes)})" if changes else "--compare tolerance")
    if reference is None:
        return _by_score(measured, tolerance, where)
    return _within_tolerance(measured, tolerance, where)


def _changed_exactly(measured: Measurement, tolerance: Tolerance) -> TaskCheck:
    """A failure of the exact comparison, with what the outputs differ by where reference outputs say it."""
    why = (f"outputs differ from those recorded when it was learned, in the same environment (SHA-256 "
           f"{measured.now.logits_sha256[:12]}… now, {measured.learned.logits_sha256[:12]}… when learned)")
    if measured.reference is None:
        return measured.scores(outcome="changed", comparison="exact", why=why)
    largest, agreed = measured.differences()
    why += f"; largest output difference {largest:.3g}, {agreed:.2%} of features judged the same"
    if largest <= tolerance.max_abs_diff:
        why += (" (within the tolerance: if this machine differs from the one the run was trained on in what the "
                "environment record does not hold, e.g. its CPU model, check with --compare tolerance)")
    return measured.scores(outcome="changed", comparison="exact", max_abs_diff=largest, agreement=agreed, why=why)


def _by_score(measured: Measurement, tolerance: Tolerance, where: str) -> TaskCheck:
    """The score-only comparison of an artefact without reference outputs."""
    difference = abs(measured.now.score - measured.learned.score)
    ok = difference <= tolerance.max_score_diff
    return measured.scores(outcome="preserved" if ok else "changed", comparison="score only", why=(
        f"{where}, and its artefact holds no reference outputs (written before seqadapt stored them), so only its "
        f"score was compared: {measured.now.metric} differs by {difference:.4g} ({'within' if ok else 'beyond'} "
        f"{tolerance.max_score_diff:g})"))


def _within_tolerance(measured: Measurement, tolerance: Tolerance, where: str) -> TaskCheck:
    """The tolerance comparison with the reference outputs: every bound of ``tolerance`` must hold."""
    largest, agreed = measured.differences()
    difference = abs(measured.now.score - measured.learned.score)
    beyond = [text for text, over in (
        (f"largest output difference {largest:.3g} > {tolerance.max_abs_diff:g}", largest > tolerance.max_abs_diff),
        (f"{agreed:.2%} of features judged the same < {tolerance.min_agreement:.2%}", agreed < tolerance.min_agreement),
        (f"{measured.now.metric} differs by {difference:.4g} > {tolerance.max_score_diff:g}",
         difference > tolerance.max_score_diff),
    ) if over]
    measured_text = (f"largest output difference {largest:.3g}, {agreed:.2%} of features judged the same, score "
                     f"difference {difference:.4g}")
    why = (f"{where}: compared with its reference outputs, {'; '.join(beyond)}" if beyond else
           f"{where}: within tolerance of its reference outputs ({measured_text})")
    return measured.scores(outcome="changed" if beyond else "preserved", comparison="tolerance",
                           max_abs_diff=largest, agreement=agreed, why=why)

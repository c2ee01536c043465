"""The forgetting guard: proof after every stage that earlier tasks are exactly as they were learned."""

from __future__ import annotations

from typing import Literal

import torch

from seqadapt.record import GuardVerdict, TaskEvaluation

GuardMode = Literal["strict", "report"]
Tensors = dict[str, torch.Tensor]


class ForgettingError(RuntimeError):
    """An earlier task changed after a later stage: the stream stops here."""


def storage_marks(tensors: Tensors) -> dict[str, tuple[int, int]]:
    """Where each tensor's data lives and PyTorch's count of in-place writes to it (its version counter)."""
    return {key: (tensor.data_ptr(), tensor._version) for key, tensor in tensors.items()}


class ForgettingGuard:
    """Remembers each task's accuracy and logit fingerprint when it is learned, then checks them.

    The full check (:meth:`check`): a task passes a later stage only if (a)
    its test accuracy is exactly the learned value, (b) its test outputs (logits for classification) and
    its task-selection statistics (and the random projection they were made with) are bit-identical (same SHA-256s), and (c)
    the backbone's weight hash is the one the stream started with. It costs a forward pass over every earlier task's
    test split, so it grows with the number of tasks.

    The tensor check (:meth:`check_tensors`) costs almost nothing: every
    earlier task's own tensors must equal, bit for bit, the snapshot taken
    when it was learned, and no backbone tensor may have been replaced or
    written in place since the stream started (PyTorch's version counters,
    which every optimizer step, ``copy_`` and ``load_state_dict`` bump). It
    proves the inputs of an earlier task's computation unchanged rather than
    measuring its outputs, so streams that use it still end with a full check.

    ``mode="strict"`` raises :class:`ForgettingError` on the first failing
    stage; ``"report"`` only records the verdict.
    """

    def __init__(self, backbone_sha256: str, mode: GuardMode = "strict", backbone: Tensors | None = None) -> None:
        if mode not in ("strict", "report"):
            raise ValueError(f"unknown guard mode '{mode}'; choose 'strict' or 'report'")
        self.backbone_sha256 = backbone_sha256
        self.mode = mode
        self.references: dict[str, TaskEvaluation] = {}
        self.snapshots: dict[str, Tensors] = {}
        self.backbone_marks = storage_marks(backbone) if backbone is not None else None

    def learn(self, evaluation: TaskEvaluation, tensors: Tensors | None = None) -> None:
        """Record a task's reference right after the stage that trained it; ``tensors`` enables tensor checks."""
        self.references[evaluation.task] = evaluation
        if tensors is not None:
            self.snapshots[evaluation.task] = {key: t.detach().clone() for key, t in tensors.items()}

    def check_tensors(self, stage: int, trained_task: str, tasks: dict[str, Tensors], backbone: Tensors) -> GuardVerdict:
        """The cheap check: ``tasks`` (each earlier task's tensors) and ``backbone`` are exactly as learned."""
        if self.backbone_marks is None:
            raise RuntimeError("this guard was made without backbone tensors, so it can only run full checks")
        violations = []
        marks = storage_marks(backbone)
        changed = sorted(k for k in self.backbone_marks.keys() | marks.keys() if self.backbone_marks.get(k) != marks.get(k))
        if changed:
            violations.append(
                f"backbone weights changed: {len(changed)} tensor(s) written in place or replaced, e.g. {changed[:3]}"
            )
        for task, tensors in tasks.items():
            snapshot = self.snapshots.get(task)
            if snapshot is None:
                raise RuntimeError(f"no tensor snapshot of task '{task}': learn() it with its tensors first")
            differ = sorted(k for k in snapshot.keys() | tensors.keys()
                            if k not in snapshot or k not in tensors or not torch.equal(snapshot[k], tensors[k]))
            if differ:
                violations.append(f"task '{task}': {len(differ)} of its own tensor(s) changed, e.g. {differ[:3]}")
        return GuardVerdict(stage=stage, trained_task=trained_task, checked=list(tasks), violations=violations,
                            kind="tensors")

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
            if current.score != reference.score:
                violations.append(
                    f"task '{current.task}': {current.metric} changed {reference.score:.6f} -> {current.score:.6f}"
                )
            if current.logits_sha256 != reference.logits_sha256:
                violations.append(
                    f"task '{current.task}': test logits changed "
                    f"(sha256 {reference.logits_sha256[:16]}… -> {current.logits_sha256[:16]}…)"
                )
            if current.selection_sha256 != reference.selection_sha256:
                violations.append(
                    f"task '{current.task}': its task-selection statistics changed "
                    f"(sha256 {str(reference.selection_sha256)[:16]}… -> {str(current.selection_sha256)[:16]}…)"
                )
        return GuardVerdict(stage=stage, trained_task=trained_task, checked=checked, violations=violations)

    def enforce(self, verdict: GuardVerdict) -> None:
        """Raise in strict mode if ``verdict`` failed."""
        if self.mode == "strict" and not verdict.passed:
            raise ForgettingError(
                f"forgetting guard failed after stage {verdict.stage} (trained '{verdict.trained_task}'):\n  "
                + "\n  ".join(verdict.violations)
            )

"""Task kinds, by the name a task definition gives as ``type`` (see :mod:`seqadapt.kinds.base`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seqadapt.kinds.base import RequestError, TaskKind
from seqadapt.kinds.classification import ClassificationKind
from seqadapt.kinds.extractive_qa import ExtractiveQAKind
from seqadapt.kinds.regression import RegressionKind
from seqadapt.kinds.text_to_text import TextToTextKind
from seqadapt.kinds.token_classification import TokenClassificationKind

if TYPE_CHECKING:
    from seqadapt.data.tasks import TaskSpec

TASK_KINDS: dict[str, TaskKind] = {kind.name: kind for kind in (
    ClassificationKind(), RegressionKind(), TokenClassificationKind(), ExtractiveQAKind(), TextToTextKind())}


def get_kind(name: str) -> TaskKind:
    """The kind registered as ``name``; an unknown name lists the known ones."""
    if name not in TASK_KINDS:
        raise KeyError(f"unknown task type '{name}'; choose one of {sorted(TASK_KINDS)}")
    return TASK_KINDS[name]


def kind_of(spec: TaskSpec) -> TaskKind:
    return get_kind(spec.type)


__all__ = ["TASK_KINDS", "ClassificationKind", "ExtractiveQAKind", "RegressionKind", "RequestError", "TaskKind", "TextToTextKind", "TokenClassificationKind", "get_kind", "kind_of"]

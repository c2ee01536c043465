"""Task-ID-free inference: selectors that pick each input's task, the per-task statistics they read, and the
per-stage measurement of them."""

from seqadapt.selection.candidates import CandidateBatch
from seqadapt.selection.config import SelectionConfig
from seqadapt.selection.report import evaluate_selection
from seqadapt.selection.selectors import (
    DEFAULT_SELECTOR,
    SELECTORS,
    Selector,
    check_selectors,
    get_selector,
    selectors_for,
)
from seqadapt.selection.state import SelectionState
from seqadapt.selection.statistics import TaskStatistics

__all__ = [
    "DEFAULT_SELECTOR", "SELECTORS", "CandidateBatch", "SelectionConfig", "SelectionState", "Selector", "TaskStatistics",
    "check_selectors", "evaluate_selection", "get_selector", "selectors_for",
]

"""Task-ID-free inference: selectors that pick each input's task, and the per-stage measurement of them."""

from seqadapt.selection.candidates import CandidateBatch
from seqadapt.selection.report import evaluate_selection
from seqadapt.selection.selectors import SELECTORS, Selector, check_selectors, get_selector

__all__ = ["SELECTORS", "CandidateBatch", "Selector", "check_selectors", "evaluate_selection", "get_selector"]

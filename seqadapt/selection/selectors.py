"""Task-ID-free inference: pick each input's task automatically, and measure how well that works.

A selector scores every candidate task for every row of a batch (higher is
better) and the row goes to the best-scoring task's adapters and head. All
share one interface, :class:`Selector`. Two kinds of cost:

- One bare backbone pass, whatever the number of tasks (then the chosen task's
  adapted pass: two passes per input). They read only each task's stored
  selection statistics (:mod:`seqadapt.selection.statistics`), computed from
  its training split at the end of its stage:

  - ``prototype``: the nearest class centroid (cosine) of the pooled feature.
  - ``mahalanobis``: the nearest class mean under one covariance shared by all
    candidates' classes, pooled from their stored within-class scatter and
    shrunk (``selection.shrinkage``).
  - ``ranpac``: RanPAC's ridge regression over all candidates' classes on a
    fixed random projection relu(W x) of the feature (``selection.projection_dim``,
    ``selection.ridge``), solved from the tasks' stored Gram matrices.

- One adapted pass per candidate (each row replicated per task, all in one
  mixed-task pass):

  - ``entropy``: the most certain head, i.e. the lowest predictive entropy
    divided by log(number of labels), so 2- and 8-label tasks compete on one scale.
  - ``calibrated_entropy``: the same after dividing each head's outputs by its
    temperature, fitted on the task's validation split (NLL).
  - ``perplexity``: the lowest loss of the input itself under each candidate's
    adapters and the frozen language-model head (decoder-only backbones;
    :mod:`seqadapt.selection.perplexity`).

:class:`CandidateBatch` runs each pass at most once, so the stream's
per-stage report reads the candidates' logits of one pass for the entropy
selectors and for the accuracy with task IDs alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

import torch

from seqadapt.selection.candidates import CandidateBatch
from seqadapt.selection.config import SelectionConfig
from seqadapt.selection.combine import gaussian_model, mahalanobis_scores, ridge_model, ridge_scores
from seqadapt.selection.perplexity import PerplexitySelector


class Selector(Protocol):
    """Scores [B, C]: how well each of a batch's B rows fits each of its C candidate tasks (higher is better).
    ``needs_decoder``: it runs on decoder-only backbones only."""

    name: str
    needs_decoder: bool

    def scores(self, batch: CandidateBatch) -> torch.Tensor: ...


class EntropySelector:
    """Minimum normalised predictive entropy over the candidates' heads, as each candidate's kind measures it
    (:meth:`~seqadapt.kinds.TaskKind.confidence`: over classes, over a tagger's tokens, over span positions)."""

    name = "entropy"
    needs_decoder = False
    calibrated = False

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        columns = []
        for task, per_row in zip(batch.candidates, batch.logits):
            outputs = torch.stack(per_row)
            if self.calibrated:
                outputs = outputs.float() / batch.module.selection[task].temperature.to(outputs.device)
            columns.append(batch.module.kind(task).confidence(outputs, batch.attention_mask).to(batch.input_ids.device))
        return torch.stack(columns, dim=1)


class CalibratedEntropySelector(EntropySelector):
    """:class:`EntropySelector` over each head's outputs divided by its validation-fitted temperature."""

    name = "calibrated_entropy"
    calibrated = True


class PrototypeSelector:
    """Nearest class centroid (cosine) of the bare backbone's pooled feature, over all candidates' classes."""

    name = "prototype"
    needs_decoder = False

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        stats = batch.module.selection.require_fitted(batch.candidates, self.name)
        return torch.stack([s.similarity(batch.features) for s in stats], dim=1)


class MahalanobisSelector:
    """Nearest class mean under a shared, shrunk covariance (linear discriminant analysis over all classes)."""

    name = "mahalanobis"
    needs_decoder = False

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        state, candidates = batch.module.selection, batch.candidates
        stats = state.require_fitted(candidates, self.name)
        shrinkage = state.config.shrinkage
        model = state.combined((self.name, tuple(candidates), shrinkage), candidates,
                               lambda: gaussian_model(stats, shrinkage, state.pooled_scatter(candidates)))
        return mahalanobis_scores(batch.features, model, len(candidates)).float()


class RanpacSelector:
    """RanPAC: ridge regression on relu(W x) over all classes, W random and fixed (Zhou et al. 2023's RP + ridge)."""

    name = "ranpac"
    needs_decoder = False

    def scores(self, batch: CandidateBatch) -> torch.Tensor:
        state, candidates = batch.module.selection, batch.candidates
        if state.config.projection_dim == 0:
            raise ValueError(  # a ValueError: seqadapt-predict --select ranpac reports it as a usage error
                "selector 'ranpac' needs a random projection, but this run has selection.projection_dim=0, so its "
                "tasks stored no Gram matrices: choose another selector, or train with selection.projection_dim > 0"
            )
        stats = state.require_fitted(candidates, self.name)
        ridge = state.config.ridge
        model = state.combined((self.name, tuple(candidates), ridge), candidates, lambda: ridge_model(stats, ridge))
        return ridge_scores(batch.projected, model, len(candidates)).float()


SELECTORS: dict[str, Selector] = {
    selector.name: selector
    for selector in (
        EntropySelector(), CalibratedEntropySelector(), PrototypeSelector(), MahalanobisSelector(), RanpacSelector(),
        PerplexitySelector(),
    )
}
DEFAULT_SELECTOR = MahalanobisSelector.name  # the best measured (docs/results/selection.md)


def get_selector(name: str) -> Selector:
    if name not in SELECTORS:
        raise KeyError(f"unknown task selector '{name}'; choose one of {sorted(SELECTORS)}")
    return SELECTORS[name]


def selectors_for(architecture: str) -> list[str]:
    """The selectors that run on a backbone of ``architecture`` (``encoder``, ``decoder``, ``encoder_decoder``)."""
    return [name for name, selector in SELECTORS.items() if architecture == "decoder" or not selector.needs_decoder]


def check_selectors(names: Iterable[str], config: SelectionConfig | None = None, architecture: str | None = None) -> list[str]:
    """The selector names, checked before any training starts (with ``config`` and the backbone's
    ``architecture``: also that it can run them)."""
    names = list(names)
    for name in names:
        get_selector(name)
    if architecture is not None:
        wrong = [name for name in names if name not in selectors_for(architecture)]
        if wrong:
            raise ValueError(f"selection.selectors has {wrong}, which need a decoder-only language model (e.g. "
                             f"backbone=smollm2); this backbone is {architecture.replace('_', '-')}: drop them")
    if config is not None and RanpacSelector.name in names and config.projection_dim == 0:
        raise ValueError(
            "selection.selectors has 'ranpac', which needs a random projection, but selection.projection_dim is 0: "
            "set selection.projection_dim (e.g. 2048; each task then stores an M x M Gram matrix) or drop 'ranpac'"
        )
    return names

"""The settings task-ID-free selection is computed with: stored with a run, so serving reproduces its choices."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any


def resolve_layers(layers: tuple[int | str, ...], hidden_states: int) -> list[int]:
    """``layers`` as hidden-state indices of a backbone with ``hidden_states`` of them (``"middle"``: layer
    L // 2 of L; negative indices stay negative), refusing any it does not have."""
    resolved = [(hidden_states - 1) // 2 if layer == "middle" else layer for layer in layers]
    wrong = [layer for layer in resolved if not -hidden_states <= layer < hidden_states]
    if wrong:
        raise ValueError(
            f"selection.layers {list(layers)}: {wrong} is not a hidden state of this backbone, which has "
            f"{hidden_states} (0: the embeddings, -1: the last layer)"
        )
    return resolved


@dataclass(frozen=True)
class SelectionConfig:
    """How each task's selection statistics are made and how selectors combine them.

    ``layers``: the backbone's hidden states the features are pooled from
    (:func:`~seqadapt.selection.features.selection_features`; 0 is the
    embeddings, -1 the last layer, ``"middle"`` layer L // 2 of L).
    ``projection_dim`` (M) and ``projection_seed`` fix the random projection of
    the ``ranpac`` selector when a task is learned: its stored Gram matrix is
    M x M, so they cannot change afterwards. ``0``, the default, stores none
    and turns the selector off: at M = 4096, its best on held-out data, a
    task's statistics take 73 MB, 30 times its adapters. ``shrinkage``
    (Mahalanobis: the weight of a scaled identity mixed into the shared
    covariance) and ``ridge`` (RanPAC: lambda as a fraction of the Gram
    matrix's mean diagonal, so it does not depend on the features' scale) only
    act when tasks are combined at inference. The defaults were chosen on
    held-out rows of the default stream's training pools
    (``bench/tune_selection.py``), never on test data.
    """

    layers: tuple[int | str, ...] = (0, "middle", -1)
    shrinkage: float = 0.1
    ridge: float = 0.1
    projection_dim: int = 0
    projection_seed: int = 0

    def record(self) -> dict[str, Any]:
        """What fixes a task's statistics when it is learned: its features and projection (an artefact records it)."""
        return {"layers": list(self.layers), "projection_dim": self.projection_dim, "projection_seed": self.projection_seed}

    def __post_init__(self) -> None:
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ValueError(f"selection.shrinkage must be in [0, 1], got {self.shrinkage}")
        if self.ridge <= 0.0:
            raise ValueError(f"selection.ridge must be positive, got {self.ridge}")
        if not self.layers or any(isinstance(x, str) and x != "middle" for x in self.layers):
            raise ValueError(f"selection.layers must list hidden states (whole numbers or 'middle'), e.g. [0, middle, -1]; got {list(self.layers)}")
        if self.projection_dim < 0:
            raise ValueError(f"selection.projection_dim must be 0 (no ranpac) or positive, got {self.projection_dim}")

    @classmethod
    def from_mapping(cls, settings: Mapping[str, Any] | None) -> SelectionConfig:
        """The config's ``selection`` group (keys other than these, e.g. ``selectors``, are not its business);
        a run config written before these keys existed gets the defaults."""
        names = {f.name for f in fields(cls)}
        kept = {key: value for key, value in (settings or {}).items() if key in names}
        if "layers" in kept:
            kept["layers"] = tuple(kept["layers"])
        return cls(**kept)

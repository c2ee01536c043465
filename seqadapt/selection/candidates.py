"""One batch, the tasks it may belong to, and the forward passes selectors read, each run at most once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from seqadapt.model.mixed import mixed_outputs  # the submodule: seqadapt.model imports this package
from seqadapt.selection.features import selection_features

if TYPE_CHECKING:
    from seqadapt.model import SeqAdaptModule


class CandidateBatch:
    """One tokenised batch, the tasks it may belong to, and the forward passes selectors read (each run once).

    ``memo`` keeps this batch's passes across calls (an earlier stage's):
    row-aligned logits per candidate under ``"logits"``, the bare
    backbone's features under ``"features"`` and their random projection
    under ``"projected"``. Only what is missing is
    computed, and ``memo`` is filled in place.
    """

    def __init__(
        self,
        module: SeqAdaptModule,
        batch: dict[str, torch.Tensor],
        candidates: list[str],
        memo: dict[str, Any] | None = None,
    ) -> None:
        if not candidates:
            raise ValueError("no candidate tasks to select from; the model has no tasks yet")
        module.require_known(candidates)
        self.module = module
        self.input_ids = batch["input_ids"].to(module.device)
        self.attention_mask = batch["attention_mask"].to(module.device)
        token_type_ids = batch.get("token_type_ids")
        self.token_type_ids = token_type_ids.to(module.device) if token_type_ids is not None else None
        self.candidates = list(candidates)
        self.memo = memo if memo is not None else {}
        self.known: dict[str, list[torch.Tensor]] = self.memo.setdefault("logits", {})

    def __len__(self) -> int:
        return len(self.input_ids)

    def _ensure(self, tasks: list[str]) -> None:
        """Logits of every row under each of ``tasks`` not yet known, all in one mixed pass."""
        missing = [task for task in dict.fromkeys(tasks) if task not in self.known]
        if not missing:
            return
        copies = len(missing)
        token_type_ids = self.token_type_ids.repeat(copies, 1) if self.token_type_ids is not None else None
        rows = mixed_outputs(
            self.module,
            self.input_ids.repeat(copies, 1), self.attention_mask.repeat(copies, 1),
            [task for task in missing for _ in range(len(self))], token_type_ids,
        )
        for c, task in enumerate(missing):
            self.known[task] = rows[c * len(self):(c + 1) * len(self)]

    @property
    def logits(self) -> list[list[torch.Tensor]]:
        """``logits[c][i]``: row i through candidate c's adapters and head; missing candidates in one mixed pass."""
        self._ensure(self.candidates)
        return [self.known[task] for task in self.candidates]

    @property
    def features(self) -> torch.Tensor:
        """The bare backbone's features for selection [B, D] (:func:`~seqadapt.selection.features.selection_features`)."""
        if "features" not in self.memo:
            self.memo["features"] = selection_features(self.module, self.input_ids, self.attention_mask, self.token_type_ids)
        return self.memo["features"]

    @property
    def projected(self) -> torch.Tensor:
        """The bare features through the module's random projection [B, M] (RanPAC)."""
        if "projected" not in self.memo:
            self.memo["projected"] = self.module.selection.projection(self.features)
        return self.memo["projected"]

    def logits_under(self, tasks: list[str]) -> list[torch.Tensor]:
        """Row i's logits under ``tasks[i]``: from what is known (one task: its pass, remembered), else one pass
        routing each row to its own task."""
        unique = set(tasks)
        if len(unique) == 1:
            self._ensure(list(unique))
        if unique <= self.known.keys():
            return [self.known[task][i] for i, task in enumerate(tasks)]
        return mixed_outputs(self.module, self.input_ids, self.attention_mask, tasks, self.token_type_ids)

"""What a module keeps for task-ID-free selection: each task's statistics, the shared random projection, the settings."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from seqadapt.backbone import tensors_sha256
from seqadapt.selection.config import SelectionConfig, resolve_layers
from seqadapt.selection.projection import RandomProjection
from seqadapt.selection.combine import summed
from seqadapt.selection.statistics import TaskStatistics


class SelectionState(nn.Module):
    """``state[task]``: the task's :class:`TaskStatistics`; ``projection``: RanPAC's W, shared and fixed;
    ``layers``: the hidden states features are pooled from (``"middle"`` resolved for this backbone).

    Selectors combine several tasks' statistics (a pooled covariance, a ridge
    solve); :meth:`combined` remembers each combination for as long as none of
    its inputs was written (PyTorch's per-tensor version counters), so it is
    computed once per set of candidate tasks, not once per batch.
    """

    def __init__(self, hidden_size: int, hidden_states: int, config: SelectionConfig = SelectionConfig()) -> None:
        super().__init__()
        self.layers = resolve_layers(config.layers, hidden_states)
        self.config = config
        self.feature_size = hidden_size * len(self.layers)
        self.tasks = nn.ModuleDict()
        self.projection = RandomProjection(self.feature_size, config.projection_dim, config.projection_seed)
        self._combined: dict[tuple, tuple[tuple, Any]] = {}
        self._scatter: tuple[tuple[str, ...], tuple, torch.Tensor] | None = None  # tasks, their versions, sum

    def add_task(self, name: str, num_classes: int, device: torch.device) -> None:
        self.tasks[name] = TaskStatistics(self.feature_size, num_classes, self.config.projection_dim).to(device)

    def __getitem__(self, name: str) -> TaskStatistics:
        return self.tasks[name]

    def sha256(self, name: str) -> str:
        """Fingerprint of what selection reads for task ``name``: its statistics and the projection they were
        made with (a different W would make its Gram matrix meaningless), for the guard's full check."""
        own = self.tasks[name].unpacked()
        if self.config.projection_dim:
            own["projection.weight"] = self.projection.weight
        return tensors_sha256(own)

    def record(self) -> dict[str, Any]:
        """What an artefact records of how its task's statistics were made: features, projection and its hash."""
        return {**self.config.record(), "projection_sha256": self.projection.sha256 if self.config.projection_dim else None}

    def require_fitted(self, names: list[str], selector: str) -> list[TaskStatistics]:
        """The statistics of ``names``, refusing tasks whose statistics were never computed."""
        unfitted = [name for name in names if not self.tasks[name].fitted]
        if unfitted:
            raise RuntimeError(
                f"selector '{selector}' needs the selection statistics of {unfitted}, which were never computed: "
                "they are fitted on each task's training split at the end of its stage (seqadapt.selection.fit_statistics)"
            )
        return [self.tasks[name] for name in names]

    def combined(self, key: tuple, names: list[str], compute: Callable[[], Any]) -> Any:
        """``compute()`` for ``key`` over tasks ``names``, remembered until one of their statistics changes."""
        versions = self._versions(names)
        remembered = self._combined.get(key)
        if remembered is None or remembered[0] != versions:
            remembered = (versions, compute())
            self._combined[key] = remembered
        return remembered[1]

    def pooled_scatter(self, names: list[str]) -> torch.Tensor:
        """The tasks' within-class scatter summed in order (packed, float64), for the shared covariance. When
        ``names`` begins with the tasks summed last time and none of their statistics changed, only the tasks
        added since are summed in: O(d^2) per new task rather than O(T d^2), with the same bits as a sum
        from scratch (:func:`~seqadapt.selection.combine.summed`)."""
        (kept, kept_versions, kept_total), versions = self._scatter or ((), (), None), self._versions(names)
        grows = bool(kept) and tuple(names[:len(kept)]) == kept and versions[:len(kept_versions)] == kept_versions
        start = len(kept) if grows else 0
        total = summed([self.tasks[name] for name in names[start:]], "scatter", kept_total if grows else None)
        self._scatter = (tuple(names), versions, total)
        return total

    def _versions(self, names: list[str]) -> tuple:
        """Where each buffer of ``names``' statistics lives and its count of in-place writes, in order."""
        return tuple((t.data_ptr(), t._version) for name in names for t in self.tasks[name].buffers())

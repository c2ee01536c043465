"""A task's own tensors, named as in the module: what artefacts store, resume restores and the guard snapshots."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from seqadapt.model.module import SeqAdaptModule


class TaskTensors:
    """Names, reads and restores each task's own tensors in one module; a task's names never change once added."""

    def __init__(self, module: SeqAdaptModule) -> None:
        self._module = module
        self._keys: dict[str, list[str]] = {}

    def owned(self, name: str) -> Iterator[torch.Tensor]:
        """Everything task ``name`` owns: its parameters, its head's buffers (e.g. a regression head's target mean
        and std) and its selection statistics (buffers nothing trains)."""
        yield from self._module.task_parameters(name)
        yield from self._module.heads[name].buffers()
        yield from self._module.selection[name].buffers()

    def of(self, name: str) -> dict[str, torch.Tensor]:
        """Task ``name``'s own tensors, keyed by their names in the module: what an artefact stores."""
        return self.of_tasks([name])[name]

    def of_tasks(self, names: list[str]) -> dict[str, dict[str, torch.Tensor]]:
        """:meth:`of` for several tasks; each task's tensor names are looked up once and remembered."""
        unnamed = [name for name in names if name not in self._keys]
        if unnamed:
            module = self._module
            keys = {id(t): key for key, t in [*module.named_parameters(), *module.named_buffers()]}
            for name in unnamed:
                self._keys[name] = [keys[id(t)] for t in self.owned(name)]
        return {
            name: dict(zip(self._keys[name], (t.detach() for t in self.owned(name)), strict=True)) for name in names
        }

    def load(self, name: str, tensors: dict[str, torch.Tensor]) -> None:
        """Copy saved tensors into task ``name``; names and shapes must match exactly.

        Each saved name is looked up along its own path in the module, and the tensors found must be exactly
        the ones the task owns: no walk over every other task's tensors, which made loading T tasks cost
        O(T^2) (the walk runs only to name what is wrong, when something is)."""
        owned = {id(t) for t in self.owned(name)}
        found = {key: self._at(key) for key in tensors}
        fits = all(t is not None and id(t) in owned and t.shape == tensors[key].shape for key, t in found.items())
        if not fits or {id(t) for t in found.values()} != owned:
            raise ValueError(self._misfit(name, tensors))
        with torch.no_grad():
            for key, target in found.items():
                target.copy_(tensors[key])

    def _at(self, key: str) -> torch.Tensor | None:
        """The parameter or buffer itself (not a copy) the module holds under ``key``, or ``None``."""
        for lookup in (self._module.get_parameter, self._module.get_buffer):
            try:
                return lookup(key)
            except AttributeError:
                continue
        return None

    def _misfit(self, name: str, tensors: dict[str, torch.Tensor]) -> str:
        own = self.of(name)
        missing, unexpected = sorted(set(own) - set(tensors)), sorted(set(tensors) - set(own))
        wrong = sorted(k for k in set(own) & set(tensors) if own[k].shape != tensors[k].shape)
        return (f"saved tensors do not fit task '{name}' as configured: missing {missing[:3]}, "
                f"unexpected {unexpected[:3]}, wrong shape {wrong[:3]}. Use the adapter config the artefact was saved with.")

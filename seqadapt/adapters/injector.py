"""Wraps a Hugging Face model's sublayers so that per-task adapters can be added by name.

Where each transformer layer's projections and LayerNorms live comes from the family table
(:mod:`seqadapt.families`); which of them a method wraps, and with what, from the method
(:mod:`seqadapt.adapters.methods`). The modules are replaced in place with :class:`TaskSlot` /
:class:`TaskLayerNorm` wrappers once; adding a task afterwards only adds small
modules inside the wrappers and never touches another task's tensors.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import nn

from seqadapt.adapters.layer import TaskLayerNorm, TaskRouter, TaskSlot
from seqadapt.adapters.methods import MethodConfig, place
from seqadapt.families import FAMILIES, Stack, model_family


class UnsupportedArchitectureError(ValueError):
    """The backbone's architecture has no known adapter placement."""


def stacks_for(model: nn.Module) -> tuple[Stack, ...]:
    """Where adapters go in ``model`` (:mod:`seqadapt.families`), or a clear error naming what is supported."""
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    stacks = model_family(model).stacks
    if not stacks:
        raise UnsupportedArchitectureError(
            f"seqadapt cannot place adapters in {type(model).__name__} (model_type={model_type!r}). "
            f"Supported model types: {', '.join(sorted(FAMILIES))}. "
            "Use a backbone of one of these families (see the families table in docs/concepts/model-families.md)."
        )
    return stacks


class TaskAdapters:
    """The per-task adapters injected into one backbone, addressed by task name.

    Injection freezes every tensor the backbone already has: from then on only
    task modules added with :meth:`add_task` can ever require gradients.
    """

    def __init__(self, model: nn.Module, config: MethodConfig) -> None:
        stacks = stacks_for(model)
        model.requires_grad_(False)
        self.config = config
        self.hidden_size: int = model.config.hidden_size  # mapped from n_embd, d_model, dim... by each config
        self.router = TaskRouter()
        wrappers = [wrapper for stack in stacks for layer in model.base_model.get_submodule(stack.layers)
                    for wrapper in place(config, layer, stack, self.router, self.hidden_size)]
        self.slots: list[TaskSlot] = [w for w in wrappers if isinstance(w, TaskSlot)]
        self.norms: list[TaskLayerNorm] = [w for w in wrappers if isinstance(w, TaskLayerNorm)]
        self._tasks: list[str] = []

    @property
    def tasks(self) -> list[str]:
        return list(self._tasks)

    def add_task(self, task: str, initialise: bool = True) -> None:
        """Create ``task``'s fresh modules (and LayerNorm copies, if configured) in every slot, in eval mode
        (they live inside the frozen backbone); ``initialise=False``: see :meth:`TaskSlot.add`."""
        if task in self._tasks:
            raise ValueError(f"task '{task}' already has adapters; task names must be unique in a stream")
        for slot in self.slots:
            slot.add(task, initialise)
            slot.adapters[task].eval()
        for norm in self.norms:
            norm.add(task)
        self._tasks.append(task)

    def task_parameters(self, task: str) -> Iterator[nn.Parameter]:
        """Every parameter that belongs to ``task`` alone."""
        if task not in self._tasks:
            raise KeyError(f"no adapters for task '{task}'; known tasks: {self._tasks}")
        for slot in self.slots:
            yield from slot.adapters[task].parameters()
        for norm in self.norms:
            yield from norm.norms[task].parameters()


def _task_prefixes(model: nn.Module) -> tuple[str, ...]:
    """Name prefixes of every per-task module (adapters, LayerNorm copies) inside ``model``."""
    return tuple(
        f"{name}.{'adapters' if isinstance(module, TaskSlot) else 'norms'}."
        for name, module in model.named_modules()
        if isinstance(module, (TaskSlot, TaskLayerNorm))
    )


def shared_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's own tensors, keyed as in the unwrapped model's ``state_dict``.

    Per-task adapters and LayerNorm copies are left out and the ``base_layer``
    hop the wrappers add is removed, so the result (and a hash of it) is the
    same before and after injection, and for a fresh load of the same weights.
    """
    task_prefixes = _task_prefixes(model)
    return {
        key.replace(".base_layer.", "."): value
        for key, value in model.state_dict().items()
        if not key.startswith(task_prefixes)
    }


def shared_tensor_reader(model: nn.Module) -> Callable[[], dict[str, torch.Tensor]]:
    """A function that reads the backbone's own parameters and buffers afresh from their modules.

    The model is walked once, here; each later read is one attribute lookup
    per tensor, whatever the number of tasks, so the guard can afford it after
    every stage. Reading afresh means a replaced tensor is seen as replaced.
    """
    task_prefixes = _task_prefixes(model)
    owners = [
        (f"{name}.{attr}".lstrip(".").replace(".base_layer.", "."), module, attr)
        for name, module in model.named_modules()
        if not f"{name}.".startswith(task_prefixes)
        for attr, tensor in [*module._parameters.items(), *module._buffers.items()]
        if tensor is not None
    ]
    return lambda: {key: getattr(module, attr) for key, module, attr in owners}

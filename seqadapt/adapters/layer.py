"""The bottleneck adapter and the wrappers that route a backbone module through one task's own module.

Every wrapped backbone module keeps its original module as ``base_layer`` (frozen,
shared) and holds one small module per task in a ``ModuleDict`` keyed by task
name. Which task runs is read from a shared :class:`TaskRouter`, so switching
tasks is one assignment rather than a walk over the model.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "swish": nn.SiLU,
}


from seqadapt.strategies import SUMMED


class Summed:
    """Several tasks' side modules as one: ``x -> sum_i f_i(x)``. Only sound where a module's output is an update
    added to the wrapped module's (LoRA in a :class:`SideSlot`); a plain object, so it holds no parameters."""

    def __init__(self, modules: list[nn.Module]) -> None:
        self.modules = modules

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        return torch.stack([module(inputs) for module in self.modules]).sum(dim=0)


class TaskRouter:
    """Names the adapter that runs; ``None`` runs the bare backbone, :data:`SUMMED` every task's at once.

    :meth:`activate` sets the adapter that runs until the next call (what a
    stage trains); :meth:`route` and :meth:`route_rows` change it for the
    duration of a ``with`` block and put it back afterwards, also on error.
    For a batch that mixes tasks, ``rows`` maps each adapter name to the batch
    rows that run through it, and takes precedence over ``active``. A plain
    object, not a module: it carries no weights and must not appear in state
    dicts. All wrappers of one model share the same instance; they only read it.
    """

    def __init__(self) -> None:
        self.active: str | None = None
        self.rows: dict[str, torch.Tensor] | None = None

    def activate(self, adapter: str | None) -> None:
        """Run ``adapter`` (``None``: none) from now on, for every row."""
        self.active, self.rows = adapter, None

    @contextmanager
    def route(self, adapter: str | None) -> Iterator[None]:
        """Run ``adapter`` (``None``: the bare backbone) for every row inside the block."""
        with self._restoring():
            self.activate(adapter)
            yield

    @contextmanager
    def route_rows(self, rows: dict[str, torch.Tensor]) -> Iterator[None]:
        """Inside the block, run the batch rows ``rows[name]`` through adapter ``name``."""
        with self._restoring():
            self.rows = rows
            yield

    @contextmanager
    def _restoring(self) -> Iterator[None]:
        previous = self.active, self.rows
        try:
            yield
        finally:
            self.active, self.rows = previous


def route_rows(
    hidden: torch.Tensor, rows: dict[str, torch.Tensor], modules: nn.ModuleDict, default: nn.Module | None
) -> torch.Tensor:
    """Each group of batch rows through its own module (``default``, or unchanged, where it has none)."""
    out = hidden.clone()
    for name, index in rows.items():
        module = modules[name] if name in modules else default
        if module is not None:
            out[index] = module(hidden[index])
    return out


class BottleneckAdapter(nn.Module):
    """``h + up(act(down(h)))``: down-projection d→m, nonlinearity, up-projection m→d, skip.

    Both projections start from a truncated normal N(0, init_scale²) cut at 2σ
    with zero biases (Houlsby et al. 2019), so a fresh adapter barely moves the
    backbone's output and ``init_scale=0`` leaves it exactly unchanged.
    """

    def __init__(self, hidden_size: int, bottleneck: int, non_linearity: str, init_scale: float) -> None:
        super().__init__()
        self.down = nn.Linear(hidden_size, bottleneck)
        self.act = ACTIVATIONS[non_linearity]()
        self.up = nn.Linear(bottleneck, hidden_size)
        for proj in (self.down, self.up):
            if init_scale > 0:
                nn.init.trunc_normal_(proj.weight, std=init_scale, a=-2 * init_scale, b=2 * init_scale)
            else:
                nn.init.zeros_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return hidden + self.up(self.act(self.down(hidden)))

    @staticmethod
    def num_parameters(hidden_size: int, bottleneck: int) -> int:
        """2md + d + m: two weight matrices and two bias vectors."""
        return 2 * bottleneck * hidden_size + hidden_size + bottleneck


class TaskSlot(nn.Module):
    """Wraps one backbone module (``base_layer``, frozen, shared) and holds one small module per task.

    ``make`` builds a task's fresh module; :meth:`add` puts it beside the wrapped module's weight (same device
    and dtype). Subclasses say where the task's module acts: on the output (:class:`AdapterSlot`), beside the
    module (:class:`SideSlot`) or on its input (``seqadapt.adapters.ia3``).
    """

    def __init__(self, base_layer: nn.Module, router: TaskRouter, make: Callable[[], nn.Module]) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapters = nn.ModuleDict()
        self._router = router
        self._make = make

    def add(self, task: str, initialise: bool = True) -> None:
        """A fresh module for ``task``; without ``initialise`` its tensors are allocated but not drawn (an
        artefact's tensors are about to be copied in: drawing them costs more than loading them)."""
        ref = self.base_layer.weight
        if initialise:
            module = self._make()
        else:
            with torch.device("meta"):
                module = self._make()
            module = module.to_empty(device=ref.device)
        self.adapters[task] = module.to(device=ref.device, dtype=ref.dtype)

    @property
    def weight(self) -> torch.Tensor:
        """The wrapped projection's weight: some blocks read it (T5's feed-forward casts to its dtype)."""
        return self.base_layer.weight

    def selected(self) -> nn.Module | Summed | None:
        """The module of the task every row runs through (``None``: no task, or one without a module here);
        routed :data:`SUMMED`, every task's modules summed."""
        task = self._router.active
        if task == SUMMED:
            return Summed(list(self.adapters.values())) if len(self.adapters) else None
        return self.adapters[task] if task is not None and task in self.adapters else None

    def apply(self, hidden: torch.Tensor) -> torch.Tensor:
        """``hidden`` through the routed task modules: each row group through its own, else the active task's;
        unchanged where a task has none here."""
        if self._router.rows is not None:
            return route_rows(hidden, self._router.rows, self.adapters, default=None)
        module = self.selected()
        return hidden if module is None else module(hidden)


class AdapterSlot(TaskSlot):
    """Applies the active task's module to the wrapped module's output.

    Wrapping an output projection (``attention.output.dense``, ``output.dense``, …) places a bottleneck
    adapter before the residual add and LayerNorm, as in Houlsby et al.; the sublayer's dropout then follows
    the adapter, which is the identity because the frozen backbone always runs in eval mode.
    """

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        return self.apply(self.base_layer(*args, **kwargs))


class SideSlot(TaskSlot):
    """Adds the active task's module, applied to a source, to the wrapped module's output: ``W x + f(s)``.

    The source is the wrapped module's own input (LoRA: ``s = x``) unless :meth:`read_from` names an
    :class:`InputTap` whose last input it takes instead (a parallel adapter reads the feed-forward block's input).
    """

    def __init__(self, base_layer: nn.Module, router: TaskRouter, make: Callable[[], nn.Module]) -> None:
        super().__init__(base_layer, router, make)
        self._take: Callable[[], torch.Tensor] | None = None  # a bound method: the tap is not a submodule here

    def read_from(self, tap: InputTap) -> None:
        self._take = tap.take

    def forward(self, inputs: torch.Tensor, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        out = self.base_layer(inputs, *args, **kwargs)
        source = inputs if self._take is None else self._take()
        if self._router.rows is None:
            module = self.selected()
            return out if module is None else out + module(source)
        out = out.clone()
        for name, index in self._router.rows.items():
            if name in self.adapters:
                out[index] = out[index] + self.adapters[name](source[index])
        return out


class InputTap(nn.Module):
    """Passes its input through the wrapped module unchanged and keeps it for a :class:`SideSlot` further on
    in the same layer, which takes it (so no activation is held between forward passes)."""

    def __init__(self, base_layer: nn.Module) -> None:
        super().__init__()
        self.base_layer = base_layer
        self._seen: torch.Tensor | None = None

    def forward(self, inputs: torch.Tensor, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        self._seen = inputs
        return self.base_layer(inputs, *args, **kwargs)

    def take(self) -> torch.Tensor:
        seen, self._seen = self._seen, None
        if seen is None:
            raise RuntimeError("the feed-forward input was not seen before its output projection ran")
        return seen


def in_out_features(module: nn.Module) -> tuple[int, int]:
    """A projection's input and output sizes: ``nn.Linear``, or GPT-2's ``Conv1D`` (weight stored in x out)."""
    if isinstance(module, nn.Linear):
        return module.in_features, module.out_features
    rows, cols = module.weight.shape
    return rows, cols


def wrap(root: nn.Module, dotted: str, factory: Callable[[nn.Module], nn.Module]) -> nn.Module:
    """Replace the submodule at ``dotted`` with ``factory(it)``; returns the wrapper."""
    parent_path, _, child = dotted.rpartition(".")
    parent = root.get_submodule(parent_path) if parent_path else root
    wrapped = factory(getattr(parent, child))
    setattr(parent, child, wrapped)
    return wrapped


class TaskLayerNorm(nn.Module):
    """A LayerNorm with optional per-task copies; tasks without a copy use the frozen original."""

    def __init__(self, base_layer: nn.Module, router: TaskRouter) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.norms = nn.ModuleDict()
        self._router = router

    def add(self, task: str) -> None:
        norm = copy.deepcopy(self.base_layer)
        norm.requires_grad_(True)
        self.norms[task] = norm

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        if self._router.rows is not None:
            return route_rows(hidden, self._router.rows, self.norms, default=self.base_layer)
        task = self._router.active
        norm = self.norms[task] if task is not None and task in self.norms else self.base_layer
        return norm(hidden)

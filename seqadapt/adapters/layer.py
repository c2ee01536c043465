"""The bottleneck adapter and the wrappers that route a layer's output through one task's copy.

Every wrapped backbone module keeps its original module as ``base_layer`` (frozen,
shared) and holds one small module per task in a ``ModuleDict`` keyed by task
name. Which task runs is read from a shared :class:`TaskRouter`, so switching
tasks is one assignment rather than a walk over the model.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "gelu": nn.GELU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "swish": nn.SiLU,
}


class TaskRouter:
    """Names the adapter that runs; ``None`` runs the bare backbone.

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
        self.act = _ACTIVATIONS[non_linearity]()
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


class AdapterSlot(nn.Module):
    """Wraps a sublayer's output projection and applies the active task's adapter after it.

    Wrapping the projection (``attention.output.dense``, ``output.dense``, …)
    places the adapter before the residual add and LayerNorm, as in Houlsby et
    al.; the sublayer's dropout then follows the adapter, which is the identity
    because the frozen backbone always runs in eval mode.
    """

    def __init__(self, base_layer: nn.Module, router: TaskRouter) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.adapters = nn.ModuleDict()
        self._router = router

    def add(self, task: str, adapter: BottleneckAdapter) -> None:
        self.adapters[task] = adapter

    @property
    def weight(self) -> torch.Tensor:
        """The wrapped projection's weight: some blocks read it (T5's feed-forward casts to its dtype)."""
        return self.base_layer.weight

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        hidden = self.base_layer(*args, **kwargs)
        if self._router.rows is not None:
            return route_rows(hidden, self._router.rows, self.adapters, default=None)
        task = self._router.active
        if task is None or task not in self.adapters:
            return hidden
        return self.adapters[task](hidden)


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

"""A task's head as other libraries see it: the one linear layer each seqadapt head ends in.

Every head but text-to-text's (which is the backbone's own language-model head) is dropout (off at inference)
and one ``nn.Linear`` over token states, pooled or per token; each kind says which (``TaskKind.head_form``) and
what its linear layer is called (``TaskKind.head_linear``). Whether a library's head type computes the same is
each library module's question; this one only names the tensors.
"""

from __future__ import annotations

import torch

from seqadapt.data.tasks import TaskSpec
from seqadapt.exchange.errors import ExchangeError
from seqadapt.kinds import kind_of

LINEAR_FORMS = ("pooled", "per_token", "spans")  # a linear layer and nothing else: what other libraries' heads are


def head_form(spec: TaskSpec) -> str | None:
    """What ``spec``'s head computes (``TaskKind.head_form``); ``None``: it has no head of its own."""
    return kind_of(spec).head_form


def head_linear(spec: TaskSpec, head: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and bias of a head's linear layer (``head``: its tensors by their names inside the head)."""
    name = kind_of(spec).head_linear
    return head[f"{name}.weight"], head[f"{name}.bias"]


def linear_head(spec: TaskSpec, weight: torch.Tensor, bias: torch.Tensor) -> dict[str, torch.Tensor]:
    """The inverse of :func:`head_linear`: a head's tensors from its linear layer's."""
    kind = kind_of(spec)
    if kind.head_form not in LINEAR_FORMS:
        raise ExchangeError(f"a {kind.name} head is not a linear layer alone")
    return {f"{kind.head_linear}.weight": weight, f"{kind.head_linear}.bias": bias}

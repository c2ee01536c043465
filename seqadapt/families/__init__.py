"""Model families: per ``model_type``, where adapters go, how the backbone loads, which states heads read."""

from __future__ import annotations

from torch import nn

from seqadapt.families.family import TARGETS, Family, Stack
from seqadapt.families.states import TokenStates, num_hidden_states, read_stack, token_states
from seqadapt.families.table import FAMILIES, UNKNOWN


def family_of(model_type: str | None) -> Family:
    """The family of a ``config.model_type``; an unknown type runs as an encoder that cannot take adapters."""
    return FAMILIES.get(model_type or "", UNKNOWN)


def model_family(model: nn.Module) -> Family:
    """The family of a loaded model, from its config's ``model_type``."""
    return family_of(getattr(getattr(model, "config", None), "model_type", None))


__all__ = ["FAMILIES", "TARGETS", "Family", "Stack", "TokenStates", "family_of", "model_family", "num_hidden_states", "read_stack", "token_states"]

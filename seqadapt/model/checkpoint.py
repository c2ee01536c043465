"""Lightning checkpoints without the frozen backbone: only what training changes is worth saving."""

from __future__ import annotations

from typing import Any

from torch import nn

from seqadapt.adapters import shared_state


def without_frozen_backbone(state_dict: dict[str, Any], backbone: nn.Module) -> dict[str, Any]:
    """``state_dict`` (the LightningModule's, backbone under ``backbone.``) less every frozen backbone tensor."""
    frozen = {f"backbone.{key}" for key in shared_state(backbone)}
    frozen |= {key.replace(".base_layer.", ".") for key in frozen}
    return {key: value for key, value in state_dict.items() if key.replace(".base_layer.", ".") not in frozen}

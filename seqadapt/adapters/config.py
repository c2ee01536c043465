"""Adapter hyper-parameters, validated once so every layer can trust them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Placement = Literal["houlsby", "pfeiffer"]
NONLINEARITIES = ("gelu", "relu", "tanh", "swish")


def check_non_linearity(name: str) -> None:
    """Refuse an activation the adapters do not know, naming the ones they do."""
    if name not in NONLINEARITIES:
        raise ValueError(f"unknown adapter non_linearity '{name}'; choose one of {NONLINEARITIES}")


@dataclass(frozen=True)
class AdapterConfig:
    """How the bottleneck adapters of every task are shaped and placed.

    ``bottleneck`` (m) and ``reduction_factor`` (d/m) are two ways to size the
    same thing; give exactly one. ``placement="houlsby"`` puts an adapter after
    the attention output projection and after the feed-forward output of every
    layer (Houlsby et al. 2019); ``"pfeiffer"`` keeps only the feed-forward one.
    ``init_scale`` is the std of the truncated-normal init of both projections:
    small values make a fresh adapter a near-identity, ``0`` an exact identity.
    ``train_layer_norm`` gives each task its own copies of the LayerNorms that
    follow an adapter, so tuning them never touches another task.
    """

    bottleneck: int | None = 64
    reduction_factor: float | None = None
    non_linearity: str = "gelu"
    init_scale: float = 1e-2
    placement: Placement = "houlsby"
    train_layer_norm: bool = False

    def __post_init__(self) -> None:
        if (self.bottleneck is None) == (self.reduction_factor is None):
            raise ValueError(
                "AdapterConfig needs exactly one of bottleneck (m) or reduction_factor (d/m); "
                f"got bottleneck={self.bottleneck}, reduction_factor={self.reduction_factor}. "
                "Set the other one to null."
            )
        if self.bottleneck is not None and self.bottleneck < 1:
            raise ValueError(f"adapter bottleneck must be >= 1, got {self.bottleneck}")
        if self.reduction_factor is not None and self.reduction_factor <= 0:
            raise ValueError(f"adapter reduction_factor must be > 0, got {self.reduction_factor}")
        check_non_linearity(self.non_linearity)
        if self.placement not in ("houlsby", "pfeiffer"):
            raise ValueError(f"unknown adapter placement '{self.placement}'; choose 'houlsby' or 'pfeiffer'")
        if self.init_scale < 0:
            raise ValueError(f"adapter init_scale must be >= 0, got {self.init_scale}")

    def bottleneck_size(self, hidden_size: int) -> int:
        """The bottleneck width m for a backbone of hidden size d."""
        if self.bottleneck is not None:
            return self.bottleneck
        return max(1, int(hidden_size // self.reduction_factor))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

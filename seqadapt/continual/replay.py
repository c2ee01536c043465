"""Experience replay (Chaudhry et al. 2019, "On Tiny Episodic Memories in Continual Learning"): a reservoir of
k training rows per learned task, and every training batch of a later stage extended with rows drawn from it.

The extended batch's loss is the mean over all its rows, ``(B * L_new + sum of replayed rows' losses) / (B + R)``,
as if the rows had been concatenated into one batch; each replayed row goes through its own task's adapter and
head. Earlier heads stay as learned (they are not among what the stage trains): rehearsal moves the shared
weights back towards serving them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from seqadapt.continual.rehearsal import Rehearsal

if TYPE_CHECKING:
    from seqadapt.model import SeqAdaptModule


@dataclass(frozen=True)
class ReplayConfig:
    """``rows_per_task``: the reservoir kept of each task; ``batch_size``: rows replayed with every batch."""

    rows_per_task: int = 50
    batch_size: int = 8

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"strategy.batch_size (replay) must be a whole number >= 1, got {self.batch_size!r}")


class Replay(Rehearsal):
    name = "replay"

    def __init__(self, config: ReplayConfig) -> None:
        super().__init__(config.rows_per_task)
        self.config = config

    def training_loss(self, module: SeqAdaptModule, batch: dict[str, torch.Tensor], loss: torch.Tensor) -> torch.Tensor:
        if not self.memory.tasks:
            return loss
        rows, replayed = len(batch["labels"]), self.config.batch_size
        replayed_loss = self.memory_loss(module, replayed)
        module.log("train/replay_loss", replayed_loss / replayed, on_step=False, on_epoch=True, batch_size=replayed)
        return (loss * rows + replayed_loss) / (rows + replayed)

"""Which process does what when Lightning runs a stream on several processes (``trainer.strategy=ddp``).

Under DDP every process runs the whole stream: each stage's ``fit`` trains on
its share of the batches, with gradients averaged, so all processes end the
stage with the same task weights. Everything else a stage does that produces
files or verdicts (evaluation, the forgetting guard, ``results.json``, plots,
W&B, artefacts) runs on global rank 0 only; the other ranks wait for its
verdict, which doubles as the stage's barrier, and stop with it if it fails: all ranks then leave together,
once rank 0 has finished its last hooks (:func:`leave_together`).
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel


def is_rank_zero() -> bool:
    """Whether this process is global rank 0: from the process group once training started it, else from the
    launcher's environment (torchrun's ``RANK``, SLURM's ``SLURM_PROCID``, Lightning's ``NODE_RANK``/``LOCAL_RANK``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank() == 0
    for name in ("RANK", "SLURM_PROCID"):
        if name in os.environ:
            return int(os.environ[name]) == 0
    return int(os.environ.get("NODE_RANK", 0)) == 0 and int(os.environ.get("LOCAL_RANK", 0)) == 0


def share_from_rank_zero(value: Any) -> Any:
    """Rank 0's ``value`` on every rank; every rank waits here until rank 0 arrives (a barrier).

    Without a process group of several processes it returns ``value`` as is.
    """
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def close_process_group() -> None:
    """Wait for every rank, then tear the process group down: a gloo group left to interpreter exit can
    abort the process (``terminate called without an active exception``) after all the work is done."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def leave_together() -> None:
    """Where every rank stops at the same point (a failed guard verdict, rank 0's failure it shared), wait
    until every rank has finished its last hooks, then close the group.

    Lightning's launcher SIGKILLs the main process (rank 0) within 5 s of another rank exiting non-zero, so a
    rank leaving first would cut short rank 0's last hooks: the summary, plots, finishing the W&B run. A rank
    that can no longer be reached is not waited for: the failure being raised is what the user must see.
    """
    with contextlib.suppress(RuntimeError):  # torch.distributed's errors (DistBackendError...) are RuntimeErrors
        close_process_group()


def ignore_frozen_under_ddp(module: nn.Module) -> None:
    """Under DDP, synchronise only what trains.

    DDP otherwise broadcasts every parameter and buffer from rank 0 in
    place when a fit starts (and buffers at every step): 22.7M frozen
    backbone weights moved for nothing, and writes to earlier tasks'
    tensors that the guard's tensor check rightly reports. Frozen tensors
    are identical on every rank by construction: the same loaded weights,
    and each stage seeded alike before its task is created.
    """
    for param in module.parameters():
        if param.requires_grad and hasattr(param, "_ddp_ignored"):
            del param._ddp_ignored  # trained again (a shared adapter, a fine-tuned backbone)
    frozen = [name for name, param in module.named_parameters() if not param.requires_grad]
    DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(
        module, frozen + [name for name, _ in module.named_buffers()]
    )

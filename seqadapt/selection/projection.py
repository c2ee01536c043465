"""RanPAC's random projection: a fixed random matrix made from a seed, so runs store the seed, not the matrix."""

from __future__ import annotations

import hashlib

import torch
from torch import nn

from seqadapt.backbone import tensor_bytes


class RandomProjection(nn.Module):
    """``phi(x) = relu(W x)`` with ``W`` [M, d] drawn from N(0, 1) by a generator seeded with ``seed``.

    ``W`` is a non-persistent buffer: it never enters a checkpoint or artefact,
    it is rebuilt from ``(d, M, seed)`` and checked against the SHA-256 the run
    recorded (:attr:`sha256`), so a changed seed, size or random generator is
    a loud error rather than silently different selections.
    """

    def __init__(self, hidden_size: int, dim: int, seed: int) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        self.seed = seed
        self.register_buffer("weight", torch.randn(dim, hidden_size, generator=generator), persistent=False)

    @property
    def dim(self) -> int:
        return self.weight.shape[0]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(tensor_bytes(self.weight.cpu())).hexdigest()

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.relu(features.float() @ self.weight.float().T)

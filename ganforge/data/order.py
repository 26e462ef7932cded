"""A resumable, shardable batch sampler for in-memory datasets.

Every epoch is a permutation drawn from ``(seed, domain, epoch)`` alone, so the data order is a pure
function of a small state (epoch, position) that a checkpoint stores; each process takes every
``world``-th index of the same permutation, so processes see disjoint shards.
"""

from __future__ import annotations

import zlib

import torch


class EpochSampler:
    def __init__(self, size: int, batch_size: int, seed: int, domain: str, rank: int = 0, world: int = 1):
        if size <= 0:
            raise ValueError("cannot sample from an empty dataset")
        self.size, self.batch_size = size, batch_size
        self.seed = (seed * 1_000_003 + zlib.crc32(domain.encode())) % (2**62)
        self.rank, self.world = rank, world
        self.epoch, self.position = 0, 0
        self._shard: torch.Tensor | None = None

    def _epoch_shard(self) -> torch.Tensor:
        if self._shard is None:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            perm = torch.randperm(self.size, generator=g)
            shard = perm[self.rank :: self.world]
            # Tiny datasets split across processes can leave a rank with nothing: fall back to the whole permutation.
            self._shard = shard if len(shard) > 0 else perm
        return self._shard

    def next_indices(self) -> torch.Tensor:
        out = []
        needed = self.batch_size
        while needed > 0:
            shard = self._epoch_shard()
            take = shard[self.position : self.position + needed]
            out.append(take)
            needed -= len(take)
            self.position += len(take)
            if self.position >= len(shard):
                self.epoch, self.position, self._shard = self.epoch + 1, 0, None
        return torch.cat(out)

    def state(self) -> list[int]:
        return [self.epoch, self.position]

    def load_state(self, state) -> None:
        self.epoch, self.position = int(state[0]), int(state[1])
        self._shard = None

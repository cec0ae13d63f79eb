"""Which samples each worker reads at each step.

The global batch b of epoch e is the b-th contiguous block of a permutation
of the training set seeded by (seed, e); worker i of W takes the i-th
contiguous slice of that batch. The batch composition therefore depends only
on the seed, never on the number of workers, and the whole sampler state is
the pair (epoch, batch).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BatchSampler:
    """Seeded, worker-count-independent mini-batches over N samples."""

    num_samples: int
    batch_size: int
    seed: int
    shuffle: bool = True

    @property
    def batches_per_epoch(self) -> int:
        """Steps per epoch; the last batch may be smaller than the others."""
        return math.ceil(self.num_samples / self.batch_size)

    def order(self, epoch: int) -> np.ndarray:
        """The sample order of one epoch."""
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def batch(self, order: np.ndarray, batch: int) -> np.ndarray:
        """Indices of global batch number ``batch`` within an epoch's order."""
        start = batch * self.batch_size
        return order[start : start + self.batch_size]


def worker_slice(indices: np.ndarray, rank: int, num_workers: int) -> np.ndarray:
    """The rank-th of num_workers contiguous, near-equal slices of indices."""
    n = len(indices)
    return indices[rank * n // num_workers : (rank + 1) * n // num_workers]

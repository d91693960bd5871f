"""Batch samplers that give every batch a single resolution, consistently across ranks.

Training (:class:`ResolutionBatchSampler`): each epoch, a generator seeded with ``epoch + 777``
shuffles the sample indices and draws one resolution per *global* batch (the ``batch_size ×
world_size`` samples processed in one step by all ranks together); rank ``r`` takes the ``r``-th
slice of each global batch. The global batches are therefore the same for any split of the same
global batch size over processes (1 × 4 or 2 × 2 or 4 × 1): a multi-process run sees exactly the
samples of a single-process one. Its parameters match too (up to float rounding) only when every
rank's micro-batch holds the same number of valid GT pixels, because ``ConfLoss`` averages over
each rank's valid pixels and DDP averages the ranks' gradients (as upstream); otherwise the splits
agree only statistically. The tail that does not fill a global batch is dropped.

Evaluation (:class:`SequentialBatchSampler`): indices in order, rank ``r`` takes every
``world_size``-th one, batches of ``batch_size``, resolution 0, nothing dropped.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from align3r.data.mixing import EPOCH_SEED_OFFSET
from align3r.errors import InputError


class ResolutionBatchSampler(torch.utils.data.Sampler):
    """Yields lists of ``(sample index, resolution index)`` for one rank.

    Args:
        num_samples: dataset length. batch_size: samples per batch *per rank*.
        num_resolutions: size of the resolution pool. world_size, rank: the process group.
    Call :meth:`set_epoch` before iterating; :meth:`set_start` skips the first batches (resume).
    """

    def __init__(self, num_samples: int, batch_size: int, num_resolutions: int, world_size: int = 1,
                 rank: int = 0):
        if batch_size < 1 or num_resolutions < 1 or not 0 <= rank < world_size:
            raise InputError(f"bad sampler setup: batch_size={batch_size}, resolutions={num_resolutions}, "
                             f"rank={rank}, world_size={world_size}")
        self.num_samples = int(num_samples)
        self.batch_size = int(batch_size)
        self.num_resolutions = int(num_resolutions)
        self.world_size = int(world_size)
        self.rank = int(rank)
        self.global_batch = self.batch_size * self.world_size
        if self.num_samples < self.global_batch:
            raise InputError(f"the training set has {self.num_samples} pairs per epoch, fewer than one global "
                             f"batch of {self.global_batch} (batch_size × processes); enlarge the mixture")
        self.epoch = 0
        self.start = 0

    def __len__(self) -> int:
        """Batches per epoch for this rank (= for every rank)."""
        return self.num_samples // self.global_batch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)
        self.start = 0

    def set_start(self, batch_index: int) -> None:
        """Begin the current epoch at batch ``batch_index`` (the earlier ones were already used)."""
        self.start = int(batch_index)

    def plan(self) -> tuple[np.ndarray, np.ndarray]:
        """(num_batches, global_batch) sample indices and (num_batches,) resolution indices of the epoch."""
        rng = np.random.default_rng(seed=self.epoch + EPOCH_SEED_OFFSET)
        n_batches = len(self)
        order = rng.permutation(self.num_samples)[: n_batches * self.global_batch]
        resolutions = rng.integers(self.num_resolutions, size=n_batches)
        return order.reshape(n_batches, self.global_batch), resolutions

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        order, resolutions = self.plan()
        lo, hi = self.rank * self.batch_size, (self.rank + 1) * self.batch_size
        for b in range(self.start, len(order)):
            res = int(resolutions[b])
            yield [(int(i), res) for i in order[b, lo:hi]]


class SequentialBatchSampler(torch.utils.data.Sampler):
    """Deterministic evaluation batches: rank ``r`` gets samples r, r + W, r + 2W, … in batches."""

    def __init__(self, num_samples: int, batch_size: int, world_size: int = 1, rank: int = 0):
        self.indices = list(range(int(rank), int(num_samples), int(world_size)))
        self.batch_size = int(batch_size)

    def __len__(self) -> int:
        return (len(self.indices) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for start in range(0, len(self.indices), self.batch_size):
            yield [(i, 0) for i in self.indices[start:start + self.batch_size]]

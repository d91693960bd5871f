"""Work shared over ``torchrun`` processes, and rank 0 waiting for the others' results.

Under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` / ``LOCAL_RANK`` set) every process plans the same
list of items and takes its share (:meth:`Shard.take`: round robin; :meth:`Shard.take_balanced`:
longest first onto the least loaded rank, so ranks finish together). Each rank writes one result
file per item; rank 0 then waits for the others' files while they keep appearing
(:func:`wait_until_done`). Files, not a ``torch.distributed`` collective: this works across
machines that share a filesystem, and a rank that died only costs the wait. Used by
``align3r eval`` (``align3r.eval.run``) and ``align3r infer`` over many sources (``align3r.many``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch

from align3r.device import resolve_device
from align3r.errors import InputError

T = TypeVar("T")

DEFAULT_SHARD_WAIT_S = 3600.0
"""Under several processes, rank 0 gives up waiting when no other rank has written a result for
this long (``shard_wait_s`` overrides it)."""


@dataclass(frozen=True)
class Shard:
    """This process's place among the processes (``torchrun`` environment)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise InputError(f"bad process layout: RANK={self.rank}, WORLD_SIZE={self.world_size}")

    @classmethod
    def from_env(cls) -> Shard:
        """From ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (one process when unset)."""
        try:
            return cls(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                       int(os.environ.get("LOCAL_RANK", 0)))
        except ValueError as exc:
            raise InputError(f"RANK / WORLD_SIZE / LOCAL_RANK must be integers: {exc}") from None

    def take(self, items: list[T]) -> list[T]:
        """Items r, r + W, r + 2W, ... of ``items``."""
        return items[self.rank::self.world_size]

    def owners_balanced(self, sizes: Sequence[float]) -> list[int]:
        """The rank of each item when the largest go first, each to the rank with the least total
        so far (ties: the lower rank; equal sizes keep their order), so ranks finish together."""
        order = sorted(range(len(sizes)), key=lambda i: -sizes[i])  # stable: equal sizes keep their order
        load = [0.0] * self.world_size
        owner = [0] * len(sizes)
        for i in order:
            rank = min(range(self.world_size), key=lambda r: (load[r], r))
            owner[i] = rank
            load[rank] += max(float(sizes[i]), 1.0)  # unknown / empty still costs a rank something
        return owner

    def take_balanced(self, items: list[T], sizes: Sequence[float]) -> list[T]:
        """This rank's items of :meth:`owners_balanced`, largest first."""
        owner = self.owners_balanced(sizes)
        mine = [i for i in range(len(items)) if owner[i] == self.rank]
        return [items[i] for i in sorted(mine, key=lambda i: -sizes[i])]

    def device(self, setting: str = "auto") -> torch.device:
        """This process's device: for ``"auto"``, ``cuda:<LOCAL_RANK>`` when CUDA is available (one
        GPU per process), else CPU; any other setting as ``align3r.device.resolve_device``."""
        if setting == "auto" and torch.cuda.is_available():
            return torch.device("cuda", self.local_rank % torch.cuda.device_count())
        return resolve_device(setting)


def shard_wait_seconds(shard_wait_s: float | None, shard: Shard, aggregate_only: bool = False) -> float:
    """How long rank 0 waits without a new result from another rank: ``shard_wait_s`` when given,
    else :data:`DEFAULT_SHARD_WAIT_S` under several processes; 0 for one process or when nothing
    runs (``aggregate_only``)."""
    if aggregate_only:
        return 0.0
    if shard_wait_s is not None:
        return float(shard_wait_s)
    return DEFAULT_SHARD_WAIT_S if shard.world_size > 1 else 0.0


def wait_until_done(items: list[T], missing: Callable[[list[T]], list[T]], *, idle_s: float,
                    poll_s: float = 10.0) -> list[T]:
    """Wait for other processes' results: until ``missing(items)`` is empty, or until it has not
    shrunk for ``idle_s`` seconds (a process that died writes nothing more, one that is still
    working does). Returns the items still missing (empty when all are there)."""
    left_over = missing(items)
    last_progress = time.monotonic()
    while left_over and idle_s > 0:
        left = last_progress + idle_s - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(poll_s, left))
        still = missing(left_over)
        if len(still) < len(left_over):
            last_progress = time.monotonic()
        left_over = still
    return left_over

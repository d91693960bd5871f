"""Sharding over processes, and rank 0 waiting for the other ranks' results.

Under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` set) rank r takes items r, r + W, r + 2W, ... of
a list of planned sequences (:meth:`Shard.take`); each rank writes one result file per sequence.
Rank 0 then waits for the others' files while they keep appearing (:func:`wait_for_results`),
for at most :func:`shard_wait_seconds` without a new one, and names the sequences still missing
and the ranks that owned them (:func:`missing_message`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from align3r.errors import InputError
from align3r.eval.run.results import read_record

if TYPE_CHECKING:
    from align3r.eval.run.runner import PlannedSequence

DEFAULT_SHARD_WAIT_S = 3600.0
"""Under several processes, rank 0 gives up waiting when no other rank has written a result for
this long (``shard_wait_s`` overrides it)."""


@dataclass(frozen=True)
class Shard:
    """This process's place among the evaluation processes (``torchrun`` environment)."""

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

    def take(self, items: list) -> list:
        """Items r, r + W, r + 2W, ... of ``items``."""
        return items[self.rank::self.world_size]


def _current_record(item: PlannedSequence) -> dict[str, Any] | None:
    """The record of ``item`` if it was computed with the current fingerprint (any status)."""
    record = read_record(item.path)
    return record if record is not None and record.get("fingerprint") == item.fingerprint else None


def missing_results(planned: list[PlannedSequence]) -> list[PlannedSequence]:
    """The planned sequences without a record of their current fingerprint."""
    return [item for item in planned if _current_record(item) is None]


def wait_for_results(planned: list[PlannedSequence], *, idle_s: float, poll_s: float = 10.0) -> list[PlannedSequence]:
    """Wait for other processes' records: until every planned sequence has one, or until none
    has appeared for ``idle_s`` seconds (a process that died writes nothing more, one that is
    still working does). Returns the sequences still missing (empty when all are there)."""
    missing = missing_results(planned)
    last_progress = time.monotonic()
    while missing and idle_s > 0:
        left = last_progress + idle_s - time.monotonic()
        if left <= 0:
            break
        time.sleep(min(poll_s, left))
        still = missing_results(missing)
        if len(still) < len(missing):
            last_progress = time.monotonic()
        missing = still
    return missing


def shard_wait_seconds(shard_wait_s: float | None, shard: Shard, aggregate_only: bool = False) -> float:
    """How long rank 0 waits without a new result from another rank: ``shard_wait_s`` when given,
    else :data:`DEFAULT_SHARD_WAIT_S` under several processes; 0 for one process or when nothing
    runs (``aggregate_only``)."""
    if aggregate_only:
        return 0.0
    if shard_wait_s is not None:
        return float(shard_wait_s)
    return DEFAULT_SHARD_WAIT_S if shard.world_size > 1 else 0.0


def missing_message(missing: list[PlannedSequence], items: list[PlannedSequence], world_size: int,
                    wait: float) -> str:
    """Which sequences have no result after the wait, and the ranks that owned them (rank r owns
    items r, r + W, ... of ``items``, the list that was shared)."""
    owner = {id(item): i % world_size for i, item in enumerate(items)}
    ranks = sorted({owner.get(id(item)) for item in missing} - {None})
    labels = [f"{item.experiment.name}/{item.seq.name}" for item in missing]
    shown = ", ".join(labels[:5]) + (f", ... ({len(labels) - 5} more)" if len(labels) > 5 else "")
    return (f"{len(missing)} sequence(s) still have no result after {wait:g} s without a new "
            f"result from any rank: {shown}. They belong to rank(s) {', '.join(map(str, ranks))} of "
            f"{world_size}, which may have died (see their logs). The table leaves them out (listed as "
            "missing). Run the same command again to compute them (finished sequences are reused), or "
            "`--aggregate-only` once those ranks finish; shard_wait_s=<seconds> waits longer.")

"""Evaluation's side of sharding (the generic part: ``align3r.sharding``).

Rank r evaluates planned sequences r, r + W, r + 2W, ... (``Shard.take``) and writes one result
file per sequence. Rank 0 then waits for the others' files (:func:`wait_for_results`: a record
counts when it has the sequence's current fingerprint), for at most
``align3r.sharding.shard_wait_seconds`` without a new one, and names the sequences still missing
and the ranks that owned them (:func:`missing_message`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from align3r.eval.run.results import read_record
from align3r.sharding import wait_until_done

if TYPE_CHECKING:
    from align3r.eval.run.runner import PlannedSequence


def _current_record(item: PlannedSequence) -> dict[str, Any] | None:
    """The record of ``item`` if it was computed with the current fingerprint (any status)."""
    record = read_record(item.path)
    return record if record is not None and record.get("fingerprint") == item.fingerprint else None


def missing_results(planned: list[PlannedSequence]) -> list[PlannedSequence]:
    """The planned sequences without a record of their current fingerprint."""
    return [item for item in planned if _current_record(item) is None]


def wait_for_results(planned: list[PlannedSequence], *, idle_s: float, poll_s: float = 10.0) -> list[PlannedSequence]:
    """Wait for other processes' records (``align3r.sharding.wait_until_done``): until every
    planned sequence has one, or until none has appeared for ``idle_s`` seconds. Returns the
    sequences still missing (empty when all are there)."""
    return wait_until_done(planned, missing_results, idle_s=idle_s, poll_s=poll_s)


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

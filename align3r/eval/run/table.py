"""Run a table: every experiment of a plan, shared over the processes, then the table (rank 0).

>>> from align3r.eval.run import Runtime, run_table, table_plan                      # doctest: +SKIP
>>> spec, plan = table_plan(config, "supp_t3")    # a composed configs/eval/table/supp_t3.yaml
>>> result = run_table(spec, plan, Runtime(results="results/eval"))
>>> print(result.markdown)                        # also in results/eval/supp_t3/table.md (.csv, .json)

A plan can also be built by hand: ``align3r.eval.tables.table_from_dict`` for the
``TableSpec``, one :class:`~align3r.eval.run.settings.Experiment` per cell.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align3r.errors import InputError
from align3r.eval.run.aggregate import aggregate_experiment, aggregate_from_records
from align3r.eval.run.runner import (
    NetworkCache,
    PlannedSequence,
    PriorModels,
    RunReport,
    plan_experiment,
    run_sequences,
)
from align3r.eval.run.settings import Runtime
from align3r.eval.run.shards import missing_message, wait_for_results
from align3r.sharding import Shard, shard_wait_seconds

log = logging.getLogger(__name__)


@dataclass
class TableRun:
    """What :func:`run_table` did in this process."""

    shard: Shard
    report: RunReport | None = None
    """The sequences this process computed, reused and failed (None with ``aggregate_only``)."""
    summaries: dict[Any, dict[str, Any]] | None = None
    """(row, column key) -> the experiment's summary; None on ranks other than 0."""
    markdown: str | None = None
    printed: str | None = None  # the table in the requested format (markdown, csv or json)
    """The table as printed (rank 0); also written to ``out_dir/table.md`` (+ ``.csv``, ``.json``)."""
    out_dir: Path | None = None
    missing: list[PlannedSequence] = field(default_factory=list)
    """Sequences of other ranks that never got a result (rank 0): left out of the table."""
    missing_note: str | None = None
    """Which sequences are missing, and the ranks that owned them (:func:`missing_message`)."""
    from_records: list[str] = field(default_factory=list)
    """Dataset roots not on disk, summarised from their records alone (``aggregate_only``)."""

    @property
    def status(self) -> int:
        """0, or 1 when sequences of other ranks never got a result."""
        return 1 if self.missing else 0


def table_sequences(plan, runtime: Runtime) -> list[PlannedSequence]:
    """Every sequence of a plan in one list, grouped by network so that each process loads every
    network once (rank r takes items r, r + W, ... of it: balanced across datasets)."""
    first_use: dict = {}
    for _, exp in plan:
        first_use.setdefault(exp.settings.model, len(first_use))
    ordered = sorted((exp for _, exp in plan), key=lambda exp: first_use[exp.settings.model])
    return [item for exp in ordered for item in plan_experiment(exp, runtime)]


def run_table(spec, plan, runtime: Runtime, *, shard: Shard | None = None, aggregate_only: bool = False,
              shard_wait_s: float | None = None, fmt: str = "markdown") -> TableRun:
    """Run this process's share of every experiment of ``plan`` (``spec``: its ``TableSpec``),
    then (rank 0) aggregate and write the table under ``<runtime.results>/<spec.name>/``.

    ``shard``: this process's place (default: from the ``torchrun`` environment); rank 0 waits
    for the other ranks' results until none has appeared for ``shard_wait_s`` seconds
    (:func:`~align3r.eval.run.shards.shard_wait_seconds`), then leaves the missing ones out.
    ``aggregate_only``: run nothing, summarise the records on disk
    (:func:`~align3r.eval.run.aggregate.aggregate_from_records`, which refuses stale records).
    ``fmt``: the format of ``result.printed`` (:data:`align3r.eval.tables.FORMATS`); ``table.md``,
    ``.csv``, ``.json`` and the figure ``table.png`` are written either way.
    """
    from align3r.eval.report import write_table
    from align3r.eval.tables import FORMATS, render

    if fmt not in FORMATS:  # before any work
        raise InputError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")

    shard = shard or Shard.from_env()
    result = TableRun(shard)
    items: list[PlannedSequence] = []
    if not aggregate_only:
        unset = sorted({key[0] for key, exp in plan if not exp.settings.model})
        if unset:
            raise InputError(f"row(s) {unset} of table {spec.name} name no network; pass one with "
                             f"rows.<row>.settings.model=<checkpoint> (or model=<checkpoint> for every row)")
        device = shard.device(runtime.device)
        networks, priors = NetworkCache(device), PriorModels(runtime, device)
        items = table_sequences(plan, runtime)
        result.report = run_sequences(shard.take(items), runtime, networks, priors)
        log.info("rank %d: %d sequences computed, %d reused, %d failed", shard.rank, len(result.report.computed),
                 len(result.report.reused), len(result.report.failed))
    if shard.rank != 0:
        return result
    wait = shard_wait_seconds(shard_wait_s, shard, aggregate_only)
    result.missing = wait_for_results(items, idle_s=wait) if wait > 0 else []
    if result.missing:
        result.missing_note = missing_message(result.missing, items, shard.world_size, wait)
    if aggregate_only:
        aggregated = aggregate_from_records(spec, plan, runtime)
        result.summaries, result.from_records = aggregated.summaries, aggregated.from_records
    else:
        result.summaries = {key: aggregate_experiment(exp, runtime) for key, exp in plan}
    result.out_dir = Path(runtime.results) / spec.name
    result.markdown = write_table(spec, result.summaries, result.out_dir)
    result.printed = result.markdown if fmt == "markdown" else render(spec, result.summaries, fmt)
    return result

"""Scan result files and aggregate them: which records count, which are stale, the summaries.

A record counts for an experiment when it was computed with the current fingerprint
(:func:`collect_experiment`); one of other inputs is *stale*, with the inputs that differ
(:func:`stale_reason`). :func:`aggregate_experiment` writes an experiment's ``sequences.csv``
and ``summary.json``; :func:`aggregate_from_records` does it for a whole plan without running
anything (``align3r eval --aggregate-only``), refusing stale records and outputs it would shrink;
:func:`other_networks` finds result folders holding records of another network.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align3r.errors import InputError
from align3r.eval.run.results import read_record, write_experiment_outputs
from align3r.eval.run.runner import checkpoint_stamp, plan_experiment
from align3r.eval.run.sequence import RECORD_SCHEMA
from align3r.eval.run.settings import Experiment, Runtime
from align3r.eval.run.shards import wait_for_results


def differing_inputs(stored: dict[str, Any] | None, current: dict[str, Any]) -> list[str]:
    """The keys (``settings.<field>`` for settings, ``options.<key>`` for reader options) whose
    values differ between a record's inputs and the current ones; only keys present in both
    count, so partial inputs (old records, records-only mode) compare what they can."""
    if not stored:
        return []
    out = []
    for key in sorted(set(stored) & set(current)):
        old, new = stored[key], current[key]
        if old == new:
            continue
        if key in ("settings", "options") and isinstance(old, dict) and isinstance(new, dict):
            out += [f"{key}.{k}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]
        else:
            out.append(key)
    return out


def _record_inputs(record: dict[str, Any]) -> dict[str, Any]:
    """A record's fingerprint inputs; for records written before they were stored, the part
    that the record holds elsewhere (settings, reader options, frames)."""
    if isinstance(record.get("inputs"), dict):
        return record["inputs"]
    dataset = record.get("dataset") or {}
    inputs = {"settings": record.get("settings"),
              "options": {k: v for k, v in (dataset.get("options") or {}).items() if k != "sequences"}}
    if record.get("frames") is not None:
        inputs["frames"] = record["frames"]
    return {k: v for k, v in inputs.items() if v is not None}


def stale_reason(record: dict[str, Any], current: dict[str, Any]) -> str:
    """Why a record of other inputs than ``current`` is stale: the differing keys, or a phrase."""
    keys = differing_inputs(_record_inputs(record), current)
    if not keys:
        return "settings differ"
    shown = ", ".join(keys[:8]) + (f", ... ({len(keys) - 8} more)" if len(keys) > 8 else "")
    return f"settings differ: {shown}"


@dataclass
class ExperimentResults:
    """The records of an experiment as the current settings see them (:func:`collect_experiment`)."""

    experiment: Experiment
    expected: list[str]
    present: list[dict[str, Any]]
    """Records computed with the current fingerprint (any status), in protocol order."""
    stale: dict[str, str] = field(default_factory=dict)
    """Sequence -> why its record (computed with other inputs) does not count."""
    from_records: bool = False
    """The dataset was not on disk: the sequences and their match were taken from the records."""

    @property
    def evaluated(self) -> int:
        return sum(r.get("status") == "ok" for r in self.present)


def collect_experiment(exp: Experiment, runtime: Runtime, *, records_only: bool = False) -> ExperimentResults:
    """The records of ``exp`` that match the current fingerprints, and the stale ones.

    ``records_only``: when the dataset root is not on disk, work from the records alone
    (:func:`_collect_from_records`) instead of failing to list the sequences.
    """
    if records_only and not Path(exp.dataset.root).exists():
        return _collect_from_records(exp, runtime)
    planned = plan_experiment(exp, runtime)
    present, stale = [], {}
    for item in planned:
        record = read_record(item.path)
        if record is None:
            continue
        if record.get("fingerprint") == item.fingerprint:
            present.append(record)
        else:
            stale[item.seq.name] = stale_reason(record, item.payload)
    return ExperimentResults(exp, [p.seq.name for p in planned], present, stale)


def _collect_from_records(exp: Experiment, runtime: Runtime) -> ExperimentResults:
    """Without the dataset: every record in the experiment's folder (or those of
    ``sequences`` when it names them) is matched on what can be checked without the data —
    dataset, reader options, settings, checkpoint, prior model — not on its frame list or prior
    files; the expected sequences are the named ones, else those with a record."""
    folder = Path(runtime.results) / exp.name
    wanted = exp.dataset.options.get("sequences")
    wanted = [wanted] if isinstance(wanted, str) and wanted != "all" else wanted
    named = list(wanted) if isinstance(wanted, (list, tuple)) else None
    options = {k: v for k, v in dict(exp.dataset.options).items() if k != "sequences"}
    records = [r for r in map(read_record, sorted(folder.glob("*.json")))
               if isinstance(r, dict) and "sequence" in r and "status" in r]
    by_name = {r["sequence"]: r for r in records if named is None or r["sequence"] in named}
    present, stale = [], {}
    stamps: dict[str | None, Any] = {}
    for name, record in by_name.items():
        settings = exp.settings.for_sequence(name)
        if settings.model not in stamps:
            stamps[settings.model] = checkpoint_stamp(settings.model)
        current = {"schema": RECORD_SCHEMA, "dataset": exp.dataset.name, "options": options, "sequence": name,
                   "settings": settings.to_dict(), "checkpoint": stamps[settings.model]}
        stored = _record_inputs(record)
        if stored.get("prior_source") == "computed":
            current["prior_model"] = runtime.prior_model_for(settings.prior)
        current = json.loads(json.dumps(current, default=str))
        keys = differing_inputs(stored, current)
        if keys or "settings" not in stored:
            stale[name] = stale_reason(record, current)
        else:
            present.append(record)
    expected = named if named is not None else list(by_name)
    return ExperimentResults(exp, list(expected), present, stale, from_records=True)


def write_experiment_results(results: ExperimentResults, runtime: Runtime) -> dict[str, Any]:
    """Write ``sequences.csv`` and ``summary.json`` of collected results; returns the summary."""
    exp = results.experiment
    extra = {"experiment": exp.name, "dataset": exp.dataset.to_dict(), "settings": exp.settings.to_dict()}
    if results.from_records:
        extra["from_records"] = True
    return write_experiment_outputs(Path(runtime.results) / exp.name, exp.settings.task, results.present,
                                    results.expected, extra, stale=results.stale)


def aggregate_experiment(exp: Experiment, runtime: Runtime, *, wait_s: float = 0.0,
                         poll_s: float = 10.0) -> dict[str, Any]:
    """Summarise ``exp`` from its result files (``sequences.csv``, ``summary.json``).

    Only records matching the current fingerprints count; with ``wait_s`` > 0 this first waits
    for missing ones (other ranks still running) until none has appeared for ``wait_s`` seconds
    (:func:`wait_for_results`). Returns the summary with ``counts`` saying how many sequences are
    missing, and how many have a record of other settings (``stale``, with the reason per
    sequence under ``stale``).
    """
    if wait_s > 0:
        wait_for_results(plan_experiment(exp, runtime), idle_s=wait_s, poll_s=poll_s)
    return write_experiment_results(collect_experiment(exp, runtime), runtime)


def _same_model(a: str, b: str) -> bool:
    def key(model: str) -> str:
        path = Path(model).expanduser()
        return str(path.resolve()) if path.exists() else model

    return a == b or key(a) == key(b)


def other_networks(plan, runtime: Runtime) -> list[str]:
    """For each experiment of ``plan`` whose results folder holds records computed with another
    network than the experiment's (``settings.model``): "<folder> (<n> record(s) of <model>, ...)"."""
    out = []
    for _, exp in plan:
        folder = Path(runtime.results) / exp.name
        others: dict[str, int] = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            record = read_record(path)
            if not isinstance(record, dict) or "sequence" not in record or "status" not in record:
                continue  # summary.json, ...
            inputs = record.get("inputs") if isinstance(record.get("inputs"), dict) else {}
            settings = inputs.get("settings") or record.get("settings") or {}
            model = settings.get("model") if isinstance(settings, dict) else None
            if model and not _same_model(str(model), str(exp.settings.model)):
                others[str(model)] = others.get(str(model), 0) + 1
        if others:
            out.append(f"{folder} ({', '.join(f'{n} record(s) of {m}' for m, n in others.items())})")
    return out


@dataclass
class PlanSummaries:
    """The summaries of every experiment of a plan (:func:`aggregate_from_records`)."""

    summaries: dict[Any, dict[str, Any]]
    """(row, column key) -> the experiment's summary."""
    from_records: list[str] = field(default_factory=list)
    """Dataset roots not on disk, whose experiments were summarised from their records alone."""


def aggregate_from_records(spec, plan, runtime: Runtime) -> PlanSummaries:
    """The summaries of every experiment of ``plan`` from the records on disk, running nothing.

    Refuses (``InputError``, nothing written) when records were computed with other settings than
    the plan's (stale: the aggregation did not repeat the run's overrides) or when the outputs
    on disk hold more results than the new ones would. A dataset whose folder does not exist is
    summarised from its records alone (listed in ``from_records``).
    """
    collected = {}
    for key, exp in plan:
        try:
            collected[key] = collect_experiment(exp, runtime, records_only=True)
        except InputError as exc:
            raise InputError(f"{exc} (--aggregate-only reads the {exp.dataset.name} dataset at {exp.dataset.root} to "
                             "list the protocol's sequences and check that the records were computed from its "
                             "current frames and prior files; when that folder does not exist at all it works from "
                             "the records alone)") from None
    stale = [(r.experiment.name, seq, why) for r in collected.values() for seq, why in r.stale.items()]
    if stale:
        shown = "; ".join(f"{exp}/{seq} ({why})" for exp, seq, why in stale[:3])
        more = f"; ... ({len(stale) - 3} more)" if len(stale) > 3 else ""
        raise InputError(
            f"--aggregate-only: {len(stale)} result record(s) are stale, computed with other settings than this "
            f"command's: {shown}{more}. Nothing was written. The aggregation must repeat the overrides of the run "
            "that computed them (the same data_root, data.*, models.*/model, +settings.*, rows.*, protocol.*, "
            "priors and prior model options); or run without --aggregate-only to recompute them with these settings")
    shrinking = shrinking_outputs(spec, collected, Path(runtime.results))
    if shrinking:
        raise InputError(
            f"--aggregate-only would replace outputs on disk with fewer results: {'; '.join(shrinking[:5])}. Nothing "
            "was written. Repeat the overrides of the run that wrote them (the same data.*.sequences, --rows, ...); to "
            "write a table of this selection anyway, run the command without --aggregate-only (finished sequences "
            "are reused) or remove those outputs first")
    absent = sorted({str(r.experiment.dataset.root) for r in collected.values() if r.from_records})
    return PlanSummaries({key: write_experiment_results(results, runtime) for key, results in collected.items()},
                         absent)


def shrinking_outputs(spec, collected: dict, results_root: Path) -> list[str]:
    """What the existing outputs of the table hold that the new ones would not: experiments whose
    summary.json counts more scored sequences, rows of table.json that the new table lacks."""
    out = []
    for results in collected.values():
        old = (read_record(results_root / results.experiment.name / "summary.json") or {}).get("counts") or {}
        if old.get("evaluated") is not None and results.evaluated < int(old["evaluated"]):
            out.append(f"{results.experiment.name} ({old['evaluated']} sequence(s) scored on disk, "
                       f"{results.evaluated} now)")
    table = read_record(results_root / spec.name / "table.json") or {}
    dropped = sorted({v.get("row") for v in table.get("values") or []} - {r.name for r in spec.rows} - {None})
    if dropped:
        out.append(f"{spec.name}/table.md (row(s) {', '.join(dropped)} would be dropped)")
    return out

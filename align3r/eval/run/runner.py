"""Run experiments sequence by sequence: resume, shard over processes, aggregate.

Each process loads a network once (:class:`NetworkCache`) and walks its share of the sequences:
under ``torchrun`` (``RANK`` / ``WORLD_SIZE`` set) rank r takes items r, r + W, r + 2W, ... of the
list — one experiment's sequences in protocol order (:func:`run_experiment`), or every sequence of
a table (``align3r eval table``, through :func:`plan_experiment` and :func:`run_sequences`). A sequence whose result file already holds an ``ok`` record
with the current fingerprint is skipped, so an interrupted run continues where it stopped and a
finished one costs nothing to re-run. Rank 0 aggregates once every sequence has its record
(:func:`wait_for_results` waits for the other ranks' files while they keep appearing,
:func:`aggregate_experiment` summarises).
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from align3r.device import resolve_device
from align3r.errors import InputError
from align3r.eval.run.priors import choose_prior_source
from align3r.eval.run.results import (
    read_record,
    result_path,
    reusable,
    write_experiment_outputs,
    write_json_atomic,
)
from align3r.eval.run.sequence import (
    RECORD_SCHEMA,
    SequenceContext,
    StageError,
    evaluate_sequence,
    relative,
    sequence_fingerprint_payload,
)
from align3r.eval.run.settings import GROUPED_GRAPHS, Experiment, Runtime, fingerprint
from align3r.eval.run.stages import clip_size_chain

log = logging.getLogger(__name__)


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


def shard_device(device: str, shard: Shard) -> torch.device:
    """The device of this process of ``shard``: for ``"auto"``, ``cuda:<LOCAL_RANK>`` when CUDA is
    available (one GPU per process), else CPU; any other setting as ``align3r.device.resolve_device``."""
    if device == "auto" and torch.cuda.is_available():
        return torch.device("cuda", shard.local_rank % torch.cuda.device_count())
    return resolve_device(device)


class NetworkCache:
    """Keeps the last loaded network, so rows sharing a model load it once per process."""

    def __init__(self, device: torch.device, loader: Callable[..., Any] | None = None) -> None:
        self.device = device
        self._loader = loader
        self._name: str | None = None
        self._net = None

    def get(self, name: str | None):
        if not name:
            raise InputError("this row names no network (model: null); pass one, e.g. rows.<row>.model=<checkpoint> "
                             "or model=<checkpoint> for every row")
        if name != self._name:
            self._net = None  # release the previous network before loading the next
            loader = self._loader
            if loader is None:
                from align3r.model import load_model as loader
            self._net = loader(name, device=self.device).to(self.device).eval()
            self._name = name
        return self._net


class PriorModels:
    """Prior models for sequences without official caches, loaded on first use and cached on disk
    under ``<results>/.cache/priors`` (keyed by frame content and model)."""

    def __init__(self, runtime: Runtime, device: torch.device) -> None:
        self.runtime = runtime
        self.device = device
        self._sources: dict[str, Any] = {}

    def __call__(self, name: str):
        if name not in self._sources:
            from align3r.cache import RunCache
            from align3r.priors.registry import load_prior_source

            source = load_prior_source(name, model=self.runtime.prior_model_for(name), device=self.device,
                                       progress=self.runtime.progress)
            self._sources[name] = None if source is None else RunCache(Path(self.runtime.results) / ".cache").priors(source)
        return self._sources[name]


@dataclass
class PlannedSequence:
    """A sequence of an experiment with the values its result depends on."""

    experiment: Experiment
    seq: Any
    settings: Any
    clip_size: int | None
    prior_source: str | None
    fingerprint: str
    path: Path
    payload: dict[str, Any] = field(default_factory=dict)
    """What ``fingerprint`` hashes (stored in the record as ``inputs``, to say what changed)."""


@dataclass
class RunReport:
    """What one process did: sequences computed, reused from a previous run, failed."""

    computed: list[str] = field(default_factory=list)
    reused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def load_sequences(exp: Experiment) -> list:
    """The experiment's sequences in protocol order (``load_benchmark`` with the task and options)."""
    from align3r.eval.datasets import load_benchmark

    options = {k: v for k, v in dict(exp.dataset.options).items() if v is not None}
    return load_benchmark(exp.dataset.name, exp.dataset.root, task=exp.settings.task, **options)


def checkpoint_stamp(model: str | None) -> dict[str, Any] | None:
    """Size and modification time of a local checkpoint (file, or the files of a folder), so a
    checkpoint rewritten in place does not pass for the one a stored result was computed with;
    None for released names and Hub ids."""
    if not model or not Path(model).exists():
        return None
    path = Path(model)
    files = sorted(p for p in path.iterdir() if p.is_file()) if path.is_dir() else [path]
    return {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}


def prior_files_stamp(seq, prior: str, count: int, root: str | Path) -> list[list[Any]]:
    """Path, size and modification time of each official prior cache file a sequence reads, so a
    cache file rewritten in place does not pass for the one a stored result was computed with."""
    from align3r.eval.run.priors import official_prior_files

    out = []
    for path in official_prior_files(seq, prior, count):
        stat = path.stat()
        out.append([relative(path, root), stat.st_size, stat.st_mtime_ns])
    return out


def plan_experiment(exp: Experiment, runtime: Runtime) -> list[PlannedSequence]:
    """Every sequence of ``exp`` with its settings, clip size, prior source and fingerprint.

    Cheap (no network, no images): frame lists, file existence and hashes only.
    """
    seqs = load_sequences(exp)
    base = exp.settings
    counts = [len(s) if base.max_frames is None else min(len(s), base.max_frames) for s in seqs]
    clip_sizes: list[int | None] = [None] * len(seqs)
    if base.graph in GROUPED_GRAPHS and base.carry_clip_size:
        if base.clip_size_start is None:
            raise InputError("carry_clip_size needs clip_size_start (20 reproduces the paper-era depth_test.py)")
        clip_sizes = list(clip_size_chain(counts, base.clip_size_start, carry=True))
    stamps: dict[str | None, Any] = {}
    planned = []
    for seq, count, clip in zip(seqs, counts, clip_sizes):
        settings = base.for_sequence(seq.name)
        prior_source = None if settings.prior == "none" else choose_prior_source(seq, settings.prior, count,
                                                                                 runtime.priors)
        frames = [relative(p, exp.dataset.root) for p in seq.frame_paths[:count]]
        payload = sequence_fingerprint_payload(seq, exp.dataset, settings, frames, prior_source, runtime, clip)
        if settings.model not in stamps:
            stamps[settings.model] = checkpoint_stamp(settings.model)
        payload["checkpoint"] = stamps[settings.model]
        if prior_source == "official-cache":
            payload["prior_files"] = prior_files_stamp(seq, settings.prior, count, exp.dataset.root)
        payload = json.loads(json.dumps(payload, default=str))  # as stored in the record
        planned.append(PlannedSequence(exp, seq, settings, clip, prior_source, fingerprint(payload),
                                       result_path(runtime.results, exp.name, seq.name), payload))
    return planned


def run_sequences(items: list[PlannedSequence], runtime: Runtime, networks: NetworkCache,
                  prior_models: PriorModels) -> RunReport:
    """Evaluate planned sequences (of any experiments), writing one result file each.

    Sequences with a reusable result are skipped (unless ``runtime.overwrite``). A CUDA
    out-of-memory error is recorded as status ``"oom"`` (the official scripts skip such
    sequences too), a failure of the reconstruction itself (``StageError``: the alignment
    diverged, a degenerate geometry) as ``"failed"`` with its message; both are left out of the
    means, listed under the table and retried by the next run. Errors in the inputs (missing
    files, bad priors, bad settings) stop the run.
    """
    from tqdm.auto import tqdm

    report = RunReport()
    for item in tqdm(items, desc="sequences", unit="seq", disable=not runtime.progress):
        exp, name = item.experiment, item.seq.name
        label = f"{exp.name}/{name}"
        if not runtime.overwrite and reusable(read_record(item.path), item.fingerprint):
            report.reused.append(label)
            continue
        ctx = SequenceContext(networks.get(item.settings.model), networks.device, runtime, prior_models)
        t0 = time.perf_counter()
        try:
            record = evaluate_sequence(item.seq, exp.dataset, item.settings, ctx, clip_size=item.clip_size)
        except (torch.OutOfMemoryError, StageError) as exc:
            oom = isinstance(exc, torch.OutOfMemoryError)
            if oom:
                torch.cuda.empty_cache()
            cause = exc if oom else exc.__cause__
            record = {"schema": RECORD_SCHEMA, "status": "oom" if oom else "failed", "sequence": name,
                      "task": item.settings.task, "dataset": exp.dataset.to_dict(),
                      "settings": item.settings.to_dict(), "error": f"{type(cause).__name__}: {cause}",
                      "traceback": "".join(traceback.format_exception(cause, limit=-8))}
            report.failed.append(label)
            log.warning("%s: %s; recorded, left out of the mean, retried by the next run", label, record["error"])
        else:
            report.computed.append(label)
        record["experiment"] = exp.name
        record["fingerprint"] = item.fingerprint
        record["inputs"] = item.payload
        record["wall_s"] = round(time.perf_counter() - t0, 3)
        write_json_atomic(item.path, record)
    return report


def run_experiment(exp: Experiment, runtime: Runtime, *, shard: Shard | None = None,
                   networks: NetworkCache | None = None, prior_models: PriorModels | None = None) -> RunReport:
    """Evaluate this process's share (:meth:`Shard.take`) of ``exp``'s sequences (see
    :func:`run_sequences`); ``networks`` / ``prior_models`` let several experiments share loads."""
    shard = shard or Shard.from_env()
    networks = networks or NetworkCache(shard_device(runtime.device, shard))
    prior_models = prior_models or PriorModels(runtime, networks.device)
    return run_sequences(shard.take(plan_experiment(exp, runtime)), runtime, networks, prior_models)


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

"""Run experiments sequence by sequence: plan, resume, evaluate this process's share.

Each process loads a network once (:class:`NetworkCache`) and walks its share of the sequences
(:class:`~align3r.eval.run.shards.Shard`): one experiment's sequences in protocol order
(:func:`run_experiment`), or every sequence of a table (``align3r.eval.run.table.run_table``,
through :func:`plan_experiment` and :func:`run_sequences`). A sequence whose result file already
holds an ``ok`` record with the current fingerprint is skipped, so an interrupted run continues
where it stopped and a finished one costs nothing to re-run. Waiting for the other ranks:
:mod:`~align3r.eval.run.shards`; summaries: :mod:`~align3r.eval.run.aggregate`.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from align3r.errors import InputError
from align3r.eval.run.priors import choose_prior_source
from align3r.eval.run.results import (
    read_record,
    result_path,
    reusable,
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
from align3r.sharding import Shard

log = logging.getLogger(__name__)


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
    networks = networks or NetworkCache(shard.device(runtime.device))
    prior_models = prior_models or PriorModels(runtime, networks.device)
    return run_sequences(shard.take(plan_experiment(exp, runtime)), runtime, networks, prior_models)

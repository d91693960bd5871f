"""Many sources in one call: the weights loaded once per process, sources shared over ``torchrun``
processes (longest first), finished sources skipped, failures recorded and the run going on."""

from __future__ import annotations

import logging
import resource
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from align3r.errors import Align3RError
from align3r.many.records import (
    format_table,
    is_finished,
    read_record,
    record_stamp,
    write_record,
    write_summary,
)
from align3r.pipeline import PipelineConfig, PipelineResult, run_pipeline
from align3r.sharding import Shard, shard_wait_seconds, wait_until_done

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlannedSource:
    """One source of a many-source run: its ``name`` (unique), where it is, where its outputs go,
    and its sampled frame count as probed (0 when the probe failed: the run will say why)."""

    name: str
    source: Path
    out: Path
    frames: int


@dataclass
class SourceRun:
    """What became of one source: ``status`` ``"ok"`` or ``"failed"`` (``error``: one line),
    ``skipped`` when an earlier run had finished it (or failed it, without ``retry_failed``),
    ``record`` as in ``summary.json``, ``result`` the ``PipelineResult`` when it ran now."""

    name: str
    source: Path
    out: Path
    status: str
    skipped: bool
    record: dict[str, Any] = field(default_factory=dict)
    result: PipelineResult | None = None

    @property
    def error(self) -> str | None:
        return self.record.get("error")


def single_source(sources) -> Path | None:
    """The source when ``sources`` names exactly one video or image folder (today's one-source
    layout: the outputs go into ``out`` itself), else None."""
    from align3r.io.sources import expand_sources

    items = [sources] if isinstance(sources, (str, Path)) else list(sources)
    if len(items) != 1:
        return None
    expanded = expand_sources(items)
    return expanded[0] if len(expanded) == 1 and Path(items[0]).expanduser() == expanded[0] else None


def plan_sources(sources, out: str | Path, config: PipelineConfig) -> tuple[list[PlannedSource], list[str]]:
    """Expand ``sources`` (``align3r.io.sources``), name them, and probe each one's frame count.
    Returns (planned sources, messages about renamed ones)."""
    from align3r.io import probe
    from align3r.io.frames import expected_count
    from align3r.io.sources import expand_sources, source_names

    paths = expand_sources([sources] if isinstance(sources, (str, Path)) else sources)
    names, renamed = source_names(paths)
    planned = []
    for name, path in zip(names, paths):
        try:
            frames = expected_count(probe(path, folder_fps=config.folder_fps), config.stride, config.fps,
                                    config.start, config.max_frames) or 0
        except Exception:  # an unreadable source fails in its turn, recorded then
            frames = 0
        planned.append(PlannedSource(name, path, Path(out) / name, frames))
    return planned, renamed


def _peak_memory(device: torch.device) -> tuple[float, str]:
    """(GiB, what it measures): CUDA memory allocated at peak during the source, or the process's
    peak resident memory so far on the CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30, "cuda_allocated"
    scale = 1 if sys.platform == "darwin" else 1024  # ru_maxrss: bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30, "process_rss"


def reconstruct_many(sources: str | Path | Sequence[str | Path], *, out: str | Path,
                     config: PipelineConfig | None = None, retry_failed: bool = False, shard: Shard | None = None,
                     shard_wait_s: float | None = None, net=None, prior_source=None,
                     **settings) -> Iterator[SourceRun]:
    """Reconstruct many videos / image folders, yielding each one's :class:`SourceRun` as it finishes.

    Args:
        sources: videos, image folders, globs, folders of videos, text files listing sources
            (``align3r.io.sources.expand_sources``). Exactly one video or image folder keeps the
            one-source layout: its outputs go into ``out`` itself, and an error is raised as by
            ``run_pipeline``.
        out: the run's folder: ``out/<name>/`` per source, ``out/summary.json`` and
            ``out/summary.csv`` (``align3r.many.records``).
        config, settings: as ``align3r.reconstruct``; one setting for every source.
        retry_failed: run again the sources an earlier run recorded as failed (else they stay so).
        shard: this process among several (default: ``torchrun``'s environment); each process
            takes its share, longest first; rank 0 waits for the others' records and writes the
            merged summary.
        shard_wait_s: how long rank 0 waits without a new record from another rank.
        net, prior_source: already loaded models (as ``run_pipeline``), used for every source.
    """
    from align3r.loaded_models import load_models
    from align3r.priors.compatibility import resolve_prior_settings

    shard = shard or Shard.from_env()
    config = (config or PipelineConfig()).replace(**settings)
    one = single_source(sources)
    if one is not None:
        if shard.rank == 0:
            result = run_pipeline(one, out=out, config=config, net=net, prior_source=prior_source)
            yield SourceRun(one.name, one, Path(out), "ok", False, {}, result)
        return
    config.check(None)  # a bad setting is every source's error: it fails now, before any work
    root = Path(out)
    planned, renamed = plan_sources(sources, root, config)
    for message in renamed:
        log.warning("align3r: two sources share a name; renamed %s", message)
    before = {p.name: record_stamp(root, p.name) for p in planned}  # what counts as new for rank 0's wait
    mine = shard.take_balanced(planned, [p.frames for p in planned])
    device = shard.device(config.device)
    if config.device == "auto" and device.type == "cuda":
        config = config.replace(device=str(device))
    models, load_s = None, 0.0
    bar = None
    if config.progress and shard.rank == 0:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(mine), desc="sources", unit="source", position=0)
    for item in mine:
        if bar is not None:
            bar.set_postfix_str(item.name)
        previous = read_record(root, item.name)
        if is_finished(item.out):
            record = previous or {"name": item.name, "status": "ok", "source": str(item.source), "output": str(item.out)}
            yield SourceRun(item.name, item.source, item.out, "ok", True, record)
        elif previous is not None and previous.get("status") == "failed" and not retry_failed:
            yield SourceRun(item.name, item.source, item.out, "failed", True, previous)
        else:
            if models is None:  # once per process, and only when something is left to run
                t0 = time.perf_counter()
                prior_name, prior_input = resolve_prior_settings(config.model, config.prior, config.prior_input)
                config = config.replace(prior_input=prior_input)
                models = load_models(config, device, prior_name, net=net, prior_source=prior_source)
                load_s = time.perf_counter() - t0  # counted in this process's first source
            yield _run_one(item, root, config, models, device, shard, load_s)
            load_s = 0.0
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    if shard.rank == 0:
        _merge(root, planned, mine, before, renamed, retry_failed, shard, shard_wait_s)


def _run_one(item: PlannedSource, root: Path, config: PipelineConfig, models, device: torch.device, shard: Shard,
             load_s: float) -> SourceRun:
    """Run one source; an ``align3r.errors`` exception (or out of memory) is recorded, not raised."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    if config.cache_dir and config.cache_dir != "none":  # one cache folder per source there too
        config = config.replace(cache_dir=str(Path(config.cache_dir).expanduser() / item.name))
    t0 = time.perf_counter()
    result, error = None, None
    try:
        result = run_pipeline(item.source, out=item.out, config=config, net=models.net, checkpoint=models.checkpoint,
                              prior_source=models.prior_source, flow_model=models.flow)
    except (Align3RError, torch.OutOfMemoryError) as exc:
        kind = "out of memory: " if isinstance(exc, torch.OutOfMemoryError) else ""
        error = kind + (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("align3r: %s failed: %s", item.source, error)
    seconds = dict(result.timings) if result is not None else {}
    if load_s:
        seconds["load"] = seconds.get("load", 0.0) + load_s
    peak, memory = _peak_memory(device)
    record = {"name": item.name, "source": str(item.source), "output": None if error else str(item.out),
              "status": "ok" if error is None else "failed", "error": error,
              "frames": None if result is None else result.reconstruction.num_frames,
              "pairs": None if result is None else result.num_pairs, "seconds": seconds,
              "total_s": time.perf_counter() - t0 + load_s, "peak_memory_gib": round(peak, 3), "memory": memory,
              "rank": shard.rank, "device": str(device)}
    write_record(root, record)
    return SourceRun(item.name, item.source, item.out, record["status"], False, record, result)


def _merge(root: Path, planned: list[PlannedSource], mine: list[PlannedSource], before: dict[str, int | None],
           renamed: list[str], retry_failed: bool, shard: Shard, shard_wait_s: float | None) -> None:
    """Rank 0: wait for the other ranks' sources still to run when this run started (their record
    file changes), then write the merged summary and print its table."""
    mine_names = {p.name for p in mine}

    def to_run(p: PlannedSource) -> bool:
        previous = read_record(root, p.name)
        return not is_finished(p.out) and (retry_failed or previous is None or previous.get("status") != "failed")

    others = [p.name for p in planned if p.name not in mine_names and to_run(p)]
    wait = shard_wait_seconds(shard_wait_s, shard)
    missing = wait_until_done(others, lambda names: [n for n in names if record_stamp(root, n) == before[n]],
                              idle_s=wait, poll_s=1.0)  # idle_s=0: one look, no wait
    records = [r for r in (read_record(root, p.name) for p in planned if p.name not in missing) if r is not None]
    missing += [p.name for p in planned if p.name not in missing and read_record(root, p.name) is None]
    write_summary(root, records, renamed=renamed, missing=missing)
    print(format_table(records), file=sys.stderr)
    if missing:
        print(f"align3r: {len(missing)} source(s) have no record (their rank may have died): {', '.join(missing)}; "
              "run the same command again to compute them", file=sys.stderr)

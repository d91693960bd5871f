"""Video in, consistent 4-D reconstruction out: the stages composed.

    frames (io) → depth priors (priors, cached) → views (io) → pair graph (pairs)
      → batched inference (inference, cached) → optical flow (flow, cached)
      → global alignment (align) → outputs (export)

Every stage is usable alone from its own module; this module only wires them, times them and
keeps the run's caches (``<out>.cache/`` by default) so an interrupted run resumes where it stopped.
The library never imports Hydra: the CLI turns its configs into a :class:`PipelineConfig`
(``align3r.pipeline_config``, every setting with its meaning).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from align3r.align.types import Reconstruction
from align3r.cache import RunCache
from align3r.errors import InputError
from align3r.pipeline_config import PipelineConfig

log = logging.getLogger(__name__)


@dataclass
class PreparedInput:
    """What the pipeline holds about the input after the per-frame stages.

    - ``views``: ``align3r.io.Views`` at network resolution (rgb, true_shape, prior point maps).
    - ``names``, ``indices``, ``timestamps``: per frame (timestamps None for plain folders).
    - ``original_frames``: the original frames when small enough to keep (else None).
    - ``mono_depth``: (N, H, W) monocular depth at network resolution (for the scale-map
      alignment), or None.
    - ``files``: the image files read, per frame (empty for a video).
    - ``prior_sources``: per frame, what produced its depth prior (``DepthPrior.source``: a file
      for external priors, a model id otherwise); empty without priors.
    """

    views: Any
    names: list[str]
    indices: np.ndarray
    timestamps: np.ndarray | None
    original_frames: list[np.ndarray] | None
    mono_depth: Tensor | None
    source: Path
    files: list[Path] = field(default_factory=list)
    prior_sources: list[str] = field(default_factory=list)


class StageTimer:
    """Wall time per stage, for the summary line and the manifest."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - t0


def prepare_input(source, config: PipelineConfig, prior_source=None, *, need_mono_depth: bool = False,
                  timer: StageTimer | None = None) -> PreparedInput:
    """Decode and sample frames, compute their depth priors, build network views — in chunks, so
    only the sampled frames at network resolution stay in memory (plus the originals while they fit
    in ``keep_original_gib``)."""
    from tqdm.auto import tqdm

    from align3r.io import iter_frames, make_views, probe
    from align3r.io.frames import expected_count
    from align3r.io.views import Views
    from align3r.priors.compatibility import effective_prior_input
    from align3r.priors.mono_depth import mono_depth_in_view

    timer = timer or StageTimer()
    prior_input = effective_prior_input(config.model, config.prior_input)
    chunk = 32
    stream = iter_frames(source, stride=config.stride, fps=config.fps, start=config.start,
                         max_frames=config.max_frames, folder_fps=config.folder_fps)
    views, names, indices, stamps, originals, mono, files, prior_sources = [], [], [], [], [], [], [], []
    keep_bytes = config.keep_original_gib * 2**30
    kept_bytes = 0
    total = expected_count(probe(source, folder_fps=config.folder_fps), config.stride, config.fps, config.start,
                           config.max_frames)
    bar = tqdm(total=total, desc="frames → priors → views", unit="frame", disable=not config.progress, leave=False)
    batch: list = []

    def flush() -> None:
        nonlocal kept_bytes
        images = [f.image for f in batch]
        priors = None
        if prior_source is not None:
            with timer("priors"):
                # image paths: caches beside the frames are found; source indices: files matched
                # in order follow the sampling, not the position in this chunk
                priors = prior_source.predict(images, focal_px=[f.focal_px for f in batch],
                                              frame_names=[str(f.path or f.name) for f in batch],
                                              frame_indices=[f.index for f in batch])
        with timer("views"):
            part = make_views(images, config.size, crop=config.crop, priors=priors, progress=False,
                              prior_input=prior_input, prior_resize=config.prior_resize)
        views.append(part)
        if need_mono_depth:
            if priors is None:
                raise InputError("the scale-map alignment needs a depth prior (prior=none was given)")
            mono.append(mono_depth_in_view(priors, part.geometry))
        names.extend(f.name for f in batch)
        files.extend(f.path for f in batch if f.path is not None)
        prior_sources.extend(p.source for p in priors or ())
        indices.extend(f.index for f in batch)
        stamps.extend(f.timestamp for f in batch)
        kept_bytes += sum(im.nbytes for im in images)
        if kept_bytes <= keep_bytes:
            originals.extend(images)
        else:  # too long a video to keep its original frames: export at network resolution
            originals.clear()
        bar.update(len(batch))
        batch.clear()

    t0 = time.perf_counter()
    for frame in stream:
        batch.append(frame)
        if len(batch) == chunk:
            flush()
    if batch:
        flush()
    bar.close()
    # Decoding time = the whole loop minus the stages timed inside it.
    timer.seconds["decode"] = time.perf_counter() - t0 - timer.seconds.get("priors", 0) - timer.seconds.get("views", 0)
    return PreparedInput(
        views=Views.concat(views), names=names, indices=np.asarray(indices, dtype=np.int64),
        timestamps=None if any(t is None for t in stamps) else np.asarray(stamps, dtype=np.float64),
        original_frames=originals or None,
        mono_depth=torch.cat(mono) if need_mono_depth else None,
        source=Path(source) if not isinstance(source, (list, tuple)) else Path(str(source[0])).parent,
        files=files, prior_sources=prior_sources,
    )


@dataclass
class PipelineResult:
    """Everything a run produced: the reconstruction, its inputs, timings, pairs run, outputs."""

    reconstruction: Reconstruction
    prepared: PreparedInput
    timings: dict[str, float]
    num_pairs: int
    out: Path | None
    scale: dict[str, Any] = field(default_factory=dict)  # align3r.align.metric.apply_scale's record

    def summary(self) -> str:
        h, w = self.prepared.views.rgb.shape[1:3]
        line = (f"{self.reconstruction.num_frames} frames, {self.num_pairs} pairs, {w}x{h} | "
                + " · ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return line + (f" → {self.out}" if self.out is not None else "")


def run_pipeline(source, *, out: str | Path | None = None, config: PipelineConfig | None = None,
                 net=None, checkpoint: dict[str, str] | None = None, prior_source=None, flow_model=None,
                 **settings) -> PipelineResult:
    """:func:`reconstruct` returning the whole :class:`PipelineResult` (used by ``align3r infer``).

    ``net`` (with ``checkpoint``, where it was read from, for the manifest), ``prior_source`` (any
    ``align3r.priors`` source, wrapped by this run's cache) and ``flow_model`` (a loaded flow
    backend) replace what the config names: ``align3r.many`` loads them once for many sources.
    Settings, the input and the output directory are checked before any weight is loaded; the
    run cache is created only once they pass."""
    from align3r.align.metric import apply_scale, resolve_scale
    from align3r.device import resolve_device
    from align3r.export import ExportOptions, OriginalResolution, write_reconstruction
    from align3r.export.manifest import checkpoint_entry, input_entries
    from align3r.export.writer import check_output_dir
    from align3r.flow.cached import load_pair_flow
    from align3r.io.known import load_known_inputs
    from align3r.io.poses import read_poses
    from align3r.loaded_models import load_models
    from align3r.pairs import build_graph
    from align3r.priors.compatibility import resolve_prior_settings
    from align3r.priors.registry import prior_is_metric

    config = (config or PipelineConfig()).replace(**settings)
    # "auto" -> what the network was fine-tuned with (recorded by align3r train); contradicting
    # explicit settings are warned about. The manifest keeps prior="auto" as given.
    prior_name, prior_input = resolve_prior_settings(config.model, config.prior, config.prior_input, warn=net is None)
    config = config.replace(prior_input=prior_input)
    timer = StageTimer()
    device = resolve_device(config.device)
    if out is not None:  # a refused destination fails now, not after the run (and gets no cache)
        check_output_dir(out, overwrite=config.overwrite)
    run_cache = RunCache.for_run(out, config.cache_dir)
    # bad preset, format, graph, ... or unreadable input fail before any heavy work
    config.check(None if isinstance(source, (list, tuple)) else source)
    aconf = config.align_config()
    metric_prior = (getattr(prior_source, "metric", False) if prior_source is not None
                    else prior_is_metric(prior_name, config.prior_metric))
    scale = resolve_scale(config.scale, prior_metric=metric_prior, known_poses=config.poses is not None,
                          prior=f"prior={prior_name}")  # scale=metric with a relative prior fails here
    pose_file = read_poses(config.poses) if config.poses is not None else None  # a bad file too

    with timer("load"):
        models = load_models(config, device, prior_name, net=net, checkpoint=checkpoint,
                             prior_source=prior_source, flow=flow_model)
    net, prior_source = models.net, models.prior_source
    if prior_source is not None and run_cache is not None:  # a cache is never wrapped twice
        prior_source = run_cache.priors(prior_source)
    prepared = prepare_input(source, config, prior_source, timer=timer,
                             need_mono_depth=aconf.parametrisation == "scale_map" or scale == "metric")
    views = prepared.views
    known = load_known_inputs(pose_file, config.masks, names=prepared.names, indices=prepared.indices,
                              timestamps=prepared.timestamps, geometry=views.geometry)
    flow_fn = load_pair_flow(config.flow, views.rgb, device=device, cache=None if run_cache is None else run_cache.flow,
                             progress=config.progress, backend=models.flow)
    rec, num_pairs = align_views(views, net, build_graph(config.graph, len(views)), aconf, device=device,
                                 precision=config.precision, batch_size=config.batch_size, flow_fn=flow_fn,
                                 run_cache=run_cache, mono_depth=prepared.mono_depth,
                                 known_intrinsics=config.network_intrinsics(views), timer=timer, progress=config.progress,
                                 **known.as_tensors())
    rec, scale_record = apply_scale(rec, scale, prepared.mono_depth, min_conf=config.min_conf)
    written = None
    if out is not None:
        with timer("export"):
            frames = None if prepared.original_frames is None else np.stack(prepared.original_frames)
            inputs = [*input_entries(prepared.source, prepared.files, prepared.prior_sources),
                      *known.manifest_entries(), checkpoint_entry(net, models.checkpoint)]
            recorded = {"pipeline": config.to_dict(), "align": asdict(aconf), "frame_indices": prepared.indices.tolist()}
            written = write_reconstruction(
                out, rec, rgb=views.rgb, names=prepared.names,
                timestamps=None if prepared.timestamps is None else prepared.timestamps.tolist(),
                original=OriginalResolution.from_view_geometry(views.geometry, frames=frames),
                manifest={"inputs": inputs, "settings": recorded, "timings": dict(timer.seconds),
                          "scale": scale_record},
                formats=config.formats, overwrite=config.overwrite, options=ExportOptions(min_conf=config.min_conf),
                progress=config.progress)
    if run_cache is not None and not config.keep_cache:  # only after success: a failed run resumes
        run_cache.remove()
    result = PipelineResult(rec, prepared, dict(timer.seconds), num_pairs, written, scale_record)
    log.info("align3r: %s", result.summary())
    return result


def reconstruct(source, *, out: str | Path | None = None, config: PipelineConfig | None = None,
                net=None, **settings) -> Reconstruction:
    """Reconstruct a video or image folder: depth, poses, intrinsics, confidence, dynamic masks.

    Args:
        source: a video file, an image folder or a list of image paths.
        out: output directory (written atomically; see ``docs/outputs.md``); None writes nothing.
        config: a :class:`PipelineConfig`; keyword ``settings`` override its fields (e.g.
            ``model="align3r-depthanything"``, ``graph="swinstride-5-noncyclic"``, ``flow="dis"``,
            ``size=224``, ``device="cuda"``, ``max_frames=30``; known inputs ``poses="traj.txt"``,
            ``poses_fixed=False``, ``masks="sam2_masks/"``; units ``scale="metric"``).
        net: an already loaded network (skips ``load_model(config.model)``).

    Returns:
        the :class:`Reconstruction` at network resolution; ``out`` also gets original-resolution
        depth and every export format.
    """
    return run_pipeline(source, out=out, config=config, net=net, **settings).reconstruction


def align_views(views, net, graph, aconf, *, device: torch.device, precision: str = "auto",
                batch_size: int | str = "auto", flow_fn=None, run_cache: RunCache | None = None,
                mono_depth: Tensor | None = None, known_intrinsics: Tensor | None = None, fit_scale: bool = True,
                known_poses: Tensor | None = None, dynamic_mask: Tensor | None = None, timer: StageTimer | None = None, progress: bool = True) -> tuple[Reconstruction, int]:
    """Inference, flow and alignment of ``views`` over a built graph.

    Args:
        views: ``align3r.io.Views``.
        net: the network (eval mode, on ``device``).
        graph: a ``PairGraph`` (one alignment problem) or a ``GroupedGraph`` (keyframes, then
            clips fitted onto them: the long-video mode).
        aconf: ``AlignConfig``.
        flow_fn: ``PairGraph -> PairFlow`` (``align3r.flow.cached.load_pair_flow``), or None without
            the flow term.
        run_cache: the run cache (its ``pairs`` store keeps the predictions), or None.
        mono_depth: (N, H, W) for ``parametrisation="scale_map"``.
        known_intrinsics: (3, 3) or (N, 3, 3) at network resolution.
        known_poses: (N, 4, 4) camera-to-world (fixed or initial: ``aconf.known_poses_fixed``).
        dynamic_mask: (N, H, W) bool, replacing the self-motion masks.
        fit_scale: grouped mode only — map clips by a Sim(3) (True) or rigidly (official).
        timer: gets ``inference``, ``flow`` and ``align``.
    Returns:
        (``Reconstruction``, pairs run through the network).
    """
    from align3r.align import align, align_grouped
    from align3r.inference import PairPredictor
    from align3r.pairs import PairGraph

    timer = timer or StageTimer()
    predictor = PairPredictor(net, views.img, views.true_shape, views.prior_pts3d if net.config.with_prior else None,
                              device=device, precision=precision, batch_size=batch_size,
                              cache=None if run_cache is None else run_cache.pairs,
                              progress=progress)
    mono = mono_depth.to(device) if mono_depth is not None else None
    pairs_run = 0

    def predict(g: PairGraph):
        nonlocal pairs_run
        pairs_run += g.num_edges
        with timer("inference"):
            return predictor(g)

    def flow(g: PairGraph):
        with timer("flow"):
            return flow_fn(g)

    if isinstance(graph, PairGraph):
        preds = predict(graph)
        pair_flow = flow(graph) if flow_fn is not None else None
        with timer("align"):
            rec = align(preds, aconf, flow=pair_flow, mono_depth=mono, known_intrinsics=known_intrinsics,
                        known_poses=known_poses, dynamic_mask=dynamic_mask, progress=progress)
        return rec, pairs_run
    # align_grouped interleaves inference, flow and alignment clip by clip: "align" is the rest.
    t0 = time.perf_counter()
    before = timer.seconds.get("inference", 0.0) + timer.seconds.get("flow", 0.0)
    rec = align_grouped(graph, predict, aconf, flow_fn=flow if flow_fn is not None else None,
                        known_intrinsics=known_intrinsics, mono_depth=mono, known_poses=known_poses,
                        dynamic_mask=dynamic_mask, fit_scale=fit_scale, progress=progress)
    inner = timer.seconds.get("inference", 0.0) + timer.seconds.get("flow", 0.0) - before
    timer.seconds["align"] = timer.seconds.get("align", 0.0) + time.perf_counter() - t0 - inner
    return rec, pairs_run

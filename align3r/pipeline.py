"""Video in, consistent 4-D reconstruction out: the stages composed.

    frames (io) → depth priors (priors, cached) → views (io) → pair graph (pairs)
      → batched inference (inference, cached) → optical flow (flow, cached)
      → global alignment (align) → outputs (export)

Every stage is usable alone from its own module; this module only wires them, times them and
keeps the run's caches (``<out>.cache/`` by default) so an interrupted run resumes where it stopped.
The library never imports Hydra: the CLI turns its configs into a :class:`PipelineConfig`.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from align3r.align.metric import apply_scale, resolve_scale
from align3r.align.types import Reconstruction
from align3r.errors import InputError, check_known_fields
from align3r.io.known import load_known_inputs
from align3r.io.poses import read_poses

log = logging.getLogger(__name__)

#: Depth prior each released network was trained with (``prior="auto"``).
PRIOR_OF_MODEL = {
    "align3r-depthpro": "depthpro",
    "align3r-depthanything": "depthanything",
    "dust3r-512-dpt": "none",
    "dust3r-224-linear": "none",
    "monst3r": "none",
}

GROUPED_GRAPHS = {"grouped": "official", "grouped-official": "official", "grouped-paper": "paper",
                  "grouped-dense": "official_dense", "grouped-depth-test": "depth_test"}


@dataclass
class PipelineConfig:
    """Every setting of :func:`reconstruct` (defaults: the paper's method, the official demo's graph).

    Inputs:
        stride, fps, start, max_frames: frame sampling (see ``align3r.io.iter_frames``).
        folder_fps: frame rate of an image folder (timestamps, ``fps`` sampling, the preview
            video's rate); None: a folder has no timestamps. Videos use their own timestamps.
        size: network resolution (512: long side 512; 224: square). The released networks were
            trained at 512 (``dust3r-224-linear`` at 224); other values work like 512 with that
            long side, both sides rounded down to multiples of 16 (the patch size), and log a
            warning with the resulting size.
        crop: centred crop to the network size (the official inference); False resizes the
            whole frame (the depth evaluation's variant, 512 only).
        prior_input: ``"auto"`` (the representation the network was fine-tuned with, as
            ``align3r train`` records it in ``final_model/config.json``; ``"pointmap"`` for the
            released networks and unknown checkpoints), ``"pointmap"`` or ``"depthmap"`` (supp.
            Table 2 ablation: only for a network trained on depth-map priors). A value that
            contradicts the recorded one logs a warning.
    Network:
        model: released short name (``align3r checkpoints``), ``.pth`` / folder path or Hub id.
        prior: ``"auto"`` (the one the model was trained with: released names, and local
            ``align3r train`` outputs from what they record), ``"depthpro"``,
            ``"depthanything[-small|-base|-large]"``, ``"external:<folder>"``,
            ``"official-cache:<name>"`` or ``"none"`` (DUSt3R / MonST3R networks).
        prior_model: Hub id or folder overriding the prior's default weights.
        device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:1"``, ...
        precision: ``"auto"`` (bf16 on CUDA, fp32 on CPU), ``"fp32"``, ``"bf16"``, ``"fp16"``.
        batch_size: pairs per forward (``"auto"``: from free GPU memory, halved on OOM).
    Pairs and alignment:
        graph: ``"grouped"`` (= ``"grouped-official"``, keyframes + clips aligned clip by clip:
            the long-video mode), ``"grouped-paper"``, or any ``align3r.pairs.make_graph`` name
            (``"swinstride-5-noncyclic"``, ``"complete"``, ...) aligned in one problem.
        flow: ``"raft"`` / ``"raft-large"``, ``"raft-small"``, ``"dis"`` (no weights) or ``"none"``.
        flow_weights: RAFT weights (``"DEFAULT"``, a local ``.pth``).
        flow_iterations: RAFT refinement iterations (the reference: 20).
        align: preset name of ``align3r.align.PRESETS`` (``"paper"``, ``"demo"``, ...).
        align_overrides: ``AlignConfig`` fields to change (e.g. ``{"iterations": 100}``).
        intrinsics: known ``(fx, fy, cx, cy)`` in original-frame pixels (held fixed by default).
        poses: known camera-to-world poses: a TUM trajectory, a COLMAP ``images.txt`` /
            ``images.bin`` or an (N, 4, 4) ``.npy``, matched to the frames by name or timestamp
            (``align3r.io.poses``); they set the reconstruction's units.
        poses_fixed: hold the known poses fixed (True) or only start from them (False).
        masks: folder of per-frame dynamic masks (non-zero = moving, named after the frames)
            replacing the self-motion masks.
        scale: ``"auto"`` (the known poses' units; else metres with a metric prior; else
            relative), ``"metric"`` (rescale to the metric prior's metres: ``align3r.align.metric``)
            or ``"relative"`` (the aligner's own units).
        prior_metric: the user depth of ``prior=external:<folder>`` is metric depth in metres.
    Outputs:
        formats: ``"all"`` or a list of ``align3r.export.FORMATS`` (the core is always written).
        min_conf: confidence threshold of the point clouds.
        overwrite: replace an existing output directory (atomically).
        cache_dir: run cache (priors, predictions, flow); default ``<out>.cache``; ``"none"`` off.
        keep_cache: keep the run cache after a successful export (a rerun with other alignment
            or export settings then skips priors, inference and flow); False deletes it.
        keep_original_gib: keep original frames in memory up to this size, for full-resolution
            COLMAP images; longer videos export at network resolution plus resampled depth.
        progress: tqdm bars.
    """

    model: str = "align3r-depthpro"
    prior: str = "auto"
    prior_model: str | None = None
    size: int = 512
    crop: bool = True
    prior_input: Literal["auto", "pointmap", "depthmap"] = "auto"
    stride: int = 1
    fps: float | None = None
    folder_fps: float | None = None
    start: int = 0
    max_frames: int | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int | Literal["auto"] = "auto"
    graph: str = "grouped"
    flow: str = "raft"
    flow_weights: str | None = "DEFAULT"
    flow_iterations: int = 20
    align: str = "paper"
    align_overrides: dict[str, Any] = field(default_factory=dict)
    intrinsics: tuple[float, float, float, float] | None = None
    poses: str | None = None
    poses_fixed: bool = True
    masks: str | None = None
    scale: Literal["auto", "metric", "relative"] = "auto"
    prior_metric: bool = False
    formats: str | list[str] = "all"
    min_conf: float = 3.0
    overwrite: bool = True
    cache_dir: str | None = None
    keep_cache: bool = True
    keep_original_gib: float = 2.0
    progress: bool = True

    def replace(self, **changes) -> PipelineConfig:
        check_known_fields(self, changes, "pipeline setting(s)")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def default_cache_dir(out: str | Path) -> Path:
    """``<out>.cache`` beside the output directory (``out`` made absolute first, so ``.`` or
    ``a/..`` have a name)."""
    out = Path(os.path.abspath(os.fspath(out)))
    return out.with_name(out.name + ".cache")


def run_cache_dir(out: str | Path | None, config: PipelineConfig) -> Path | None:
    """The run cache a run with these settings uses: ``config.cache_dir``, else ``<out>.cache``;
    None when ``cache_dir="none"`` or there is neither an output nor a cache folder."""
    if config.cache_dir == "none" or (out is None and not config.cache_dir):
        return None
    return Path(config.cache_dir).expanduser() if config.cache_dir else default_cache_dir(out)


#: What the pipeline writes into a run cache (:func:`remove_run_cache` deletes only these).
CACHE_PARTS = ("priors", "pairs", "flow")


def remove_run_cache(cache_root: Path) -> None:
    """Delete the pipeline's parts of a run cache, then the folder itself if nothing else is in it
    (a ``cache_dir`` given by the user may hold other files: those stay)."""
    for part in CACHE_PARTS:
        shutil.rmtree(cache_root / part, ignore_errors=True)
    try:
        cache_root.rmdir()
    except OSError:
        pass


def trained_settings(model: str) -> dict[str, str]:
    """What ``model`` was trained with, as far as known without loading it: ``{"prior": ...}`` for
    the released names, ``{"prior": ..., "prior_input": ...}`` for the outputs of ``align3r train``
    (``align3r.model.checkpoint.training_metadata``); ``{}`` otherwise."""
    if not isinstance(model, str | os.PathLike):
        return {}
    if isinstance(model, str) and model in PRIOR_OF_MODEL:
        return {"prior": PRIOR_OF_MODEL[model]}
    from align3r.model.checkpoint import training_metadata

    return training_metadata(model)


def resolve_prior_name(model: str, prior: str, trained: Mapping[str, str] | None = None) -> str:
    """``prior``, or for ``"auto"`` the prior ``model`` was trained with (:func:`trained_settings`;
    Depth Pro when unknown)."""
    if prior != "auto":
        return prior
    trained = trained_settings(model) if trained is None else trained
    return trained.get("prior") or PRIOR_OF_MODEL.get(model, "depthpro")


def _prior_family(prior: str) -> str | None:
    """``depthpro`` / ``depthanything`` for prior names that compute or read one of them."""
    name = prior.split(":", 1)[1].split(":")[0] if prior.startswith("official-cache:") else prior
    for family in ("depthpro", "depthanything"):
        if name == family or name.startswith(family + "-"):
            return family
    return None


def resolve_prior_input(model: str, prior_input: str, prior: str = "auto", *, what: str = "model",
                        trained: Mapping[str, str] | None = None, keys: tuple[str, str] = ("prior", "prior_input"),
                        warn: bool = True) -> str:
    """The prior representation to feed ``model``: ``prior_input``, or for ``"auto"`` the one it was
    trained with (``"pointmap"`` when unknown). With ``warn``, logs a warning when an explicit
    ``prior_input`` or ``prior`` contradicts what ``align3r train`` recorded for ``model`` (not for
    the released names, whose other-prior runs are deliberate; ``keys``: the setting names to show)."""
    trained = trained_settings(model) if trained is None else trained
    recorded_input, recorded_prior = trained.get("prior_input"), trained.get("prior")
    resolved = (recorded_input or "pointmap") if prior_input == "auto" else prior_input
    if not warn or (isinstance(model, str) and model in PRIOR_OF_MODEL):
        return resolved
    if prior_input != "auto" and recorded_input and recorded_input != prior_input:
        log.warning("%s=%s, but %s %s was fine-tuned with %s priors (recorded with the checkpoint): its "
                    "predictions will be poor; leave %s unset (auto) to use %s", keys[1], prior_input, what,
                    model, recorded_input, keys[1], recorded_input)
    family = _prior_family(prior) if prior != "auto" else None
    if recorded_prior and family and family != recorded_prior:
        log.warning("%s=%s, but %s %s was fine-tuned with %s priors (recorded with the checkpoint); %s=auto uses "
                    "%s", keys[0], prior, what, model, recorded_prior, keys[0], recorded_prior)
    return resolved


def effective_prior_input(config: PipelineConfig) -> str:
    """``config.prior_input`` with ``"auto"`` resolved (:func:`resolve_prior_input`, no warnings)."""
    if config.prior_input != "auto":
        return config.prior_input
    return trained_settings(config.model).get("prior_input") or "pointmap"


def _concat_views(parts: list):
    from align3r.io.views import Views

    first = parts[0]
    return Views(
        rgb=torch.cat([p.rgb for p in parts]),
        true_shape=torch.cat([p.true_shape for p in parts]),
        prior_pts3d=None if first.prior_pts3d is None else torch.cat([p.prior_pts3d for p in parts]),
        prior_repaired=None if first.prior_repaired is None else torch.cat([p.prior_repaired for p in parts]),
        geometry=first.geometry,
    )


def mono_depth_in_view(prior, geometry) -> np.ndarray:
    """(H, W) positive monocular depth at network resolution (disparity is inverted), resampled as
    the prior input is; the scale-map alignment optimises a per-pixel scale over it."""
    from align3r.priors.pointmap import match_prior_to_frame, pointmap_to_view, repair_depth

    depth, _ = repair_depth(prior.depth, kind=prior.kind, max_invalid_fraction=1.0, what="depth prior")
    depth, _ = match_prior_to_frame(depth, prior.focal_px, geometry.original_hw, what="depth prior")
    if prior.kind == "disparity":
        depth = 1.0 / np.maximum(depth, 1e-6 * float(depth.max()))
    view = pointmap_to_view(np.repeat(depth[..., None], 3, axis=-1).astype(np.float32), geometry)[..., 0]
    return np.maximum(view, 1e-6 * float(view.max()))


def prepare_input(source, config: PipelineConfig, prior_source=None, *, need_mono_depth: bool = False,
                  timer: StageTimer | None = None) -> PreparedInput:
    """Decode and sample frames, compute their depth priors, build network views — in chunks, so
    only the sampled frames at network resolution stay in memory (plus the originals while they fit
    in ``keep_original_gib``)."""
    from tqdm.auto import tqdm

    from align3r.io import iter_frames, make_views, probe
    from align3r.io.frames import expected_count

    timer = timer or StageTimer()
    prior_input = effective_prior_input(config)
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
                              prior_input=prior_input)
        views.append(part)
        if need_mono_depth:
            if priors is None:
                raise InputError("the scale-map alignment needs a depth prior (prior=none was given)")
            mono.extend(mono_depth_in_view(p, part.geometry) for p in priors)
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
    all_views = _concat_views(views)
    return PreparedInput(
        views=all_views, names=names, indices=np.asarray(indices, dtype=np.int64),
        timestamps=None if any(t is None for t in stamps) else np.asarray(stamps, dtype=np.float64),
        original_frames=originals or None,
        mono_depth=torch.from_numpy(np.stack(mono)).float() if need_mono_depth else None,
        source=Path(source) if not isinstance(source, (list, tuple)) else Path(str(source[0])).parent,
        files=files, prior_sources=prior_sources,
    )


def check_graph_name(name: str) -> None:
    """``InputError`` now for a graph name :func:`build_graph` would refuse (any frame count)."""
    from align3r.pairs import parse_graph_name

    if name in GROUPED_GRAPHS:
        return
    try:
        parse_graph_name(str(name))
    except InputError as exc:
        raise InputError(f"graph={name}: {exc}; or a grouped keyframe mode: {', '.join(GROUPED_GRAPHS)}") from None


def build_graph(name: str, num_frames: int):
    """A ``PairGraph`` (one alignment problem) or a ``GroupedGraph`` (long-video mode)."""
    from align3r.pairs import make_graph, make_grouped_graph

    if name in GROUPED_GRAPHS:
        return make_grouped_graph(num_frames, variant=GROUPED_GRAPHS[name])
    return make_graph(name, num_frames)


def load_prior_source(config: PipelineConfig, device: torch.device, cache_root: Path | None):
    """The depth-prior source the config names (cached under ``cache_root/priors``), or None."""
    from align3r.priors import PriorCache, load_prior

    name = resolve_prior_name(config.model, config.prior)
    if name == "none":
        return None
    kwargs: dict[str, Any] = {"progress": config.progress}
    if name.startswith("external:"):
        kwargs["metric"] = config.prior_metric
    if name in ("depthpro",) or name.startswith("depthanything"):
        kwargs["device"] = device
        if config.prior_model:
            kwargs["model"] = config.prior_model
    source = load_prior(name, **kwargs)
    if cache_root is not None and getattr(source, "cacheable", False):
        source = PriorCache(source, cache_root / "priors")
    return source


def flow_backend(config: PipelineConfig, device: torch.device):
    """The flow backend the config names, weights loaded (missing RAFT weights offline raise
    ``OfflineError`` here), or None for ``flow="none"``."""
    if config.flow in (None, "none"):
        return None
    from align3r.flow import load_flow_backend

    name = "raft-large" if config.flow == "raft" else config.flow
    options: dict[str, Any] = {}
    if name.startswith("raft"):
        options = {"weights": config.flow_weights, "num_flow_updates": config.flow_iterations,
                   "progress": config.progress}
    return load_flow_backend(name, device=device, **options)


def load_flow(config: PipelineConfig, device: torch.device, rgb: Tensor, cache_root: Path | None, backend=None):
    """A callable ``PairGraph -> PairFlow`` (cached), or None for ``flow="none"``.

    ``backend``: one already loaded by :func:`flow_backend` (default: loaded now)."""
    from align3r.cache import ChunkCache
    from align3r.flow.cached import CachedPairFlow

    backend = flow_backend(config, device) if backend is None else backend
    if backend is None:
        return None
    cache = ChunkCache(cache_root / "flow", "flow") if cache_root is not None else None
    return CachedPairFlow(backend, rgb, cache=cache, device=device, progress=config.progress)


def align_config(config: PipelineConfig):
    from align3r.align import preset

    return preset(config.align).replace(**{"known_poses_fixed": config.poses_fixed, **config.align_overrides})


def scale_mode(config: PipelineConfig, prior_source=None) -> str:
    """``config.scale`` resolved (``align3r.align.metric.resolve_scale``) for the prior the run uses."""
    from align3r.priors.registry import prior_is_metric

    name = resolve_prior_name(config.model, config.prior)
    metric = getattr(prior_source, "metric", False) if prior_source is not None else prior_is_metric(name, config.prior_metric)
    return resolve_scale(config.scale, prior_metric=metric, known_poses=config.poses is not None,
                         prior=f"prior={name}")


def known_intrinsics(config: PipelineConfig, views) -> Tensor | None:
    if config.intrinsics is None:
        return None
    fx, fy, cx, cy = (float(v) for v in config.intrinsics)
    k = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=torch.float32)
    return views.to_network_intrinsics(k)


@dataclass
class PipelineResult:
    """Everything a run produced: the reconstruction, its inputs, timings, pairs run, outputs."""

    reconstruction: Reconstruction
    prepared: PreparedInput
    timings: dict[str, float]
    num_pairs: int
    out: Path | None
    scale: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        h, w = self.prepared.views.rgb.shape[1:3]
        line = (f"{self.reconstruction.num_frames} frames, {self.num_pairs} pairs, {w}x{h} | "
                + " · ".join(f"{k} {v:.1f}s" for k, v in self.timings.items()))
        return line + (f" → {self.out}" if self.out is not None else "")


def check_settings(config: PipelineConfig, source=None) -> None:
    """Everything about ``config`` that can be checked without loading weights or decoding frames:
    the alignment preset and settings, output formats, graph name, prior representation, precision,
    batch size and, given a ``source`` (probed, not decoded), the network size for its frames.

    A ``size`` other than 512 / 224 logs a warning with the view size it gives."""
    from align3r.export.writer import resolve_formats
    from align3r.inference import resolve_precision
    from align3r.priors.pointmap import check_prior_input

    align_config(config)
    resolve_formats(config.formats)
    check_graph_name(config.graph)
    if config.prior_input != "auto":
        check_prior_input(config.prior_input)
    resolve_precision(config.precision, torch.device("cpu"))
    if config.batch_size != "auto" and (isinstance(config.batch_size, bool) or not isinstance(config.batch_size, int)
                                        or config.batch_size < 1):
        raise InputError(f"batch_size={config.batch_size}: expected a positive integer or auto")
    if config.folder_fps is not None and not config.folder_fps > 0:
        raise InputError(f"folder_fps={config.folder_fps}: expected a positive frame rate (or null)")
    if source is None:
        return
    from align3r.io import probe
    from align3r.io.view_geometry import compute_view_geometry

    info = probe(source, folder_fps=config.folder_fps)  # unreadable / empty / non-video input fails here
    h0, w0 = info.size
    geometry = compute_view_geometry(h0, w0, config.size, crop=config.crop)  # a size the frames cannot take
    if config.size not in (224, 512):
        h, w = geometry.output_hw
        log.warning("size=%s is not a resolution the released networks were trained at (512: long side 512, "
                    "224: square): %dx%d frames become %dx%d views (long side %s, sides rounded down to "
                    "multiples of 16)", config.size, w0, h0, w, h, config.size)


@contextmanager
def quiet_third_party(progress: bool) -> Iterator[None]:
    """Without ``progress``, silence the progress bars of Hugging Face libraries (transformers'
    "Loading weights", Hub downloads) while the block runs; their previous state is restored."""
    if progress:
        yield
        return
    restore = []
    try:
        from huggingface_hub.utils import (
            are_progress_bars_disabled,
            disable_progress_bars,
            enable_progress_bars,
        )

        if not are_progress_bars_disabled():
            disable_progress_bars()
            restore.append(enable_progress_bars)
    except ImportError:
        pass
    try:
        from transformers.utils import logging as transformers_logging

        if transformers_logging.is_progress_bar_enabled():
            transformers_logging.disable_progress_bar()
            restore.append(transformers_logging.enable_progress_bar)
    except ImportError:
        pass
    try:
        yield
    finally:
        for undo in restore:
            undo()


def run_pipeline(source, *, out: str | Path | None = None, config: PipelineConfig | None = None,
                 net=None, prior_source=None, **settings) -> PipelineResult:
    """:func:`reconstruct` returning the whole :class:`PipelineResult` (used by ``align3r infer``).

    ``prior_source`` replaces the prior named by the config (any ``align3r.priors`` source).
    Settings, the input and the output directory are checked before any weight is loaded; the
    run cache is created only once they pass."""
    from align3r.device import resolve_device
    from align3r.export.writer import check_output_dir
    from align3r.model.checkpoint import load_model_and_source

    config = (config or PipelineConfig()).replace(**settings)
    # prior_input=auto -> what the network was fine-tuned with (recorded by align3r train); a
    # contradicting explicit prior or prior_input is warned about
    config = config.replace(prior_input=resolve_prior_input(config.model, config.prior_input, config.prior,
                                                            warn=net is None))
    if config.prior == "auto" and net is None and "prior" in trained_settings(config.model) \
            and config.model not in PRIOR_OF_MODEL:
        log.info("prior=auto: %s was fine-tuned with %s priors", config.model, resolve_prior_name(config.model, "auto"))
    timer = StageTimer()
    device = resolve_device(config.device)
    if out is not None:  # a refused destination fails now, not after the run (and gets no cache)
        check_output_dir(out, overwrite=config.overwrite)
    cache_root = run_cache_dir(out, config)
    # bad preset, format, graph, ... or unreadable input fail before any heavy work
    check_settings(config, None if isinstance(source, (list, tuple)) else source)
    aconf = align_config(config)
    scale = scale_mode(config, prior_source)  # scale=metric with a relative prior fails here
    pose_file = read_poses(config.poses) if config.poses is not None else None  # a bad file too

    with quiet_third_party(config.progress):
        with timer("load"):
            flow = flow_backend(config, device)  # missing RAFT weights fail before the priors, not after
            checkpoint = None
            if net is None:
                net, checkpoint = load_model_and_source(config.model, device)
            net = net.to(device).eval()
            if prior_source is None and net.config.with_prior:
                prior_source = load_prior_source(config, device, cache_root)
        prepared = prepare_input(source, config, prior_source, timer=timer,
                                 need_mono_depth=aconf.parametrisation == "scale_map" or scale == "metric")
        known = load_known_inputs(pose_file, config.masks, names=prepared.names, indices=prepared.indices,
                                  timestamps=prepared.timestamps, geometry=prepared.views.geometry)
        rec, num_pairs = run_stages(prepared, net, config, device, cache_root, timer, flow, known)
        rec, scale_record = apply_scale(rec, scale, prepared.mono_depth, min_conf=config.min_conf)
    written = None
    if out is not None:
        with timer("export"):
            inputs = [*input_entries(prepared), *known.manifest_entries(), checkpoint_entry(net, checkpoint)]
            written = write_outputs(out, rec, prepared, config, timer, inputs, scale_record)
    if cache_root is not None and not config.keep_cache:  # only after success: a failed run resumes
        remove_run_cache(cache_root)
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


def run_stages(prepared: PreparedInput, net, config: PipelineConfig, device: torch.device,
               cache_root: Path | None, timer: StageTimer, flow=None, known=None) -> tuple[Reconstruction, int]:
    """Pairs → inference → flow → alignment for prepared input; returns (reconstruction, pairs run).

    ``flow``: the flow backend (:func:`flow_backend`), loaded now when None. ``known``: the
    user's poses and masks (``align3r.io.known.KnownInputs``), or None."""
    views = prepared.views
    known_poses = None if known is None or known.poses is None else torch.from_numpy(known.poses).float()
    masks = None if known is None or known.masks is None else torch.from_numpy(known.masks)
    return align_views(views, net, build_graph(config.graph, len(views)), align_config(config), device=device,
                       precision=config.precision, batch_size=config.batch_size,
                       flow_fn=load_flow(config, device, views.rgb, cache_root, flow), cache_root=cache_root,
                       mono_depth=prepared.mono_depth, known_intrinsics=known_intrinsics(config, views),
                       known_poses=known_poses, dynamic_mask=masks, timer=timer, progress=config.progress)


def align_views(views, net, graph, aconf, *, device: torch.device, precision: str = "auto",
                batch_size: int | str = "auto", flow_fn=None, cache_root: Path | None = None,
                mono_depth: Tensor | None = None, known_intrinsics: Tensor | None = None, fit_scale: bool = True,
                known_poses: Tensor | None = None, dynamic_mask: Tensor | None = None,
                timer: StageTimer | None = None, progress: bool = True) -> tuple[Reconstruction, int]:
    """Inference, flow and alignment of ``views`` over a built graph.

    Args:
        views: ``align3r.io.Views``.
        net: the network (eval mode, on ``device``).
        graph: a ``PairGraph`` (one alignment problem) or a ``GroupedGraph`` (keyframes, then
            clips fitted onto them: the long-video mode).
        aconf: ``AlignConfig``.
        flow_fn: ``PairGraph -> PairFlow`` (:func:`load_flow`), or None without the flow term.
        cache_root: run cache folder for the predictions, or None.
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
    from align3r.cache import ChunkCache
    from align3r.inference import PairPredictor
    from align3r.pairs import PairGraph

    timer = timer or StageTimer()
    cache = ChunkCache(cache_root / "pairs", "pairs") if cache_root is not None else None
    predictor = PairPredictor(net, views.img, views.true_shape, views.prior_pts3d if net.config.with_prior else None,
                              device=device, precision=precision, batch_size=batch_size, cache=cache,
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


def input_entries(prepared: PreparedInput) -> list[dict[str, Any]]:
    """``manifest.json`` inputs read by the run, each ``{"role", "path", "bytes", "sha256"}``: the
    video or every frame file read, then every depth-prior file read (external priors) or
    ``{"role": "depth_prior_model", "source"}`` for a prior model."""
    from align3r.export.manifest import describe_inputs

    video = [] if prepared.files else [prepared.source]
    entries = [{"role": "video", **d} for d in describe_inputs(video)]
    entries += [{"role": "frame", **d} for d in describe_inputs(prepared.files)]
    sources = list(dict.fromkeys(prepared.prior_sources))  # unique, in frame order
    files = [s for s in sources if Path(s).is_file()]
    entries += [{"role": "depth_prior", **d} for d in describe_inputs(files)]
    entries += [{"role": "depth_prior_model", "source": s} for s in sources if s not in files]
    return entries


def checkpoint_entry(net, checkpoint: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The manifest's entry for the network: where it was read from (``load_model_and_source``; unknown
    for a network passed in) and a fingerprint of its weights (a checkpoint is GBs: not hashed whole)."""
    from align3r.cache import module_fingerprint

    return {"role": "checkpoint", **(checkpoint or {}), "weights_fingerprint": module_fingerprint(net)}


def write_outputs(out: str | Path, rec: Reconstruction, prepared: PreparedInput, config: PipelineConfig,
                  timer: StageTimer, inputs: list[dict[str, Any]] | None = None,
                  scale: Mapping[str, Any] | None = None) -> Path:
    """Export ``rec`` to ``out`` with the manifest's inputs (default :func:`input_entries`),
    settings, timings and ``scale`` (``align3r.align.metric.apply_scale``'s record)."""
    from align3r.export import ExportOptions, OriginalResolution, write_reconstruction

    frames = None if prepared.original_frames is None else np.stack(prepared.original_frames)
    original = OriginalResolution.from_view_geometry(prepared.views.geometry, frames=frames)
    manifest: Mapping[str, Any] = {
        "inputs": input_entries(prepared) if inputs is None else inputs,
        "settings": {"pipeline": config.to_dict(), "align": asdict(align_config(config)),
                     "frame_indices": prepared.indices.tolist()},
        "timings": dict(timer.seconds),
        **({"scale": dict(scale)} if scale is not None else {}),
    }
    return write_reconstruction(out, rec, rgb=prepared.views.rgb, names=prepared.names,
                                timestamps=None if prepared.timestamps is None else prepared.timestamps.tolist(),
                                original=original, manifest=manifest, formats=config.formats,
                                overwrite=config.overwrite, options=ExportOptions(min_conf=config.min_conf),
                                progress=config.progress)

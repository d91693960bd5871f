"""Evaluate one benchmark sequence: frames → priors → views → stages → metrics → a result record.

The record (a JSON-ready dict, :func:`evaluate_sequence`) holds the metrics together with
everything the official scripts leave implicit: the exact frame files, the ground truth used, the
prior files (or model), the graph with its clip layout and pair count, the full alignment settings
and how the alignment ran (one problem or keyframes + clips), and per-stage timings.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from align3r.align.optimize import AlignmentDiverged
from align3r.errors import InputError
from align3r.eval.run.priors import choose_prior_source, load_sequence_priors
from align3r.eval.run.settings import DatasetSpec, EvalSettings, Runtime
from align3r.eval.run.stages import build_eval_graph, run_graph_stages
from align3r.priors.mono_depth import mono_depth_in_view

RECORD_SCHEMA = "align3r.eval.sequence/1"

DIVERGED_ADVICE = ("Try a lower learning rate with +settings.align_overrides.lr=<value> (every row) or "
                   "rows.<row>.settings.align_overrides.lr=<value> (one row), or check the frames and depth priors")
"""What a diverged alignment's record advises, in ``align3r eval``'s setting keys."""


class StageError(RuntimeError):
    """The reconstruction of one sequence failed (its cause is chained): the runner records it
    as a failed sequence and goes on with the others."""


@dataclass
class SequenceContext:
    """What a process shares between sequences: the loaded network, the device, the runtime, and
    a factory for the prior model (loaded only if a sequence lacks official caches)."""

    net: Any
    device: torch.device
    runtime: Runtime
    prior_model: Callable[[str], Any]


def relative(path: Path, root: str | Path) -> str:
    """``path`` relative to ``root`` when inside it (portable records), else as given."""
    p, r = Path(os.path.abspath(path)), Path(os.path.abspath(root))
    return p.relative_to(r).as_posix() if p.is_relative_to(r) else str(path)


def read_frames(paths) -> tuple[list[np.ndarray], list[float | None]]:
    """Decode frames in the given order: (N uint8 RGB images, N EXIF focals or None)."""
    from align3r.io import iter_frames

    frames = list(iter_frames([str(p) for p in paths], min_frames=2))
    if len(frames) != len(paths):
        raise InputError(f"read {len(frames)} of {len(paths)} frames")
    return [f.image for f in frames], [f.focal_px for f in frames]


def sequence_fingerprint_payload(seq, dataset: DatasetSpec, settings: EvalSettings, frames: list[str],
                                 prior_source: str | None, runtime: Runtime, clip_size: int | None) -> dict:
    """What the result of a sequence depends on (hashed into its record's fingerprint). The
    choice of sequences is not part of it: evaluating a subset reuses the other runs' results."""
    options = {k: v for k, v in dict(dataset.options).items() if k != "sequences"}
    return {"schema": RECORD_SCHEMA, "dataset": dataset.name, "options": options,
            "sequence": seq.name, "frames": frames, "settings": settings.to_dict(),
            "prior_source": prior_source,
            "prior_model": runtime.prior_model_for(settings.prior) if prior_source == "computed" else None,
            "clip_size": clip_size}


def evaluate_sequence(seq, dataset: DatasetSpec, settings: EvalSettings, ctx: SequenceContext, *,
                      clip_size: int | None = None) -> dict[str, Any]:
    """Run the method on one sequence and score it.

    Args:
        seq: an ``align3r.eval.datasets.Sequence`` (protocol frames and ground truth).
        dataset: its ``DatasetSpec`` (paths in the record are relative to its root).
        settings: already specialised to the sequence (``EvalSettings.for_sequence``).
        ctx: the process's network, device and runtime.
        clip_size: the grouped graph's clip size chosen for this sequence (carried clip sizes).
    Returns:
        The JSON-ready record (``status == "ok"``); see the module docstring.
    """
    from align3r.pipeline import StageTimer

    count = len(seq) if settings.max_frames is None else min(len(seq), settings.max_frames)
    if count < 2:
        raise InputError(f"{seq.dataset}/{seq.name} has {count} frame(s); at least 2 are needed")
    ground_truth = _ground_truth_info(seq, settings, count, dataset)  # before any work: fail early
    frame_paths = list(seq.frame_paths[:count])
    timer = StageTimer()
    with timer("decode"):
        images, focals = read_frames(frame_paths)
    views, mono, prior_info = _views_with_priors(seq, dataset, settings, ctx, images, focals, timer)
    del images
    graph, graph_info = build_eval_graph(settings, count, clip_size)
    if mono is not None and graph_info.keyframes is not None:
        raise InputError("the scale-map alignment runs on one graph; give the row a non-grouped graph "
                         "(e.g. graph=complete)")
    try:
        rec, pairs_run, aconf = run_graph_stages(views, ctx.net, graph, settings, device=ctx.device,
                                                 batch_size=ctx.runtime.batch_size, timer=timer, mono_depth=mono,
                                                 progress=ctx.runtime.progress)
    except torch.OutOfMemoryError:
        raise
    except AlignmentDiverged as exc:  # a failed sequence, not a failed run; advice in eval's keys
        cause = exc.with_advice(DIVERGED_ADVICE).with_traceback(exc.__traceback__)
        raise StageError(f"{seq.dataset}/{seq.name}: reconstruction failed") from cause
    except (InputError, RuntimeError, ValueError, FloatingPointError) as exc:
        raise StageError(f"{seq.dataset}/{seq.name}: reconstruction failed") from exc
    if not (torch.isfinite(rec.depth).all() and torch.isfinite(rec.cam2world).all()):
        raise StageError(f"{seq.dataset}/{seq.name}: reconstruction failed") from FloatingPointError(
            "the alignment produced NaN/inf depth or poses (it diverged)")
    with timer("metrics"):
        metrics = _score(seq, settings, rec, views, count)

    h, w = views.image_size
    return {
        "schema": RECORD_SCHEMA,
        "status": "ok",
        "dataset": dataset.to_dict(),
        "sequence": seq.name,
        "task": settings.task,
        "frames": [relative(p, dataset.root) for p in frame_paths],
        "num_frames": count,
        "ground_truth": ground_truth,
        "prior": prior_info,
        "views": {"size": settings.size, "crop": settings.crop, "network_hw": [h, w],
                  "original_hw": list(views.geometry.original_hw)},
        "graph": graph_info.to_dict(),
        "num_pairs": pairs_run,
        "alignment": {"mode": graph_info.mode, "config": _jsonable(asdict(aconf)),
                      "flow": settings.flow, "grouped_fit_scale": settings.grouped_fit_scale,
                      "final_loss": rec.loss_history[-1] if rec.loss_history else None},
        "settings": settings.to_dict(),
        "metrics": metrics,
        "timings": {k: round(v, 4) for k, v in timer.seconds.items()},
        "environment": _environment(ctx.device),
    }


def _views_with_priors(seq, dataset: DatasetSpec, settings: EvalSettings, ctx: SequenceContext, images, focals,
                       timer):
    """Network views of the frames, with the prior input when the network has a prior branch.

    Returns:
        (``Views``, (N, H, W) monocular depth for the scale-map alignment or None, the record's
        ``prior`` entry).
    """
    from align3r.align import preset
    from align3r.io import make_views

    priors, prior_info = None, {"name": "none"}
    if ctx.net.config.with_prior:
        if settings.prior == "none":
            raise InputError(f"the network {settings.model} has a prior branch; set the row's prior "
                             "(depthpro or depthanything)")
        count = len(images)
        source = choose_prior_source(seq, settings.prior, count, ctx.runtime.priors)
        with timer("priors"):
            model = ctx.prior_model(settings.prior) if source == "computed" else None
            priors = load_sequence_priors(seq, settings.prior, count, source, images, model_source=model,
                                          focal_px=focals)
        prior_info = {"name": settings.prior, "source": source, "input": settings.prior_input}
        if source == "official-cache":
            prior_info["files"] = [relative(Path(p.source), dataset.root) for p in priors]
        else:
            prior_info["model"] = ctx.runtime.prior_model_for(settings.prior) or "default weights"
            prior_info["identity"] = getattr(model, "identity", repr(model))
    elif settings.prior != "none":  # it would be ignored while the row's label and settings claim it
        raise InputError(f"the network {settings.model} has no prior branch (a DUSt3R/MonST3R-style network), "
                         f"so the {settings.prior} prior would be ignored; set the row's prior to none "
                         "(`--prior none` for `align3r eval depth|pose`), or evaluate an Align3R checkpoint")
    scale_map = preset(settings.align).replace(**dict(settings.align_overrides)).parametrisation == "scale_map"
    with timer("views"):
        views = make_views(images, settings.size, crop=settings.crop, priors=priors, progress=False,
                           prior_input=settings.prior_input)
        mono = None
        if scale_map:
            if priors is None:
                raise InputError("the scale-map alignment needs a depth prior; this row's network has none")
            mono = mono_depth_in_view(priors, views.geometry)
    return views, mono, prior_info


def _score(seq, settings: EvalSettings, rec, views, count: int) -> dict[str, Any]:
    """Depth metrics (prediction resized to the GT as the official script; with a crop, mapped
    back through it and scored on the pixels the view shows) or pose metrics (Sim(3)-aligned
    ATE / RPE with evo)."""
    if settings.task == "depth":
        from align3r.eval.depth_metrics import effective_post_clip, evaluate_video_depth

        gt = np.stack([seq.load_depth(i) for i in range(count)])
        pred = rec.depth.detach().float()
        if settings.crop:  # the view misses part of the frame: map every original pixel into it and
            pred = views.resize_to_original(pred.cpu())  # score only the pixels the view shows
            gt = np.where(views.original_coverage().numpy()[None], gt, 0.0)
        result = evaluate_video_depth(pred.cpu().numpy(), gt, alignment=settings.depth_alignment,
                                      depth_max=settings.depth_max, protocol=settings.depth_protocol,
                                      per_frame=settings.depth_per_frame, post_clip=settings.depth_post_clip)
        out = {"depth": dict(result.metrics), "valid_pixels": result.valid_pixels, "scale": result.scale,
               "shift": result.shift, "alignment": result.alignment, "protocol": settings.depth_protocol,
               "depth_max": settings.depth_max, "per_frame": settings.depth_per_frame,
               "post_clip": effective_post_clip(settings.depth_protocol, settings.depth_post_clip)}
        if result.per_frame is not None:  # one (scale, shift) per frame; NaN for frames without GT
            out["frame_scale_shift"] = [[f.scale, f.shift] for f in result.per_frame]
        return out
    from align3r.eval.pose_metrics import evaluate_trajectory

    gt = seq.trajectory.subset(slice(0, count))
    result = evaluate_trajectory(rec.cam2world.detach().cpu().double().numpy(), gt.cam2world, gt.timestamps,
                                 rpe_delta=settings.rpe_delta, rpe_all_pairs=settings.rpe_all_pairs)
    return {"pose": result.as_dict(), "num_poses": result.num_poses, "sim3_scale": result.sim3_scale,
            "rpe_delta": settings.rpe_delta, "rpe_all_pairs": settings.rpe_all_pairs,
            "degenerate": result.degenerate, "message": result.message}


def _ground_truth_info(seq, settings: EvalSettings, count: int, dataset: DatasetSpec) -> dict[str, Any]:
    """The ground truth the metrics will use (for the record); ``InputError`` when there is none."""
    if settings.task == "depth":
        if seq.depth_paths is None:
            raise InputError(f"{seq.dataset} has no ground-truth depth: it cannot be used for depth evaluation")
        return {"depth_files": [relative(p, dataset.root) for p in seq.depth_paths[:count]]}
    if seq.trajectory is None:
        raise InputError(f"{seq.dataset} has no ground-truth trajectory: it cannot be used for pose evaluation")
    return {"timestamps": seq.trajectory.timestamps[:count].tolist()}


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _environment(device: torch.device) -> dict[str, Any]:
    from align3r import __version__

    env = {"align3r": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "device": str(device)}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    # the machine the timings were measured on, named in the tables beside published times
    env["machine"] = env.get("gpu") or f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"
    return env

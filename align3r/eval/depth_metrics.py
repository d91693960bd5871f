"""Video depth metrics, equal to the official evaluation scripts.

Two protocols (official ``tool/depth_test.py``, its ``__main__`` block, and the fixtures' README):

``protocol="align3r"`` (default; ``tool/depth_test.py``, the paper's tables)
    valid = 1e-3 < gt < depth_max; one (scale, shift) per sequence fitted on the valid pixels of
    all frames pooled; the aligned prediction is clipped to [1e-5, depth_max]; every metric is
    computed on the clipped values over the pooled valid pixels.

``protocol="monst3r"`` (MonST3R ``dust3r/depth_eval.py::depth_evaluation``)
    valid = 0 < gt (< depth_max when given); optional post-clip to depth_max; Abs Rel, Sq Rel and
    RMSE use the (post-clipped but otherwise) *unclamped* aligned prediction, Log RMSE and the δ
    accuracies use it clamped to ≥ 1e-5.

Metrics: Abs Rel = mean(|a−g|/g), Sq Rel = mean((a−g)²/g), RMSE = sqrt(mean((a−g)²)),
Log RMSE = sqrt(mean((log a − log g)²)), δ<1.25^k = fraction of pixels with max(a/g, g/a) < 1.25^k.
A dataset's figure is the mean over its sequences weighted by their valid-pixel counts
(:func:`average_results`).

With ``per_frame=True`` each frame gets its own alignment and metrics; the sequence's metrics are
the frames' weighted by valid pixels (MonST3R's per-frame mode).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import cv2
import numpy as np

from align3r.errors import InputError
from align3r.eval.depth_alignment import ALIGNMENT_METHODS, fit_alignment, l1_objective

METRIC_NAMES = ("Abs Rel", "Sq Rel", "RMSE", "Log RMSE", "δ < 1.25", "δ < 1.25^2", "δ < 1.25^3")
"""Metric keys, spelled as the official scripts print them."""

PROTOCOLS = ("align3r", "monst3r")
ALIGN3R_MIN_VALID_DEPTH = 1e-3
MIN_ALIGNED_DEPTH = 1e-5


@dataclass
class DepthResult:
    """Metrics of one sequence (or one frame).

    - ``metrics``: :data:`METRIC_NAMES` -> value (NaN when there is no valid pixel).
    - ``valid_pixels``: number of ground-truth pixels that entered the metrics (the weight).
    - ``scale``, ``shift``: the fitted alignment ``scale * pred + shift`` (NaN in per-frame mode;
      see ``per_frame``).
    - ``l1_objective``: Σ|scale·pred + shift − gt| over the valid pixels, before clipping (the LAD
      objective; lets a test check that an alignment is at least as good as another).
    - ``alignment``: the fit used.
    - ``per_frame``: the frames' results in per-frame mode, else None.
    """

    metrics: dict[str, float]
    valid_pixels: int
    scale: float
    shift: float
    l1_objective: float
    alignment: str
    per_frame: tuple[DepthResult, ...] | None = None


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def resize_to(pred: np.ndarray, height: int, width: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize (T, h, w) predictions to (T, height, width) with OpenCV, frame by frame.

    ``"bilinear"`` is what the official script does (``cv2.resize`` default, INTER_LINEAR).
    """
    flags = {"bilinear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "bicubic": cv2.INTER_CUBIC}
    if interpolation not in flags:
        raise ValueError(f"interpolation must be one of {sorted(flags)}, got {interpolation!r}")
    if pred.shape[1:] == (height, width):
        return pred
    return np.stack([cv2.resize(frame, (width, height), interpolation=flags[interpolation])
                     for frame in pred])


def _metrics(aligned: np.ndarray, gt: np.ndarray, protocol: str) -> dict[str, float]:
    """The seven metrics from aligned predictions and GT (both (P,), float64, P > 0)."""
    diff = aligned - gt
    abs_rel = np.mean(np.abs(diff) / gt)
    sq_rel = np.mean(diff**2 / gt)
    rmse = np.sqrt(np.mean(diff**2))
    if protocol == "monst3r":  # the log/ratio metrics alone see the 1e-5 clamp
        aligned = np.maximum(aligned, MIN_ALIGNED_DEPTH)
    log_rmse = np.sqrt(np.mean((np.log(aligned) - np.log(gt)) ** 2))
    ratio = np.maximum(aligned / gt, gt / aligned)
    deltas = [np.mean(ratio < 1.25**k) for k in (1, 2, 3)]
    return dict(zip(METRIC_NAMES, (float(v) for v in (abs_rel, sq_rel, rmse, log_rmse, *deltas))))


def _nan_result(alignment: str) -> DepthResult:
    return DepthResult({k: float("nan") for k in METRIC_NAMES}, 0, float("nan"), float("nan"),
                       float("nan"), alignment)


def _evaluate_pixels(pred: np.ndarray, gt: np.ndarray, *, alignment: str, protocol: str,
                     clip_max: float | None) -> DepthResult:
    """Align and score the valid pixels ``pred``, ``gt`` ((P,) in the inputs' dtype)."""
    if pred.size == 0:
        return _nan_result(alignment)
    scale, shift = fit_alignment(pred, gt, alignment)
    p = pred.astype(np.float64)
    g = gt.astype(np.float64)
    aligned = scale * p + shift
    if protocol == "align3r":
        aligned = np.clip(aligned, MIN_ALIGNED_DEPTH, clip_max if clip_max is not None else np.inf)
    elif clip_max is not None:
        aligned = np.minimum(aligned, clip_max)
    return DepthResult(_metrics(aligned, g, protocol), int(pred.size), scale, shift,
                       l1_objective(pred, gt, scale, shift), alignment)


def effective_post_clip(protocol: str, post_clip: bool | None) -> bool:
    """Whether :func:`evaluate_video_depth` clips at ``depth_max``: ``post_clip``, or when None the
    protocol's default (always for ``"align3r"``, never for ``"monst3r"``)."""
    return protocol == "align3r" if post_clip is None else bool(post_clip)


def valid_depth_mask(gt: np.ndarray, depth_max: float | None, protocol: str = "align3r") -> np.ndarray:
    """The protocol's validity mask: (T, H, W) bool (see module docstring)."""
    low = ALIGN3R_MIN_VALID_DEPTH if protocol == "align3r" else 0.0
    valid = gt > low
    if depth_max is not None:
        valid &= gt < depth_max
    return valid


def evaluate_video_depth(pred, gt, *, alignment: str = "lad", depth_max: float | None = 70.0,
                         protocol: str = "align3r", per_frame: bool = False,
                         post_clip: bool | None = None,
                         interpolation: str = "bilinear") -> DepthResult:
    """Score one video's depth against ground truth.

    Args:
        pred: (T, h, w) predicted depth (numpy or torch), any positive scale. Resized to the GT
            size with ``interpolation`` when the sizes differ, as the official script does.
        gt: (T, H, W) ground-truth depth in metres; invalid pixels ≤ 0 (or NaN).
        alignment: one of ``"lad"`` (exact; the official script's choice), ``"lad_bfgs"``,
            ``"lstsq"``, ``"scale"``, ``"median"``, ``"lad2"``, ``"none"``
            (:mod:`align3r.eval.depth_alignment`).
        depth_max: GT pixels at or beyond it are ignored (70 m in the paper); None: no cap.
        protocol: ``"align3r"`` or ``"monst3r"`` (module docstring).
        per_frame: align every frame on its own (MonST3R's per-frame mode).
        post_clip: clip the aligned prediction at ``depth_max``. None: the protocol's default
            (always for ``"align3r"``, never for ``"monst3r"``).
        interpolation: ``"bilinear"`` (official), ``"bicubic"`` or ``"nearest"``.
    Returns:
        A :class:`DepthResult`.
    Raises:
        InputError: shapes that do not pair up, or non-finite predictions on valid pixels.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    if alignment not in ALIGNMENT_METHODS:
        raise ValueError(f"alignment must be one of {ALIGNMENT_METHODS}, got {alignment!r}")
    post_clip = effective_post_clip(protocol, post_clip)
    pred = _as_numpy(pred)
    gt = _as_numpy(gt)
    if pred.ndim == 2:
        pred = pred[None]
    if gt.ndim == 2:
        gt = gt[None]
    if pred.ndim != 3 or gt.ndim != 3:
        raise InputError(f"depth maps must be (T, H, W); got prediction {pred.shape} and GT {gt.shape}")
    if pred.shape[0] != gt.shape[0]:
        raise InputError(f"{pred.shape[0]} predicted depth maps for {gt.shape[0]} ground-truth maps; "
                         "evaluate the same frames (check the frame range of the run).")
    if not np.issubdtype(pred.dtype, np.floating):
        pred = pred.astype(np.float32)
    pred = resize_to(pred, gt.shape[1], gt.shape[2], interpolation)
    valid = valid_depth_mask(np.nan_to_num(gt, nan=0.0), depth_max, protocol)
    if not np.all(np.isfinite(pred[valid])):
        raise InputError("the predicted depth has NaN/inf values on valid ground-truth pixels; "
                         "the reconstruction failed for this sequence.")
    clip_max = depth_max if post_clip else None
    if not per_frame:
        return _evaluate_pixels(pred[valid], gt[valid], alignment=alignment, protocol=protocol,
                                clip_max=clip_max)
    frames = tuple(_evaluate_pixels(pred[i][valid[i]], gt[i][valid[i]], alignment=alignment,
                                    protocol=protocol, clip_max=clip_max)
                   for i in range(pred.shape[0]))
    total = sum(f.valid_pixels for f in frames)
    return DepthResult(average_results(frames), total, float("nan"), float("nan"),
                       float(sum(f.l1_objective for f in frames if f.valid_pixels)), alignment,
                       per_frame=frames)


def average_results(results: Iterable[DepthResult]) -> dict[str, float]:
    """Mean of each metric over results, weighted by their valid-pixel counts.

    Results without valid pixels carry no weight; with no valid pixel at all, every value is NaN.
    """
    results = list(results)
    weights = np.array([r.valid_pixels for r in results], dtype=np.float64)
    if weights.sum() == 0:
        return {k: float("nan") for k in METRIC_NAMES}
    keep = weights > 0
    return {k: float(np.average([r.metrics[k] for r, w in zip(results, keep) if w],
                                weights=weights[keep]))
            for k in METRIC_NAMES}

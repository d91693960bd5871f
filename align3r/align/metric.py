"""Metric scale: one factor that brings an up-to-scale reconstruction into the prior's metres.

The aligned depth is only defined up to one global scale (the edge scales are pinned to an
arbitrary geometric mean, official ``dust3r/cloud_opt/base_opt.py``, ``BasePCOptimizer``,
``base_scale``). A metric prior (Depth Pro, or user depth declared metric) fixes it: the factor is
the median, over confident static pixels of every frame, of prior depth / aligned depth, after
trimming the ratios that lie far from the bulk (filled sensor holes, sky, edges where the two
depths are misregistered). Multiplying depth and camera translations by it (:meth:`Reconstruction.scaled`)
puts the whole reconstruction, and so every export, in metres.

Which scale a run gets (:func:`resolve_scale`): ``"metric"`` with a metric prior, ``"relative"``
(the aligner's own units), or ``"poses"`` when the user gave camera poses: their units win, and a
metric rescale would break them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from align3r.errors import InputError

ScaleSetting = Literal["auto", "metric", "relative"]
SCALE_SETTINGS = ("auto", "metric", "relative")

#: A ratio whose log lies more than this many robust standard deviations (1.4826 MAD) from the
#: median is trimmed before the factor is taken.
TRIM_SIGMAS = 3.0


@dataclass(frozen=True)
class MetricScale:
    """The factor that turns aligned depth into the prior's metres, and how well it is supported.

    - ``factor``: metres per reconstruction unit (median of prior / aligned depth, trimmed).
    - ``frame_factors``: (N,) the same median per frame (NaN for a frame with no pixel used).
    - ``spread``: robust relative spread of ``frame_factors`` around ``factor``
      (1.4826 x the median absolute deviation of their logs; 0.01 ~ 1 %).
    - ``pixels_used``: pixels that entered the median (after the confidence, static and trim tests).
    - ``pixels_total``: every pixel of every frame.
    """

    factor: float
    frame_factors: list[float]
    spread: float
    pixels_used: int
    pixels_total: int

    def to_dict(self) -> dict:
        return {"factor": self.factor, "frame_spread": self.spread, "frame_factors": self.frame_factors,
                "pixels_used": self.pixels_used, "pixels_total": self.pixels_total}


def metric_scale_factor(depth: Tensor, prior_depth: Tensor, conf: Tensor, dynamic_mask: Tensor | None = None, *,
                        min_conf: float = 3.0, trim_sigmas: float = TRIM_SIGMAS) -> MetricScale:
    """The robust factor ``s`` with ``s * depth ~ prior_depth`` (see the module doc).

    Args:
        depth: (N, H, W) aligned z-depth, reconstruction units.
        prior_depth: (N, H, W) metric prior depth (metres) at the same resolution and crop.
        conf: (N, H, W) raw confidence (> 1); pixels at or below ``min_conf`` are not used.
        dynamic_mask: (N, H, W) bool, True on moving pixels (not used); None: all static.
        trim_sigmas: log-ratio outliers beyond this many robust standard deviations are dropped.
    Raises:
        InputError: shapes differ, or no pixel is confident, static and positive in both depths.
    """
    if depth.shape != prior_depth.shape or depth.shape != conf.shape or depth.dim() != 3:
        raise InputError(f"depth {tuple(depth.shape)}, prior depth {tuple(prior_depth.shape)} and confidence "
                         f"{tuple(conf.shape)} must all be (N, H, W) at one resolution")
    prior_depth = prior_depth.to(depth)
    valid = (conf.to(depth.device) > min_conf) & (depth > 0) & (prior_depth > 0)
    valid &= torch.isfinite(depth) & torch.isfinite(prior_depth)
    if dynamic_mask is not None:
        valid &= ~dynamic_mask.to(device=depth.device, dtype=torch.bool)
    if not bool(valid.any()):
        raise InputError(f"no pixel is confident (conf > {min_conf:g}), static and positive in both the aligned "
                         "and the prior depth, so no metric scale can be found; use scale=relative")
    n = depth.shape[0]
    log_ratio = torch.where(valid, prior_depth.clamp_min(1e-12).log() - depth.clamp_min(1e-12).log(),
                            torch.full_like(depth, float("nan"))).reshape(n, -1)
    centre = log_ratio.nanmedian()
    mad = (log_ratio - centre).abs().nanmedian()
    kept = (log_ratio - centre).abs() <= trim_sigmas * 1.4826 * mad
    log_ratio = torch.where(kept, log_ratio, torch.full_like(log_ratio, float("nan")))
    factor = float(log_ratio.nanmedian().exp())
    frame_log = log_ratio.nanmedian(dim=1).values  # (N,), NaN where a frame has no pixel left
    used = torch.isfinite(frame_log)
    spread = float(1.4826 * (frame_log[used] - frame_log[used].median()).abs().median())
    return MetricScale(factor=factor, frame_factors=frame_log.exp().tolist(), spread=spread,
                       pixels_used=int(kept.sum()), pixels_total=int(depth.numel()))


def resolve_scale(scale: str, *, prior_metric: bool, known_poses: bool = False,
                  prior: str = "the depth prior") -> Literal["metric", "relative", "poses"]:
    """What ``scale`` means for a run: ``"metric"`` (rescale to the prior's metres), ``"relative"``
    (the aligner's units) or ``"poses"`` (known camera poses set the units and are never rescaled).

    ``"auto"``: poses' units with known poses, else metric with a metric prior, else relative.

    Raises:
        InputError: an unknown setting; ``"metric"`` with a prior that is not metric (Depth
        Anything's disparity, user depth not declared metric, no prior) or with known poses.
    """
    if scale not in SCALE_SETTINGS:
        raise InputError(f"scale={scale}: expected one of {', '.join(SCALE_SETTINGS)}")
    if scale == "metric" and known_poses:
        raise InputError("scale=metric with known poses: the poses set the units of the reconstruction and are "
                         "not rescaled; use scale=auto (the poses' units) or give no poses")
    if scale == "metric" and not prior_metric:
        raise InputError(f"scale=metric needs a metric depth prior, but {prior} is not metric (Depth Anything gives "
                         "relative disparity); use prior=depthpro, declare your own depth metric "
                         "(prior=external:<folder> prior_metric=true), or scale=relative")
    if known_poses:
        return "poses"
    if scale == "auto":
        return "metric" if prior_metric else "relative"
    return scale  # type: ignore[return-value]


def apply_scale(rec, mode: str, prior_depth: Tensor | None, *, min_conf: float = 3.0):
    """``rec`` in the units ``mode`` asks for (:func:`resolve_scale`), and the manifest's record.

    Returns:
        (``Reconstruction``, ``{"mode", "units"}`` plus the :class:`MetricScale` fields for ``"metric"``).
    """
    if mode == "metric":
        if prior_depth is None:
            raise InputError("scale=metric needs the depth prior at network resolution")
        scale = metric_scale_factor(rec.depth, prior_depth, rec.conf, rec.dynamic_mask, min_conf=min_conf)
        return rec.scaled(scale.factor), {"mode": "metric", "units": "metres", **scale.to_dict()}
    units = {"poses": "the given poses' units", "relative": "relative (one arbitrary global scale)"}[mode]
    return rec, {"mode": mode, "units": units, "factor": 1.0}

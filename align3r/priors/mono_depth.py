"""Depth priors → positive monocular depth at network resolution, for the scale-map alignment.

The scale-map parametrisation (``align3r.align``, ``parametrisation="scale_map"``) optimises a
per-pixel scale over each frame's monocular depth; that depth is the prior resampled exactly as
the prior input is (``align3r.priors.pointmap``), with disparity inverted.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from align3r.io.view_geometry import ViewGeometry
from align3r.priors.pointmap import match_prior_to_frame, pointmap_to_view, repair_depth
from align3r.priors.types import DepthPrior


def _frame_depth_in_view(prior: DepthPrior, geometry: ViewGeometry) -> np.ndarray:
    """(H, W) float32 positive depth of one prior at network resolution."""
    depth, _ = repair_depth(prior.depth, kind=prior.kind, max_invalid_fraction=1.0, what="depth prior")
    depth, _ = match_prior_to_frame(depth, prior.focal_px, geometry.original_hw, what="depth prior")
    if prior.kind == "disparity":
        depth = 1.0 / np.maximum(depth, 1e-6 * float(depth.max()))
    view = pointmap_to_view(np.repeat(depth[..., None], 3, axis=-1).astype(np.float32), geometry)[..., 0]
    return np.maximum(view, 1e-6 * float(view.max()))


def mono_depth_in_view(priors: Sequence[DepthPrior], geometry: ViewGeometry) -> Tensor:
    """(N, H, W) float32 positive monocular depth of N frames' priors at network resolution.

    Args:
        priors: one ``DepthPrior`` per frame (depth or disparity, at any resolution whose aspect
            matches the frame's).
        geometry: the views' ``ViewGeometry`` (``align3r.io.Views.geometry``).
    """
    return torch.from_numpy(np.stack([_frame_depth_in_view(p, geometry) for p in priors])).float()

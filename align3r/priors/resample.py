"""Resampling a prior map to a frame's resolution."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor


def resize_map(maps: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear resize of (B, h, w) maps to (B, H, W) float32 (``align_corners=False``; antialiased when shrinking).

    Bilinear weights are a convex combination, so the result stays within the input's range: a
    positive depth stays positive and a disparity never goes below zero (bicubic overshoots)."""
    maps = maps.float()
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    shrinking = maps.shape[-2] > size[0] or maps.shape[-1] > size[1]
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear", align_corners=False,
                         antialias=shrinking)[:, 0]


def resize_array(depth: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """:func:`resize_map` for one (h, w) numpy map → (H, W) float32."""
    return resize_map(torch.from_numpy(np.ascontiguousarray(depth, dtype=np.float32))[None], size)[0].numpy()

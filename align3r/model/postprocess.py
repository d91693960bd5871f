"""Head output activations: raw (B, 4, H, W) maps -> point maps and confidences."""

from __future__ import annotations

import torch
from torch import Tensor


def activate_points(xyz: Tensor, mode: str) -> Tensor:
    """Point-map activation of raw (..., 3) values, keeping each ray's direction.

    ``exp``: ``x / max(|x|, 1e-8) · expm1(|x|)``; ``square``: ``x/|x| · |x|²``; ``linear``: ``x``.
    """
    if mode == "linear":
        return xyz
    norm = xyz.norm(dim=-1, keepdim=True)
    direction = xyz / norm.clamp(min=1e-8)
    if mode == "exp":
        return direction * torch.expm1(norm)
    if mode == "square":
        return direction * norm.square()
    raise ValueError(f"unknown depth mode {mode!r}")


def activate_confidence(logit: Tensor, mode: tuple[str, float, float]) -> Tensor:
    """Confidence from raw logits (...): ``exp``: ``vmin + min(exp(c), vmax - vmin)`` (> vmin);
    ``sigmoid``: ``vmin + (vmax - vmin) · sigmoid(c)``."""
    kind, vmin, vmax = mode
    if kind == "exp":
        return vmin + logit.exp().clamp(max=vmax - vmin)
    if kind == "sigmoid":
        return (vmax - vmin) * torch.sigmoid(logit) + vmin
    raise ValueError(f"unknown confidence mode {kind!r}")


def postprocess(raw: Tensor, depth_mode: tuple[str, float, float],
                conf_mode: tuple[str, float, float]) -> dict[str, Tensor]:
    """Raw head output (B, 4, H, W) -> ``{"pts3d": (B, H, W, 3), "conf": (B, H, W)}``.

    Channels 0..2 are the point map (network units), channel 3 the confidence logit.
    """
    channels_last = raw.permute(0, 2, 3, 1)
    return {
        "pts3d": activate_points(channels_last[..., :3], depth_mode[0]),
        "conf": activate_confidence(channels_last[..., 3], conf_mode),
    }

"""Forward-backward consistency of a pair of flows: which pixels have a trustworthy match.

A pixel ``p`` of the source image is valid when its forward target ``q = p + F_fw(p)`` lies inside
the image and the backward flow at ``q`` brings it back near ``p``: the residual
``r = F_fw(p) + F_bw(q)`` is small.

**Quirk kept for parity.** The official code (MonST3R's ``OccMask``, threshold 3 px) does not take
the norm of ``r``: it sums the two components first and thresholds ``|r_x + r_y|``. A residual
like (+4, -4) px therefore counts as consistent. ``residual="sum"`` (the default) reproduces this
bit for bit on the golden fixture; ``residual="norm"`` thresholds the Euclidean norm ``‖r‖``
instead, the usual definition.

``F_bw(q)`` at the sub-pixel target is read with bilinear ``grid_sample`` and
``align_corners=True``: our pixel ``u`` is the *centre* of column ``u`` (integer coordinates
``0..W-1``, see :mod:`align3r.geometry`), and with ``align_corners=True`` the normalised ``-1``
and ``+1`` are exactly the centres of the first and last pixels. The normalisation is computed in
the official code's operation order so that residuals sitting on the threshold round the same way.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor

from align3r.geometry import pixel_grid

Residual = Literal["sum", "norm"]


def _check_flow(name: str, flow: Tensor) -> None:
    if flow.ndim != 4 or flow.shape[1] != 2:
        raise ValueError(f"{name} must be (B, 2, H, W), got {tuple(flow.shape)}")


def flow_targets(flow: Tensor) -> Tensor:
    """Where each pixel lands: (B, 2, H, W) flow in pixels -> (B, H, W, 2) target ``(u, v)`` in pixels."""
    _check_flow("flow", flow)
    h, w = flow.shape[-2:]
    return pixel_grid(h, w, device=flow.device, dtype=flow.dtype) + flow.permute(0, 2, 3, 1)


def lands_inside(flow: Tensor) -> Tensor:
    """(B, 2, H, W) flow -> (B, H, W) bool: the target is within ``[0, W-1] x [0, H-1]``."""
    h, w = flow.shape[-2:]
    target = flow_targets(flow)
    u, v = target[..., 0], target[..., 1]
    return (u >= 0) & (u <= w - 1) & (v >= 0) & (v <= h - 1)


def sample_at(field: Tensor, target: Tensor) -> Tensor:
    """Bilinear read of a (B, C, H, W) map at (B, H, W, 2) pixel positions ``(u, v)`` -> (B, C, H, W).

    Positions outside the image read zeros (only ever used for pixels that are invalid anyway).
    """
    h, w = field.shape[-2:]
    # (x / ((W - 1) / 2)) - 1, the reference's order; max(.., 1) keeps one-pixel-wide images finite.
    half_w = max(w - 1, 1) / 2
    half_h = max(h - 1, 1) / 2
    grid = torch.stack((target[..., 0] / half_w - 1, target[..., 1] / half_h - 1), dim=-1)
    return F.grid_sample(field, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def forward_backward_residual(flow_fw: Tensor, flow_bw: Tensor) -> Tensor:
    """``F_fw(p) + F_bw(p + F_fw(p))``: (B, 2, H, W) flows in pixels -> (B, 2, H, W) residual in pixels."""
    _check_flow("flow_fw", flow_fw)
    _check_flow("flow_bw", flow_bw)
    if flow_fw.shape != flow_bw.shape:
        raise ValueError(f"flow_fw and flow_bw differ in shape: {tuple(flow_fw.shape)} vs {tuple(flow_bw.shape)}")
    return sample_at(flow_bw, flow_targets(flow_fw)) + flow_fw


def forward_backward_valid(flow_fw: Tensor, flow_bw: Tensor, *, threshold: float = 3.0,
                           residual: Residual = "sum") -> Tensor:
    """Forward-backward consistent pixels of the source image.

    Args:
        flow_fw: (B, 2, H, W) flow source -> target, pixels.
        flow_bw: (B, 2, H, W) flow target -> source, pixels.
        threshold: largest residual (pixels, exclusive) still called consistent; 3 in the reference.
        residual: ``"sum"`` for the reference's ``|r_x + r_y|``, ``"norm"`` for ``‖r‖₂``.
    Returns:
        (B, H, W) bool: target inside the image and residual below ``threshold``.
    """
    r = forward_backward_residual(flow_fw, flow_bw)
    if residual == "sum":
        size = (r[:, 0] + r[:, 1]).abs()
    elif residual == "norm":
        size = torch.linalg.vector_norm(r, dim=1)
    else:
        raise ValueError(f"residual must be 'sum' or 'norm', got {residual!r}")
    return lands_inside(flow_fw) & (size < threshold)

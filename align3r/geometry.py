"""Small, pure, batched geometry functions (torch).

Conventions used throughout the package:

- Pixel ``(u, v)``: u is the column, v the row, integers from 0 (no half-pixel offset).
- Principal point at ``(W/2, H/2)`` (the official code's convention, not ``(W-1)/2``).
- Poses are camera-to-world 4x4 matrices with OpenCV camera axes (x right, y down, z forward).
"""

from __future__ import annotations

import torch
from torch import Tensor


def pixel_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """(H, W, 2) grid of integer pixel coordinates ``(u, v)`` = (column, row)."""
    v, u = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing="ij",
    )
    return torch.stack((u, v), dim=-1)


def intrinsics_from_focal(focal: Tensor, height: int, width: int) -> Tensor:
    """Pinhole K with principal point (W/2, H/2).

    Args:
        focal: (...,) focal length in pixels (fx = fy).
    Returns:
        (..., 3, 3) intrinsics.
    """
    focal = torch.as_tensor(focal)
    k = torch.zeros(*focal.shape, 3, 3, dtype=focal.dtype if focal.is_floating_point() else torch.float32,
                    device=focal.device)
    k[..., 0, 0] = focal
    k[..., 1, 1] = focal
    k[..., 0, 2] = width / 2
    k[..., 1, 2] = height / 2
    k[..., 2, 2] = 1
    return k


def depth_to_camera_points(depth: Tensor, intrinsics: Tensor) -> Tensor:
    """Back-project z-depth maps to camera-frame points.

    Args:
        depth: (..., H, W) z-depth.
        intrinsics: (..., 3, 3) pinhole K (zero skew).
    Returns:
        (..., H, W, 3) points ``((u - cx) z / fx, (v - cy) z / fy, z)``.
    """
    h, w = depth.shape[-2:]
    uv = pixel_grid(h, w, device=depth.device, dtype=depth.dtype)
    fx = intrinsics[..., 0, 0, None, None]
    fy = intrinsics[..., 1, 1, None, None]
    cx = intrinsics[..., 0, 2, None, None]
    cy = intrinsics[..., 1, 2, None, None]
    x = (uv[..., 0] - cx) * depth / fx
    y = (uv[..., 1] - cy) * depth / fy
    return torch.stack((x, y, depth), dim=-1)


def transform_points(transform: Tensor, points: Tensor) -> Tensor:
    """Apply 4x4 (or 3x4) rigid/similarity transforms to point maps.

    Args:
        transform: (..., 4, 4) or (..., 3, 4).
        points: (..., *S, 3) with the leading ``...`` matching ``transform``'s batch dims.
    Returns:
        points transformed, same shape as ``points``.
    """
    rot = transform[..., :3, :3]
    trans = transform[..., :3, 3]
    extra = (points.dim() - 1) - (rot.dim() - 2)  # number of spatial dims S
    rot = rot.reshape(*rot.shape[:-2], *([1] * extra), 3, 3)
    trans = trans.reshape(*trans.shape[:-1], *([1] * extra), 3)
    return (rot @ points.unsqueeze(-1)).squeeze(-1) + trans


def depth_to_world_points(depth: Tensor, intrinsics: Tensor, cam2world: Tensor) -> Tensor:
    """(N, H, W) depth + (N, 3, 3) K + (N, 4, 4) cam-to-world -> (N, H, W, 3) world points."""
    return transform_points(cam2world, depth_to_camera_points(depth, intrinsics))


def invert_pose(pose: Tensor) -> Tensor:
    """Invert (..., 4, 4) rigid transforms exactly (R^T, -R^T t)."""
    rot = pose[..., :3, :3]
    trans = pose[..., :3, 3:]
    out = torch.zeros_like(pose)
    out[..., :3, :3] = rot.transpose(-1, -2)
    out[..., :3, 3:] = -rot.transpose(-1, -2) @ trans
    out[..., 3, 3] = 1
    return out

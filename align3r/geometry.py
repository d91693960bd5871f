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


def signed_log1p(x: Tensor) -> Tensor:
    """``sign(x) * log(1 + |x|)``: the translation parametrisation of the aligner (elementwise)."""
    return torch.sign(x) * torch.log1p(torch.abs(x))


def signed_expm1(x: Tensor) -> Tensor:
    """Inverse of :func:`signed_log1p`: ``sign(x) * (exp(|x|) - 1)`` (elementwise)."""
    return torch.sign(x) * torch.expm1(torch.abs(x))


def pose_matrix(rotation: Tensor, translation: Tensor) -> Tensor:
    """(..., 3, 3) rotation + (..., 3) translation -> (..., 4, 4) homogeneous transform."""
    out = torch.zeros(*rotation.shape[:-2], 4, 4, dtype=rotation.dtype, device=rotation.device)
    out[..., :3, :3] = rotation
    out[..., :3, 3] = translation
    out[..., 3, 3] = 1
    return out


def estimate_focal_weiszfeld(pts3d: Tensor, iterations: int = 10, max_pixels: int = 1 << 22) -> Tensor:
    """Focal length that best explains camera-frame point maps with the principal point at (W/2, H/2).

    Minimises ``sum_p |pixel_p - pp - f * (x_p, y_p) / z_p|`` over ``f`` by iteratively reweighted
    least squares (Weiszfeld), starting from the L2 closed form. Points with ``z = 0`` contribute
    nothing (their ray is treated as the optical axis).

    Args:
        pts3d: (B, H, W, 3) points in each camera's own frame.
        iterations: IRLS steps after the closed-form start.
        max_pixels: maps are processed in batches of at most this many pixels (bounds temporaries).
    Returns:
        (B,) focal lengths in pixels.
    """
    if pts3d.dim() != 4 or pts3d.shape[-1] != 3:
        raise ValueError(f"pts3d must be (B, H, W, 3), got {tuple(pts3d.shape)}")
    b, h, w, _ = pts3d.shape
    uv = pixel_grid(h, w, device=pts3d.device, dtype=pts3d.dtype).reshape(-1, 2)
    cu, cv = uv[:, 0] - w / 2, uv[:, 1] - h / 2  # (P,) centred pixel coordinates
    focals = []
    chunk = max(1, max_pixels // (h * w))
    for start in range(0, b, chunk):
        pts = pts3d[start:start + chunk].reshape(-1, h * w, 3)
        # x/z and y/z as separate planes: reductions over a size-2 axis are slow on CPU
        rx = (pts[..., 0] / pts[..., 2]).nan_to_num(posinf=0, neginf=0)
        ry = (pts[..., 1] / pts[..., 2]).nan_to_num(posinf=0, neginf=0)
        dot_ray_pix = rx * cu + ry * cv
        dot_ray_ray = rx * rx + ry * ry
        focal = dot_ray_pix.mean(1) / dot_ray_ray.mean(1)
        for _ in range(iterations):
            f = focal[:, None]
            du, dv = cu - f * rx, cv - f * ry
            weight = (du * du + dv * dv).sqrt_().clip_(min=1e-8).reciprocal_()
            focal = (weight * dot_ray_pix).mean(1) / (weight * dot_ray_ray).mean(1)
        focals.append(focal)
    return torch.cat(focals) if focals else pts3d.new_zeros(0)


def ego_flow(depth_src: Tensor, rot_src: Tensor, trans_src: Tensor, rot_dst: Tensor, trans_dst: Tensor,
             k_src: Tensor, k_dst: Tensor, eps: float = 1e-6) -> Tensor:
    """Optical flow that camera motion alone induces on a static scene.

    A pixel ``p = (u, v)`` of the source frame with depth ``d`` lands at
    ``K_dst (R_rel K_src^-1 p~ + t_rel / (d + eps))``, dehomogenised with ``+ eps`` on the third
    coordinate (the official MonST3R formula, eps included), where ``R_rel = R_dst^T R_src`` and
    ``t_rel = R_dst^T (t_src - t_dst)`` map source-camera to destination-camera coordinates.

    Args:
        depth_src: (B, H, W) z-depth of the source frames.
        rot_src, rot_dst: (B, 3, 3) camera-to-world rotations.
        trans_src, trans_dst: (B, 3) camera-to-world translations (camera centres).
        k_src, k_dst: (B, 3, 3) intrinsics.
    Returns:
        (B, 2, H, W) flow ``(du, dv)`` in pixels from source to destination.
    """
    b, h, w = depth_src.shape
    uv = pixel_grid(h, w, device=depth_src.device, dtype=depth_src.dtype).reshape(-1, 2).T  # (2, HW)
    coords = torch.cat((uv, uv.new_ones(1, h * w)))  # (3, HW)
    rot_rel = rot_dst.transpose(-1, -2) @ rot_src
    trans_rel = (rot_dst.transpose(-1, -2) @ (trans_src - trans_dst).unsqueeze(-1))  # (B, 3, 1)
    homography = k_dst @ rot_rel @ torch.linalg.inv(k_src)
    disparity = 1 / (depth_src.reshape(b, 1, h * w) + eps)
    target = homography @ coords + disparity * (k_dst @ trans_rel)  # (B, 3, HW)
    flow = target[:, :2] / (target[:, 2:] + eps) - uv
    return flow.reshape(b, 2, h, w)


def map_intrinsics(intrinsics: Tensor, scale_xy: tuple[float, float], offset_xy: tuple[float, float]) -> Tensor:
    """Intrinsics after an image resize + crop ``x_new = scale · x_old + offset``.

    The map acts on continuous pixel-corner coordinates (pixel i spans [i, i+1)), while our K
    puts pixel *centres* on integers, hence ``c' = (c + 0.5) · s + b − 0.5``; focal and skew scale.

    Args:
        intrinsics: (..., 3, 3) pinhole K in the old image.
        scale_xy, offset_xy: the map per axis.
    Returns:
        (..., 3, 3) K in the new image (same dtype).
    """
    if intrinsics.shape[-2:] != (3, 3):
        raise ValueError(f"intrinsics must be (..., 3, 3), got {tuple(intrinsics.shape)}")
    (sx, sy), (bx, by) = scale_xy, offset_xy
    out = intrinsics.clone()
    out[..., 0, 0] = intrinsics[..., 0, 0] * sx
    out[..., 0, 1] = intrinsics[..., 0, 1] * sx
    out[..., 1, 1] = intrinsics[..., 1, 1] * sy
    out[..., 0, 2] = (intrinsics[..., 0, 2] + 0.5) * sx + bx - 0.5
    out[..., 1, 2] = (intrinsics[..., 1, 2] + 0.5) * sy + by - 0.5
    return out

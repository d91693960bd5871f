"""A small software point renderer: project, splat, z-buffer. No OpenGL, no display.

Used by ``align3r view --screenshot``. Everything is vectorised in torch: the z-buffer is a
``scatter_reduce(amin)`` over pixel indices, then each pixel takes the colour of a point at that
minimum depth.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ViewCamera:
    """A pinhole camera to render from.

    - ``intrinsics``: (3, 3) K in pixels, integer-pixel-grid convention (like ours).
    - ``world2cam``: (4, 4) world-to-camera, OpenCV axes (x right, y down, z forward).
    - ``size_hw``: (H, W) of the rendered image.
    """

    intrinsics: np.ndarray
    world2cam: np.ndarray
    size_hw: tuple[int, int]


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> np.ndarray:
    """(4, 4) world-to-camera (OpenCV axes) of a camera at ``eye`` looking at ``target``.

    ``up`` is the world direction that should point up in the image (it need not be exactly
    perpendicular to the viewing direction).
    """
    eye, target, up = (np.asarray(a, np.float64) for a in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(-up, forward)  # OpenCV: x = y_down x z_forward
    if np.linalg.norm(right) < 1e-9:  # looking along `up`: any perpendicular will do
        right = np.cross(forward, [1.0, 0.0, 0.0] if abs(forward[0]) < 0.9 else [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    cam2world = np.eye(4)
    cam2world[:3, :3] = np.stack([right, down, forward], axis=1)
    cam2world[:3, 3] = eye
    return np.linalg.inv(cam2world)


def intrinsics_for_fov(size_hw: tuple[int, int], vertical_fov_deg: float) -> np.ndarray:
    """K with square pixels, principal point (W/2, H/2) and the given vertical field of view."""
    h, w = size_hw
    f = (h / 2) / math.tan(math.radians(vertical_fov_deg) / 2)
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)


def splat(points: np.ndarray, colors: np.ndarray, camera: ViewCamera, *, radius: int = 1,
          background=(255, 255, 255), near: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """Render coloured points as (2r+1)^2-pixel squares with a z-buffer.

    Args:
        points: (P, 3) world coordinates; colors: (P, 3) uint8.
        camera: the viewpoint; radius: splat half-size in pixels (0 = single pixels).
        background: RGB of empty pixels; near: points closer than this (or behind) are skipped.
    Returns:
        image (H, W, 3) uint8 and depth buffer (H, W) float32 (inf where empty).
    """
    h, w = camera.size_hw
    pts = torch.as_tensor(np.asarray(points, np.float32))
    cols = torch.as_tensor(np.asarray(colors, np.uint8))
    w2c = torch.as_tensor(np.asarray(camera.world2cam, np.float32))
    k = torch.as_tensor(np.asarray(camera.intrinsics, np.float32))
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    z = cam[:, 2]
    front = (z > near) & torch.isfinite(cam).all(1)
    cam, z, cols = cam[front], z[front], cols[front]
    u = torch.round(k[0, 0] * cam[:, 0] / z + k[0, 2]).long()
    v = torch.round(k[1, 1] * cam[:, 1] / z + k[1, 2]).long()
    offsets = torch.arange(-radius, radius + 1)
    du, dv = torch.meshgrid(offsets, offsets, indexing="xy")
    uu = (u[:, None] + du.reshape(1, -1)).reshape(-1)
    vv = (v[:, None] + dv.reshape(1, -1)).reshape(-1)
    zz = z.repeat_interleave(du.numel())
    src = torch.arange(z.numel()).repeat_interleave(du.numel())
    inside = (uu >= 0) & (uu < w) & (vv >= 0) & (vv < h)
    flat, zz, src = (vv * w + uu)[inside], zz[inside], src[inside]
    zbuf = torch.full((h * w,), float("inf"))
    zbuf.scatter_reduce_(0, flat, zz, reduce="amin")
    winner = zz == zbuf[flat]  # ties (equal depth) resolve to any one of them
    image = torch.tensor(background, dtype=torch.uint8).repeat(h * w, 1)
    image[flat[winner]] = cols[src[winner]]
    return image.reshape(h, w, 3).numpy(), zbuf.reshape(h, w).numpy()


def segment_points(segments: np.ndarray, samples: int = 48) -> np.ndarray:
    """Sample (..., 2, 3) line segments into (..., samples, 3) points (to draw lines by splatting)."""
    t = np.linspace(0.0, 1.0, samples)[:, None]
    a, b = segments[..., 0:1, :], segments[..., 1:2, :]
    return a + t * (b - a)

"""Synthetic scenes with exact geometry, for tests and benchmarks of the alignment.

A camera moves along a closed loop inside a box-shaped room, looking at the walls. Depth is
ray-cast exactly; pair predictions are the exact point maps multiplied by a random per-edge
scale, with relative noise, optional outliers and network-like confidences; the optical flow is
the exact flow of the static room. Everything is seeded per edge, so predicting a graph in
pieces gives the same values as predicting it at once.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import torch
from torch import Tensor

from align3r.align.types import PairPredictions
from align3r.flow.types import PairFlow
from align3r.geometry import (
    depth_to_camera_points,
    ego_flow,
    intrinsics_from_focal,
    invert_pose,
    pixel_grid,
    pose_matrix,
    transform_points,
)

ROOM_LOW = (-6.0, -2.5, -6.0)
ROOM_HIGH = (6.0, 2.5, 6.0)


@dataclass
class SyntheticScene:
    """Ground truth of a synthetic video.

    - ``cam2world``: (N, 4, 4) float32 poses; ``depth``: (N, H, W) float32 z-depth (metres);
    - ``focal``: pixels, principal point (W/2, H/2).
    """

    cam2world: Tensor
    depth: Tensor
    focal: float

    @property
    def num_frames(self) -> int:
        return int(self.depth.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        return int(self.depth.shape[1]), int(self.depth.shape[2])

    def intrinsics(self) -> Tensor:
        """(N, 3, 3)."""
        h, w = self.image_size
        return intrinsics_from_focal(torch.full((self.num_frames,), self.focal), h, w)

    def predictions(self, edges: Tensor, *, noise: float = 0.01, log_scale_range: float = 0.5,
                    outlier_fraction: float = 0.0, seed: int = 0, device=None) -> PairPredictions:
        """Pair predictions for ``edges`` (E, 2): exact point maps in camera i, times a per-edge
        scale exp(U(-r, r)), with relative Gaussian noise; outliers get 15 % noise and a low
        confidence; confidence = 1 + exp(1.2 + 0.6 n) elsewhere (as the fixture's generator)."""
        edges = torch.as_tensor(edges, dtype=torch.int64).reshape(-1, 2)
        h, w = self.image_size
        e = len(edges)
        cam = depth_to_camera_points(self.depth, self.intrinsics())  # (N, H, W, 3)
        out = {"pts3d_i": torch.empty(e, h, w, 3), "pts3d_j": torch.empty(e, h, w, 3),
               "conf_i": torch.empty(e, h, w), "conf_j": torch.empty(e, h, w)}
        for k, (i, j) in enumerate(edges.tolist()):  # data generation, not the optimizer
            gen = torch.Generator().manual_seed(zlib.crc32(f"{seed}:{i}:{j}".encode()))
            scale = math.exp((torch.rand((), generator=gen).item() * 2 - 1) * log_scale_range)
            j_in_i = transform_points(invert_pose(self.cam2world[i]) @ self.cam2world[j], cam[j])
            for side, pts in (("i", cam[i]), ("j", j_in_i)):
                n = torch.randn(h, w, 3, generator=gen)
                conf = 1 + torch.exp(1.2 + 0.6 * torch.randn(h, w, generator=gen))
                rel = noise * n
                if outlier_fraction > 0:
                    bad = torch.rand(h, w, generator=gen) < outlier_fraction
                    rel = torch.where(bad[..., None], 0.15 * n, rel)
                    conf = torch.where(bad, 1.05 + 0.45 * torch.rand(h, w, generator=gen), conf)
                out[f"pts3d_{side}"][k] = pts * scale * (1 + rel)
                out[f"conf_{side}"][k] = conf
        return PairPredictions(edges=edges.to(device), num_frames=self.num_frames,
                               **{name: v.to(device) for name, v in out.items()})

    def flow(self, edges: Tensor, device=None) -> PairFlow:
        """Exact optical flow of the static room for ``edges`` (E, 2), both directions."""
        edges = torch.as_tensor(edges, dtype=torch.int64).reshape(-1, 2)
        i, j = edges[:, 0], edges[:, 1]
        rot, trans, k = self.cam2world[:, :3, :3], self.cam2world[:, :3, 3], self.intrinsics()
        f_ij = ego_flow(self.depth[i], rot[i], trans[i], rot[j], trans[j], k[i], k[j], eps=0.0)
        f_ji = ego_flow(self.depth[j], rot[j], trans[j], rot[i], trans[i], k[j], k[i], eps=0.0)
        h, w = self.image_size
        valid = torch.ones(len(edges), h, w, dtype=torch.bool)
        return PairFlow(edges=edges.to(device), flow_ij=f_ij.to(device), flow_ji=f_ji.to(device),
                        valid_ij=valid.to(device), valid_ji=valid.to(device))


def _look_yaw(yaw: Tensor, pitch: float = 0.05) -> Tensor:
    """(N,) yaw -> (N, 3, 3) camera-to-world rotations (OpenCV camera: x right, y down, z forward)."""
    cy, sy = torch.cos(yaw), torch.sin(yaw)
    zero, one = torch.zeros_like(yaw), torch.ones_like(yaw)
    r_yaw = torch.stack((cy, zero, sy, zero, one, zero, -sy, zero, cy), -1).reshape(-1, 3, 3)
    cp, sp = math.cos(pitch), math.sin(pitch)
    r_pitch = torch.tensor([[1, 0, 0], [0, cp, -sp], [0, sp, cp]], dtype=yaw.dtype)
    return r_yaw @ r_pitch


def synthetic_scene(num_frames: int, height: int, width: int, *, focal: float | None = None, loops: float = 0.25,
                    radius: float = 2.0, seed: int = 0) -> SyntheticScene:
    """A camera travelling ``loops`` of a circle of ``radius`` metres inside a 12 x 5 x 12 m room,
    turning as it goes, with a little vertical bobbing; ray-cast depth of the walls.

    Args:
        focal: pixels (default 0.9 * max(H, W)).
    """
    focal = 0.9 * max(height, width) if focal is None else focal
    gen = torch.Generator().manual_seed(seed)
    phase = float(torch.rand((), generator=gen)) * 2 * math.pi
    angle = phase + torch.linspace(0, 2 * math.pi * loops, num_frames, dtype=torch.float64)
    centres = torch.stack((radius * torch.cos(angle), 0.3 * torch.sin(3 * angle), radius * torch.sin(angle)), -1)
    rot = _look_yaw(angle * 0.8 + 0.3)
    cam2world = pose_matrix(rot, centres)
    # ray-cast the box: z-depth t such that centre + t * R @ (x, y, 1) hits the nearest wall
    uv = pixel_grid(height, width, dtype=torch.float64)
    rays_cam = torch.cat(((uv - torch.tensor([width / 2, height / 2], dtype=torch.float64)) / focal,
                          torch.ones(height, width, 1, dtype=torch.float64)), -1)  # (H, W, 3)
    rays = torch.einsum("nab,hwb->nhwa", rot, rays_cam)
    low = torch.tensor(ROOM_LOW, dtype=torch.float64)
    high = torch.tensor(ROOM_HIGH, dtype=torch.float64)
    o = centres[:, None, None, :]
    wall = torch.where(rays > 0, high, low)
    t = ((wall - o) / rays).nan_to_num(posinf=float("inf"), neginf=float("inf"))
    t = torch.where(t > 0, t, torch.full_like(t, float("inf"))).amin(-1)
    return SyntheticScene(cam2world=cam2world.float(), depth=t.float(), focal=float(focal))

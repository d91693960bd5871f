"""Fixtures for the export / viewer tests: synthetic reconstructions with exact geometry.

A camera moves along a gentle arc in front of a wall (the world plane z = ``wall_z``); depth is
the exact ray-plane intersection, so every point of every frame lies on the wall. The RGB frames
are the real DAVIS "lady-running" frames, resized.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from align3r.align.types import Reconstruction
from align3r.geometry import depth_to_camera_points, intrinsics_from_focal


def rotation_y(angle: float) -> torch.Tensor:
    c, s = math.cos(angle), math.sin(angle)
    return torch.tensor([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def wall_reconstruction(n: int = 6, h: int = 48, w: int = 64, focal: float = 50.0, wall_z: float = 5.0,
                        seed: int = 0, turn: float = 0.05) -> Reconstruction:
    """N frames looking at the plane z = wall_z (turning by ``turn`` radians per frame about y);
    a moving square is flagged dynamic."""
    gen = torch.Generator().manual_seed(seed)
    cam2world = torch.eye(4).repeat(n, 1, 1)
    for i in range(n):
        cam2world[i, :3, :3] = rotation_y(turn * i)
        cam2world[i, :3, 3] = torch.tensor([4 * turn * i, -turn * i, 2 * turn * i])
    focals = torch.full((n,), focal) + torch.arange(n) * 0.5  # per-frame focal, as the aligner gives
    k = intrinsics_from_focal(focals, h, w)
    rays = depth_to_camera_points(torch.ones(n, h, w), k)  # (N, H, W, 3) with z = 1
    dirs_world = torch.einsum("nij,nhwj->nhwi", cam2world[:, :3, :3], rays)
    depth = (wall_z - cam2world[:, None, None, 2, 3]) / dirs_world[..., 2]
    conf = 1 + torch.rand(n, h, w, generator=gen) * 9
    mask = torch.zeros(n, h, w, dtype=torch.bool)
    for i in range(n):
        mask[i, 10:20, 5 + 5 * i: 15 + 5 * i] = True
    return Reconstruction(depth=depth.float(), cam2world=cam2world, intrinsics=k.float(), conf=conf,
                          dynamic_mask=mask, loss_history=[1.5, 1.0, 0.75], frame_ids=torch.arange(n) * 2,
                          loss_terms={"alignment": [1.5, 0.9, 0.7], "flow": [0.1 / 3]})


def rgb_frames(n: int, h: int, w: int, data_dir) -> np.ndarray:
    """(N, H, W, 3) uint8: the first N real DAVIS "lady-running" frames, resized (area)."""
    import cv2

    files = sorted((data_dir / "davis_lady_running" / "demo_data" / "lady-running").glob("*.jpg"))[:n]
    if len(files) != n:
        pytest.fail(f"expected {n} DAVIS frames under {data_dir}, found {len(files)}")
    return np.stack([cv2.resize(cv2.imread(str(f))[..., ::-1], (w, h), interpolation=cv2.INTER_AREA)
                     for f in files])


N, H, W = 6, 48, 64
WALL_Z = 5.0


@pytest.fixture
def wall() -> Reconstruction:
    return wall_reconstruction(N, H, W, wall_z=WALL_Z)


@pytest.fixture
def rgb(data_dir) -> np.ndarray:
    return rgb_frames(N, H, W, data_dir)


@pytest.fixture
def names() -> list[str]:
    return [f"{i:05d}.jpg" for i in range(N)]


@pytest.fixture
def timestamps() -> list[float]:
    return [i / 30 for i in range(N)]


@pytest.fixture(scope="session")
def written(tmp_path_factory, data_dir):
    """One directory written with every format and an original-resolution mapping, shared by all
    read-only tests (never modify it): (path, reconstruction, rgb, original)."""
    from align3r.export import OriginalResolution, write_reconstruction

    recon = wall_reconstruction(N, H, W, wall_z=WALL_Z)
    frames = rgb_frames(N, H, W, data_dir)
    # Original 136x96 frames, resized by 1/2 to 68x48, cropped 2 px on the left and right.
    original = OriginalResolution.from_resize_crop((96, 136), (48, 68), (2, 0, 66, 48))
    out = tmp_path_factory.mktemp("written") / "recon"
    write_reconstruction(out, recon, rgb=frames, names=[f"{i:05d}.jpg" for i in range(N)],
                         timestamps=[i / 30 for i in range(N)], original=original)
    return out, recon, frames, original


@pytest.fixture
def make_wall():
    """The :func:`wall_reconstruction` factory (for other sizes / seeds)."""
    return wall_reconstruction

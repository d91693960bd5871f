"""What the viewers show, computed once from a saved reconstruction.

The 4-D point cloud is one coloured point set per frame (confident pixels, dynamic ones
included) plus the fused static scene; cameras are drawn as frusta coloured along the timeline.
Shared by the interactive viser viewer and the software-rendered screenshot.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh

from align3r.export import layout
from align3r.export.pointcloud import (
    PointSet,
    camera_colors,
    default_frustum_depth,
    default_voxel_size,
    frustum_segments,
    iter_frame_points,
    voxel_downsample,
)
from align3r.export.reader import SavedReconstruction

DEFAULT_MIN_CONF = 3.0


@dataclass
class ViewerContent:
    """Scene content in world coordinates (OpenCV axes).

    - ``frames``: N point sets (each at most ``max_points_per_frame`` points).
    - ``static``: the fused static scene (dynamic pixels excluded, voxel-averaged).
    - ``cam2world`` (N, 4, 4), ``intrinsics`` (N, 3, 3) at network ``size_hw`` (H, W).
    - ``frusta``: (N, 8, 2, 3) wireframe segments; ``camera_colors``: (N, 3) uint8.
    - ``rgb``: (N, H, W, 3) uint8 (frustum thumbnails); ``stems``: N frame names.
    - ``up``: (3,) unit world vector that is "up" for the cameras on average.
    """

    frames: list[PointSet]
    static: PointSet
    cam2world: np.ndarray
    intrinsics: np.ndarray
    size_hw: tuple[int, int]
    frusta: np.ndarray
    frustum_depth: float
    camera_colors: np.ndarray
    rgb: np.ndarray
    stems: list[str]
    up: np.ndarray

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def _subsample(points: PointSet, max_points: int, rng: np.random.Generator) -> PointSet:
    if len(points) <= max_points:
        return points
    keep = np.sort(rng.choice(len(points), max_points, replace=False))
    return PointSet(points.points[keep], points.colors[keep])


def _exported_static_scene(saved: SavedReconstruction, min_conf: float) -> PointSet | None:
    """The exported ``static_scene.ply`` if it was made with this threshold (saves the fusion)."""
    info = saved.manifest.get("outputs", {}).get("ply", {})
    path = saved.file(layout.STATIC_PLY)
    if info.get("min_conf") != min_conf or not path.is_file():
        return None
    cloud = trimesh.load(path)
    if not isinstance(cloud, trimesh.PointCloud) or len(cloud.vertices) != info.get("static_points"):
        return None  # empty or modified since the export: recompute
    return PointSet(np.asarray(cloud.vertices, np.float32), np.asarray(cloud.colors)[:, :3].astype(np.uint8))


def build_content(saved: SavedReconstruction, *, min_conf: float | None = None,
                  max_points_per_frame: int = 100_000, voxel_size: float | None = None) -> ViewerContent:
    """Compute the viewer's content.

    Args:
        saved: a loaded reconstruction directory.
        min_conf: raw-confidence threshold; default: the one its point clouds were exported with
            (``manifest.outputs.ply.min_conf``), else 3.0.
        max_points_per_frame: random subsample per frame (fixed seed) to keep the viewer fluid.
        voxel_size: voxel of the static scene; default as in the export.
    """
    if min_conf is None:
        min_conf = float(saved.manifest.get("outputs", {}).get("ply", {}).get("min_conf", DEFAULT_MIN_CONF))
    rec = saved.reconstruction
    depth, conf = rec.depth.numpy(), rec.conf.numpy()
    k, pose, mask = rec.intrinsics.numpy(), rec.cam2world.numpy(), rec.dynamic_mask.numpy()
    rng = np.random.default_rng(0)
    frames: list[PointSet] = []
    saved_static = _exported_static_scene(saved, min_conf) if voxel_size is None else None

    def keep_frames_yield_static():
        # World points are computed once for the per-frame clouds and the static fusion.
        for p in iter_frame_points(depth, k, pose, conf, saved.rgb, min_conf=min_conf, dynamic_mask=mask):
            frames.append(_subsample(PointSet(p.points, p.colors), max_points_per_frame, rng))
            yield p.static_part()

    if saved_static is not None:
        for _ in keep_frames_yield_static():
            pass
        static = saved_static
    else:
        voxel = voxel_size if voxel_size is not None else default_voxel_size(depth, k)
        static = voxel_downsample(keep_frames_yield_static(), voxel)
    frustum_depth = default_frustum_depth(depth)
    size_hw = (int(depth.shape[1]), int(depth.shape[2]))
    up = -pose[:, :3, 1].mean(0)  # OpenCV y points down in the image
    up = up / np.linalg.norm(up) if np.linalg.norm(up) > 1e-9 else np.array([0.0, -1.0, 0.0])
    return ViewerContent(frames=frames, static=static, cam2world=pose, intrinsics=k, size_hw=size_hw,
                         frusta=frustum_segments(pose, k, size_hw, frustum_depth), frustum_depth=frustum_depth,
                         camera_colors=camera_colors(len(frames)), rgb=saved.rgb, stems=saved.stems, up=up)

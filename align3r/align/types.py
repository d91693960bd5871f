"""Typed values that enter and leave the global alignment.

``PairPredictions`` is what batched inference produces for every edge of a pair graph;
``Reconstruction`` is what the aligner returns. Both hold torch tensors on one device.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import torch
from torch import Tensor


@dataclass
class PairPredictions:
    """Network point maps for every directed edge ``(i, j)`` of a pair graph.

    Shapes (E edges, all frames at one network resolution H x W):

    - ``edges``: (E, 2) int64, frame indices ``(i, j)`` into the frame sequence.
    - ``pts3d_i``: (E, H, W, 3) float32, frame i's points in camera i's frame (the
      network's ``res1["pts3d"]``).
    - ``pts3d_j``: (E, H, W, 3) float32, frame j's points, also in camera i's frame
      (``res2["pts3d_in_other_view"]``).
    - ``conf_i``, ``conf_j``: (E, H, W) float32, raw confidences (> 1, ``1 + exp(c)``).
    - ``num_frames``: N, the number of frames the indices refer to.

    Units are the network's (up to one scale per edge).
    """

    edges: Tensor
    pts3d_i: Tensor
    pts3d_j: Tensor
    conf_i: Tensor
    conf_j: Tensor
    num_frames: int

    def __post_init__(self) -> None:
        e = self.edges.shape[0]
        if self.edges.shape != (e, 2):
            raise ValueError(f"edges must be (E, 2), got {tuple(self.edges.shape)}")
        h, w = self.pts3d_i.shape[1:3]
        for name, shape in (
            ("pts3d_i", (e, h, w, 3)),
            ("pts3d_j", (e, h, w, 3)),
            ("conf_i", (e, h, w)),
            ("conf_j", (e, h, w)),
        ):
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"{name} must be {shape} (E, H, W[, 3]), got {got}")
        if e and int(self.edges.max()) >= self.num_frames:
            raise ValueError(f"edge index {int(self.edges.max())} >= num_frames {self.num_frames}")

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every point map."""
        return int(self.pts3d_i.shape[1]), int(self.pts3d_i.shape[2])

    def to(self, device: torch.device | str) -> PairPredictions:
        return PairPredictions(
            **{f.name: (v.to(device) if isinstance(v := getattr(self, f.name), Tensor) else v)
               for f in fields(self)}
        )


@dataclass
class Reconstruction:
    """The result of global alignment: a consistent 4-D reconstruction of N frames.

    - ``depth``: (N, H, W) float32, z-depth along each camera's optical axis, in the
      reconstruction's units (up to one global scale).
    - ``cam2world``: (N, 4, 4) float32, camera-to-world poses (OpenCV axes: x right, y down,
      z forward).
    - ``intrinsics``: (N, 3, 3) float32, pinhole K in pixels at network resolution, principal
      point at (W/2, H/2).
    - ``conf``: (N, H, W) float32, per-pixel confidence (max raw network confidence over the
      edges that show the frame; > 1).
    - ``dynamic_mask``: (N, H, W) bool, True on moving objects.
    - ``loss_history``: per-iteration total loss of the optimisation (may be empty).
    - ``frame_ids``: (N,) int64 indices into the input frame sequence.
    - ``loss_terms``: per-iteration values of each unweighted loss term by name
      (``alignment``, ``temporal``, ``flow``; a term's list starts when it switches on).
    """

    depth: Tensor
    cam2world: Tensor
    intrinsics: Tensor
    conf: Tensor
    dynamic_mask: Tensor
    loss_history: list[float] = field(default_factory=list)
    frame_ids: Tensor | None = None
    loss_terms: dict[str, list[float]] = field(default_factory=dict)

    @property
    def num_frames(self) -> int:
        return int(self.depth.shape[0])

    @property
    def focals(self) -> Tensor:
        """(N,) focal lengths in pixels (fx)."""
        return self.intrinsics[:, 0, 0]

    def world_points(self) -> Tensor:
        """(N, H, W, 3) world coordinates of every pixel (integer pixel grid)."""
        from align3r.geometry import depth_to_world_points

        return depth_to_world_points(self.depth, self.intrinsics, self.cam2world)

    def scaled(self, factor: float) -> Reconstruction:
        """The same reconstruction in units ``factor`` times larger: depth and camera positions
        multiplied (so every point, and every export, scales with them); rotations, intrinsics,
        confidence and masks unchanged."""
        if not (factor > 0 and factor < float("inf")):
            raise ValueError(f"scale factor must be positive and finite, got {factor}")
        cam2world = self.cam2world.clone()
        cam2world[:, :3, 3] *= factor
        return replace(self, depth=self.depth * factor, cam2world=cam2world)

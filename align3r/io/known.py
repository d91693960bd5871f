"""What the user already knows about the frames of a run: camera poses and dynamic masks.

Read from their files (:mod:`align3r.io.poses`, :mod:`align3r.io.masks`) and matched to the
run's frames once the frames are known; the aligner takes them as ``known_poses`` and
``dynamic_mask``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from align3r.io.masks import read_masks
from align3r.io.poses import PoseFile, match_poses, read_poses
from align3r.io.view_geometry import ViewGeometry


@dataclass
class KnownInputs:
    """- ``poses``: (N, 4, 4) float64 camera-to-world in the file's units, or None.
    - ``masks``: (N, H, W) bool at network resolution, True on moving pixels, or None.
    - ``pose_file``, ``mask_files``: what was read (for the manifest)."""

    poses: np.ndarray | None = None
    masks: np.ndarray | None = None
    pose_file: PoseFile | None = None
    mask_files: list[Path] = field(default_factory=list)

    def as_tensors(self) -> dict[str, Any]:
        """``{"known_poses": (N, 4, 4) float32 | None, "dynamic_mask": (N, H, W) bool | None}``, the
        aligner's keyword arguments (``align3r.pipeline.align_views``)."""
        return {"known_poses": None if self.poses is None else torch.from_numpy(self.poses).float(),
                "dynamic_mask": None if self.masks is None else torch.from_numpy(self.masks)}

    def manifest_entries(self) -> list[dict[str, Any]]:
        """``manifest.json`` input entries: ``{"role": "poses", "format", ...}`` and one ``{"role": "mask"}`` per file."""
        from align3r.export.manifest import describe_inputs

        entries = []
        if self.pose_file is not None:
            entries += [{"role": "poses", "format": self.pose_file.format, **d}
                        for d in describe_inputs([self.pose_file.path])]
        entries += [{"role": "mask", **d} for d in describe_inputs(self.mask_files)]
        return entries


def load_known_inputs(poses: PoseFile | str | Path | None, masks: str | Path | None, *, names: list[str],
                      indices: np.ndarray, timestamps: np.ndarray | None, geometry: ViewGeometry) -> KnownInputs:
    """Poses and masks for the frames ``names`` (source ``indices``, ``timestamps`` or None), or
    an empty :class:`KnownInputs` when neither is given. Unmatched frames raise ``InputError``."""
    known = KnownInputs()
    if poses is not None:
        known.pose_file = poses if isinstance(poses, PoseFile) else read_poses(poses)
        known.poses = match_poses(known.pose_file, names, indices, timestamps)
    if masks is not None:
        known.masks, known.mask_files = read_masks(masks, names, geometry)
    return known

"""PointOdyssey raw download → processed layout.

Raw: ``<root>/<split>/<seq>/rgbs/*.jpg``, ``depths/*.png`` (uint16, metres = value / 65535 · 1000),
``anno.npz`` with ``intrinsics`` (N, 3, 3) and ``extrinsics`` (N, 4, 4) world-to-camera.
Processed: ``<out>/<split>/<seq>/<id>_*`` with ``<id>`` the last four characters of the rgb stem.
The stored pose is ``extrinsics · diag(1, -1, -1, 1)`` exactly as the reference stores it; the
dataset class inverts it on load, which yields a camera-to-world pose up to a fixed rotation of
the world frame (harmless: the loss only uses relative poses).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from align3r.data.prepare.common import (
    BLENDER_TO_OPENCV,
    RawFrame,
    RawSequence,
    check_same_length,
    sorted_files,
)
from align3r.errors import InputError


def read_depth_png(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH)
    if raw is None:
        raise InputError(f"cannot read depth {path}")
    return raw.astype(np.float32) / 65535.0 * 1000.0


def raw_sequences(raw_root: str | os.PathLike, splits: tuple[str, ...] = ("train", "val")) -> list[RawSequence]:
    raw_root = Path(raw_root)
    sequences = []
    for split in splits:
        split_dir = raw_root / split
        if not split_dir.is_dir():
            raise InputError(f"missing PointOdyssey split folder {split_dir}")
        for seq_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            sequences.append(_sequence(seq_dir, f"{split}/{seq_dir.name}"))
    return sequences


def _sequence(seq_dir: Path, name: str) -> RawSequence:
    rgbs = sorted_files(seq_dir / "rgbs", (".jpg", ".jpeg", ".png"))
    depths = sorted_files(seq_dir / "depths", (".png",))
    anno_path = seq_dir / "anno.npz"
    if not anno_path.is_file():
        raise InputError(f"missing {anno_path}")
    with np.load(anno_path) as anno:  # lazy: trajs_3d (large) is never read
        intrinsics = anno["intrinsics"].astype(np.float32)
        extrinsics = anno["extrinsics"].astype(np.float32)
    check_same_length(str(seq_dir), rgbs, depths, intrinsics)
    check_same_length(str(seq_dir), rgbs, extrinsics)

    def loader(i: int):
        def load():
            k = intrinsics[i]
            pinhole = np.array([[k[0, 0], 0, k[0, 2]], [0, k[1, 1], k[1, 2]], [0, 0, 1]], dtype=np.float64)
            pose = extrinsics[i].reshape(4, 4) @ BLENDER_TO_OPENCV
            return Image.open(rgbs[i]).convert("RGB"), read_depth_png(depths[i]), pinhole, pose
        return load

    frames = [RawFrame(frame_id=rgb.stem[-4:], load=loader(i)) for i, rgb in enumerate(rgbs)]
    return RawSequence(name=name, frames=frames)

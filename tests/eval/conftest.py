"""Fixtures shared by the evaluation tests: the real samples (the official metric outputs are in
the root conftest, shared with tests/io)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest


@pytest.fixture(scope="session")
def seven_scenes(data_dir: Path):
    """Real 7-Scenes frames: a loader ``(index) -> (depth metres float64, cam2world 4x4, colour path)``
    plus the intrinsics. Depth PNGs are uint16 millimetres, 0 = invalid; frame 33 still holds 46
    pixels of 65535 (the original release's invalid marker), which we set to 0 as well."""
    root = data_dir / "seven_scenes_redkitchen_tsdf" / "data"
    k = np.loadtxt(root / "camera-intrinsics.txt")

    def frame(index: int):
        stem = root / f"frame-{index:06d}"
        raw = cv2.imread(f"{stem}.depth.png", cv2.IMREAD_UNCHANGED)
        raw[raw == 65535] = 0
        return raw.astype(np.float64) / 1000.0, np.loadtxt(f"{stem}.pose.txt"), Path(f"{stem}.color.jpg")

    return frame, k, root

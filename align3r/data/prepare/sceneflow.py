"""SceneFlow (FlyingThings3D, Driving, Monkaa) raw download → processed layout.

Shared raw format: ``frames_finalpass/<...>/<left|right>/NNNN.png``, the same path under
``disparity/`` with ``.pfm`` files, and ``camera_data/<...>/camera_data.txt`` with blocks
``Frame n`` / ``L <16 numbers>`` / ``R <16 numbers>`` (row-major 4x4 camera-to-world, Blender
axes). Depth = fx / disparity (the baseline is taken as 1, as the reference does), NaN or
non-positive disparity → 1e-3 (masked). Fixed K with the principal point (479.5, 269.5).

- FlyingThings3D: ``frames_finalpass/{TRAIN,TEST}/{A,B,C}/<seq>/<cam>``, fx = 1050;
  output ``{TRAIN,TEST}/{A,B,C}/<seq>/<cam>`` (see :mod:`.flyingthings3d`).
- Driving: ``frames_finalpass/{15mm,35mm}_focallength/<direction>/<speed>/<cam>``,
  fx = 450 (15 mm) or 1050 (35 mm); output the same four levels.
- Monkaa: ``frames_finalpass/<scene>/<cam>``, fx = 1050; output ``<scene>/<cam>``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from align3r.data.io import read_pfm
from align3r.data.prepare.common import (
    BLENDER_TO_OPENCV,
    RawFrame,
    RawSequence,
    check_same_length,
    depth_from_disparity,
    pinhole,
    sorted_files,
)
from align3r.errors import InputError

PRINCIPAL_POINT = (479.5, 269.5)
CAMERAS = ("left", "right")


def read_camera_data(path: str | os.PathLike) -> dict[int, dict[str, np.ndarray]]:
    """``camera_data.txt`` → {frame number: {"left": (4, 4), "right": (4, 4)}} (as stored: Blender axes)."""
    poses: dict[int, dict[str, np.ndarray]] = {}
    frame = None
    with open(path) as f:
        for line in f:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "Frame":
                frame = int(fields[1])
                poses[frame] = {}
            elif fields[0] in ("L", "R"):
                if frame is None or len(fields) != 17:
                    raise InputError(f"{path}: malformed line {line.strip()[:40]!r}")
                poses[frame]["left" if fields[0] == "L" else "right"] = np.array(fields[1:], np.float32).reshape(4, 4)
    if not poses:
        raise InputError(f"{path}: no 'Frame n' blocks found")
    return poses


def camera_sequence(frames_dir: Path, disparity_dir: Path, camera_file: Path, name: str, fx: float) -> RawSequence:
    """One camera folder (``left`` or ``right``) of a SceneFlow sequence."""
    cam = frames_dir.name
    if cam not in CAMERAS:
        raise InputError(f"{frames_dir}: expected a 'left' or 'right' folder")
    images = sorted_files(frames_dir, (".png", ".webp", ".jpg"))
    disparities = sorted_files(disparity_dir, (".pfm",))
    check_same_length(str(frames_dir), images, disparities)
    if not camera_file.is_file():
        raise InputError(f"missing camera data {camera_file}")
    poses = read_camera_data(camera_file)
    k = pinhole(fx, fx, *PRINCIPAL_POINT)

    def loader(image_path: Path, disparity_path: Path):
        number = int(image_path.stem)
        if number not in poses or cam not in poses[number]:
            raise InputError(f"{camera_file} has no {cam} pose for frame {number}")
        pose = poses[number][cam] @ BLENDER_TO_OPENCV

        def load():
            disparity = read_pfm(disparity_path)
            if disparity.ndim != 2:
                raise InputError(f"{disparity_path}: expected a one-channel disparity map")
            return Image.open(image_path).convert("RGB"), depth_from_disparity(disparity, fx), k, pose
        return load

    frames = [RawFrame(frame_id=img.stem, load=loader(img, disp)) for img, disp in zip(images, disparities)]
    return RawSequence(name=name, frames=frames)


def _camera_folders(raw_root: Path, depth: int) -> list[Path]:
    """``frames_finalpass`` sub-folders exactly ``depth`` levels down (the camera folders)."""
    base = raw_root / "frames_finalpass"
    if not base.is_dir():
        raise InputError(f"missing {base}; point the script at the dataset root holding frames_finalpass/")
    return sorted(p for p in base.glob("/".join(["*"] * depth)) if p.is_dir())


def sequences_under(raw_root: str | os.PathLike, depth: int, focal_of) -> list[RawSequence]:
    """All camera folders ``depth`` levels under ``frames_finalpass``; ``focal_of(rel_path) -> fx``."""
    raw_root = Path(raw_root)
    sequences = []
    for frames_dir in _camera_folders(raw_root, depth):
        rel = frames_dir.relative_to(raw_root / "frames_finalpass")
        sequences.append(camera_sequence(
            frames_dir,
            raw_root / "disparity" / rel,
            raw_root / "camera_data" / rel.parent / "camera_data.txt",
            name=rel.as_posix(),
            fx=focal_of(rel),
        ))
    return sequences


def driving_focal(rel: Path) -> float:
    lens = rel.parts[0]
    if lens.startswith("15mm"):
        return 450.0
    if lens.startswith("35mm"):
        return 1050.0
    raise InputError(f"Driving folder {rel} is neither 15mm nor 35mm")


def driving_sequences(raw_root: str | os.PathLike) -> list[RawSequence]:
    return sequences_under(raw_root, 4, driving_focal)


def monkaa_sequences(raw_root: str | os.PathLike) -> list[RawSequence]:
    return sequences_under(raw_root, 2, lambda rel: 1050.0)

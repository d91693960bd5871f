"""Spring raw download → processed layout.

Raw: ``<root>/<split>/<seq>/frame_left/*.png``, ``disp1_left/*.dsp5`` (HDF5, dataset
``disparity``, at twice the image resolution: nearest-downsampled), ``cam_data/intrinsics.txt``
(``fx fy cx cy`` per frame) and ``cam_data/extrinsics.txt`` (16 numbers per frame, row-major,
Blender axes). Depth = fx / disparity (baseline taken as 1, as the reference does); the stored
pose is ``extrinsics · diag(1, -1, -1, 1)``, used as camera-to-world, exactly as the reference.
Processed: ``<out>/<split>/<seq>/<id>_*`` with ``<id>`` the last four characters of the stem.

Reading ``.dsp5`` needs ``h5py`` (in the ``train`` extra, not a core dependency: ``pip install h5py``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

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


def read_dsp5(path: Path) -> np.ndarray:
    """The ``disparity`` dataset of a Spring ``.dsp5`` (HDF5) file, float32."""
    try:
        import h5py
    except ImportError as exc:
        raise InputError("reading Spring .dsp5 disparity needs h5py: pip install h5py") from exc
    with h5py.File(path, "r") as f:
        if "disparity" not in f:
            raise InputError(f"{path} has no 'disparity' dataset")
        return np.asarray(f["disparity"], dtype=np.float32)


def raw_sequences(raw_root: str | os.PathLike, split: str = "train",
                  read_disparity: Callable[[Path], np.ndarray] = read_dsp5) -> list[RawSequence]:
    split_dir = Path(raw_root) / split
    if not split_dir.is_dir():
        raise InputError(f"missing Spring split folder {split_dir}")
    return [_sequence(seq, f"{split}/{seq.name}", read_disparity)
            for seq in sorted(p for p in split_dir.iterdir() if p.is_dir())]


def _sequence(seq: Path, name: str, read_disparity) -> RawSequence:
    images = sorted_files(seq / "frame_left", (".png",))
    disparities = sorted_files(seq / "disp1_left", (".dsp5",))
    intrinsics = np.loadtxt(seq / "cam_data" / "intrinsics.txt", ndmin=2)
    extrinsics = np.loadtxt(seq / "cam_data" / "extrinsics.txt", ndmin=2)
    check_same_length(str(seq), images, disparities)
    if len(intrinsics) < len(images) or len(extrinsics) < len(images):
        raise InputError(f"{seq}/cam_data has fewer rows than the {len(images)} frames")

    def loader(i: int):
        def load():
            image = Image.open(images[i]).convert("RGB")
            disparity = read_disparity(disparities[i])
            if disparity.shape != (2 * image.height, 2 * image.width):
                raise InputError(f"{disparities[i]}: disparity {disparity.shape} is not twice the image size")
            disparity = cv2.resize(disparity, image.size, interpolation=cv2.INTER_NEAREST)
            fx, fy, cx, cy = intrinsics[i][:4]
            pose = extrinsics[i].reshape(4, 4).astype(np.float32) @ BLENDER_TO_OPENCV
            return image, depth_from_disparity(disparity, fx), pinhole(fx, fy, cx, cy), pose
        return load

    return RawSequence(name=name, frames=[RawFrame(img.stem[-4:], loader(i)) for i, img in enumerate(images)])

"""Readers and writers for the processed training layout and the raw formats it is built from.

Processed layout (written by the official ``datasets_preprocess/preprocess_*.py`` scripts), one set of files
per frame ``<id>`` in a sequence folder:

- ``<id>_rgb.jpg``: RGB, PIL's default JPEG quality.
- ``<id>_depth.pfm``: z-depth (H, W) float32 in the dataset's unit (metres for most sets),
  ``Pf`` header, scale -1 (little-endian), rows stored bottom-up.
- ``<id>_mask.png``: uint8, 255 where the depth is usable (0 < depth < 400), else 0.
- ``<id>_metadata.npz``: ``camera_intrinsics`` (3, 3) pinhole K in pixels (OpenCV convention,
  pixel centres on integers) and ``camera_pose`` (4, 4), camera-to-world with OpenCV axes for
  every set except PointOdyssey, which stores world-to-camera (inverted when read).
- ``<id>_rgb_pred_depth_<prior>.npz`` (written by ``align3r prior --dataset``): ``depth`` (H, W)
  or (1, h, w) and ``focallength_px``.

Every writer is atomic (temporary file + rename), so an interrupted preparation never leaves a
truncated frame behind; the metadata file is written last and marks a frame as complete.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from align3r.atomic import atomic_path
from align3r.errors import InputError, OutputError
from align3r.io import formats
from align3r.io.formats import read_pfm as read_pfm  # re-exported: processed depth is PFM

RGB_SUFFIX = "_rgb.jpg"
#: What to do when a write fails (full disk, permissions); frames are recomputed by a rerun, so not fsync'ed.
_WRITE_HINT = "free some disk space or fix permissions"


@dataclass(frozen=True)
class FramePaths:
    """The files of one processed frame, all derived from its ``<id>_rgb.jpg`` path."""

    rgb: Path

    @classmethod
    def of(cls, folder: str | os.PathLike, frame_id: str) -> FramePaths:
        return cls(Path(folder) / f"{frame_id}{RGB_SUFFIX}")

    @property
    def frame_id(self) -> str:
        return self.rgb.name[: -len(RGB_SUFFIX)]

    def _sibling(self, suffix: str) -> Path:
        return self.rgb.with_name(self.frame_id + suffix)

    @property
    def depth(self) -> Path:
        return self._sibling("_depth.pfm")

    @property
    def mask(self) -> Path:
        return self._sibling("_mask.png")

    @property
    def metadata(self) -> Path:
        return self._sibling("_metadata.npz")

    def prior(self, prior_name: str) -> Path:
        """``<id>_rgb_pred_depth_<prior_name>.npz``, the name ``align3r prior --dataset`` writes."""
        return self.rgb.with_name(f"{self.rgb.stem}_pred_depth_{prior_name}.npz")

    def is_complete(self) -> bool:
        return all(p.is_file() for p in (self.rgb, self.depth, self.mask, self.metadata))


def write_pfm(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write a (H, W) map as a little-endian ``Pf`` PFM, bottom row first, atomically."""
    array = np.asarray(array)
    if array.ndim != 2:
        raise InputError(f"write_pfm expects a (H, W) map, got shape {array.shape}")
    with atomic_path(path, hint=_WRITE_HINT) as tmp:
        formats.write_pfm(tmp, array)


def write_rgb(path: str | os.PathLike, image: Image.Image) -> None:
    """Save an RGB image; JPEG at PIL's default quality, like the official preprocessing."""
    path = Path(path)
    with atomic_path(path, hint=_WRITE_HINT) as tmp:
        image.convert("RGB").save(tmp, format="JPEG" if path.suffix.lower() in (".jpg", ".jpeg") else None)


def read_rgb(path: str | os.PathLike) -> np.ndarray:
    """(H, W, 3) uint8 RGB."""
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise InputError(f"cannot read image {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def write_mask(path: str | os.PathLike, mask: np.ndarray) -> None:
    """Save a validity mask (H, W), any dtype with nonzero = valid, as 0/255 uint8 PNG."""
    with atomic_path(path, hint=_WRITE_HINT) as tmp:
        if not cv2.imwrite(str(tmp), (np.asarray(mask) > 0).astype(np.uint8) * 255):
            raise OutputError(f"could not encode mask {path}")


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """(H, W) bool: pixel value / 255 > 0.1 (the reference's threshold)."""
    mask = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise InputError(f"cannot read mask {path}")
    if mask.ndim == 3:
        mask = mask[..., 0]
    return mask.astype(np.float32) / 255.0 > 0.1


def write_metadata(path: str | os.PathLike, intrinsics: np.ndarray, pose: np.ndarray) -> None:
    """``camera_intrinsics`` (3, 3) and ``camera_pose`` (4, 4) as an ``.npz``."""
    intrinsics = np.asarray(intrinsics, dtype=np.float64)
    pose = np.asarray(pose)
    if intrinsics.shape != (3, 3) or pose.shape != (4, 4):
        raise InputError(f"metadata needs K (3, 3) and pose (4, 4), got {intrinsics.shape}, {pose.shape}")
    with atomic_path(path, hint=_WRITE_HINT) as tmp, open(tmp, "wb") as f:
        np.savez(f, camera_intrinsics=intrinsics, camera_pose=pose)


def read_metadata(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(K (3, 3) float32, pose (4, 4) float32) exactly as stored (no inversion)."""
    with np.load(path) as meta:
        try:
            return np.float32(meta["camera_intrinsics"]), np.float32(meta["camera_pose"])
        except KeyError as exc:
            raise InputError(f"{path} lacks {exc}; re-run the preparation script") from exc


def read_prior(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """A cached monocular prior: ((h, w) float32 depth or disparity, focal in pixels).

    ``focallength_px`` may be a scalar or a 3x3 K (some official training files); the focal is
    irrelevant to the normalised point map anyway (official
    ``dust3r/datasets/base/base_stereo_view_dataset.py``, ``BaseStereoViewDataset.pixel_to_pointcloud``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"missing depth prior {path}; compute it with `align3r prior --dataset <root>`")
    with np.load(path) as data:
        depth = np.asarray(data["depth"], dtype=np.float32)
        focal = np.asarray(data["focallength_px"], dtype=np.float64) if "focallength_px" in data else None
    depth = depth.reshape(depth.shape[-2:]) if depth.ndim == 3 and depth.shape[0] == 1 else depth
    if depth.ndim != 2:
        raise InputError(f"{path}: prior depth must be (H, W) or (1, H, W), got {depth.shape}")
    if focal is None:
        focal_px = 200.0  # the reference's fixed focal for priors without one; it cancels anyway
    else:
        focal_px = float(focal.reshape(-1)[0])
    return depth, focal_px

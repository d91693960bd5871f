"""What every preparation script shares: raw frame → processed frame → files on disk.

A dataset module lists its raw sequences as :class:`RawSequence` objects whose frames load
lazily; :func:`prepare_sequences` turns them into the processed layout
(``align3r.data.io``), skipping frames already complete, so an interrupted run resumes.

Geometry (official ``datasets_preprocess/preprocess_*.py``, e.g. ``preprocess_Flythings3D.py``): crop the
largest window symmetric about the principal point
(bounds truncated to integers), then rescale so the short side is 384 (= 512·3/4), or the
long side 512 if that would make it shorter; depth and mask nearest-neighbour.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from align3r.data import cropping
from align3r.data.io import FramePaths, write_mask, write_metadata, write_pfm, write_rgb
from align3r.errors import InputError

#: Rotation between Blender camera axes (x right, y up, z backward) and OpenCV ones
#: (x right, y down, z forward): ``cam2world_opencv = cam2world_blender @ BLENDER_TO_OPENCV``.
BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0]).astype(np.float32)

IMG_SIZE = 512
MASK_MAX_DEPTH = 400.0


@dataclass
class RawFrame:
    """One raw frame. ``load()`` returns (RGB image, depth (H, W) float32, K (3, 3), pose (4, 4))."""

    frame_id: str
    load: Callable[[], tuple[Image.Image, np.ndarray, np.ndarray, np.ndarray]]


@dataclass
class RawSequence:
    """Raw frames that go to one processed folder ``name`` (relative to the output root)."""

    name: str
    frames: list[RawFrame] = field(default_factory=list)
    mask_max_depth: float = MASK_MAX_DEPTH


@dataclass
class ProcessedFrame:
    image: Image.Image
    depth: np.ndarray  # (H, W) float32
    mask: np.ndarray  # (H, W) bool
    intrinsics: np.ndarray  # (3, 3)
    pose: np.ndarray  # (4, 4), stored as given


def processed_size(width: int, height: int, img_size: int = IMG_SIZE) -> tuple[int, int]:
    """Target (W, H): short side ``img_size·3/4``, or long side ``img_size`` if that is larger.

    Computed from the size *before* the principal-point crop, as the reference does.
    """
    scale = (img_size * 3 // 4) / min(width, height) + 1e-8
    size = np.floor(np.array([width, height]) * scale).astype(int)
    if size.max() < img_size:
        scale = img_size / max(width, height) + 1e-8
        size = np.floor(np.array([width, height]) * scale).astype(int)
    return int(size[0]), int(size[1])


def process_frame(image: Image.Image, depth: np.ndarray, intrinsics: np.ndarray, pose: np.ndarray, *,
                  mask_max_depth: float = MASK_MAX_DEPTH, img_size: int = IMG_SIZE) -> ProcessedFrame:
    """Crop about the principal point and rescale one raw frame (depth in the set's own unit)."""
    depth = np.asarray(depth, dtype=np.float32)
    if depth.shape != (image.height, image.width):
        raise InputError(f"depth {depth.shape} and image {image.height}x{image.width} differ in size")
    mask = ((depth > 0) & (depth < mask_max_depth)).astype(np.float32)
    target = processed_size(image.width, image.height, img_size)
    depth_and_mask = np.stack((depth, mask), axis=-1)
    k = np.asarray(intrinsics, dtype=np.float64)
    image, (depth_and_mask,), k = cropping.crop_about_principal_point(image.convert("RGB"), [depth_and_mask], k,
                                                                      round_pp=False)
    image, (depth_and_mask,), k = cropping.rescale(image, [depth_and_mask], k, target)
    return ProcessedFrame(image=image, depth=depth_and_mask[..., 0].astype(np.float32),
                          mask=depth_and_mask[..., 1] > 0, intrinsics=k, pose=np.asarray(pose))


def write_frame(folder: str | os.PathLike, frame_id: str, frame: ProcessedFrame) -> FramePaths:
    """Write the four files of a frame; the metadata last, as the completion marker."""
    paths = FramePaths.of(folder, frame_id)
    write_rgb(paths.rgb, frame.image)
    write_pfm(paths.depth, frame.depth)
    write_mask(paths.mask, frame.mask)
    write_metadata(paths.metadata, frame.intrinsics, frame.pose)
    return paths


@dataclass
class PrepareReport:
    """What :func:`prepare` did: frames written, frames skipped (already complete), sequences."""

    written: int = 0
    skipped: int = 0
    sequences: int = 0

    def summary(self, out_root: str | os.PathLike) -> str:
        line = f"{self.written} frames written to {out_root}"
        if self.skipped:
            line += (f"; {self.skipped} already complete, skipped (of {self.written + self.skipped} frames in "
                     f"{self.sequences} sequences; --overwrite redoes them)")
        return line


def prepare(sequences: Iterable[RawSequence], out_root: str | os.PathLike, *, overwrite: bool = False,
            img_size: int = IMG_SIZE, progress: bool = True, dataset: str | None = None,
            raw_root: str | os.PathLike | None = None, layout: str | None = None) -> PrepareReport:
    """Process every frame of ``sequences`` into ``out_root/<sequence name>/`` (frames already
    complete are skipped unless ``overwrite``).

    ``dataset``: the raw dataset's name, recorded in ``out_root/align3r_prepared.json`` (the
    training loaders read it: PointOdyssey's metadata stores world-to-camera poses).
    ``raw_root`` / ``layout``: named in the error when no sequence is found.
    """
    sequences = list(sequences)
    if not sequences:
        where = f" under {raw_root}" if raw_root is not None else ""
        expected = f"; expected {layout}" if layout else ""
        raise InputError(f"no raw sequences found{where}{expected}; check the raw dataset root and its layout "
                         "(docs/training.md §1)")
    out_root = Path(out_root)
    report = PrepareReport(sequences=len(sequences))
    total = sum(len(s.frames) for s in sequences)
    if dataset is not None:
        _write_marker(out_root, dataset)
    with tqdm(total=total, desc="frames", unit="frame", disable=not progress) as bar:
        for seq in sequences:
            folder = out_root / seq.name
            for raw in seq.frames:
                if overwrite or not FramePaths.of(folder, raw.frame_id).is_complete():
                    image, depth, k, pose = raw.load()
                    frame = process_frame(image, depth, k, pose, mask_max_depth=seq.mask_max_depth,
                                          img_size=img_size)
                    write_frame(folder, raw.frame_id, frame)
                    report.written += 1
                else:
                    report.skipped += 1
                bar.update(1)
    return report


def _write_marker(out_root: Path, dataset: str) -> None:
    import json

    from align3r.data.datasets import PREPARED_MARKER, WORLD_TO_CAMERA_DATASETS

    pose = "world-to-camera" if dataset in WORLD_TO_CAMERA_DATASETS else "camera-to-world"
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / PREPARED_MARKER).write_text(json.dumps({"dataset": dataset, "camera_pose": pose}) + "\n")


def prepare_sequences(sequences: Iterable[RawSequence], out_root: str | os.PathLike, *,
                      overwrite: bool = False, img_size: int = IMG_SIZE, progress: bool = True) -> int:
    """:func:`prepare`, returning the number of frames written."""
    return prepare(sequences, out_root, overwrite=overwrite, img_size=img_size, progress=progress).written


def pinhole(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


def depth_from_disparity(disparity: np.ndarray, focal_times_baseline: float) -> np.ndarray:
    """depth = f·b / disparity; NaN or non-positive disparity → 1e-3 (⇒ huge depth, masked out)."""
    disparity = np.array(disparity, dtype=np.float32, copy=True)
    disparity[~(disparity > 0)] = 1e-3  # also catches NaN
    return (np.float32(focal_times_baseline) / disparity).astype(np.float32)


def sorted_files(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"missing folder {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)


def check_same_length(what: str, *lists) -> None:
    lengths = [len(x) for x in lists]
    if len(set(lengths)) != 1:
        raise InputError(f"{what}: mismatched frame counts {lengths}; the raw download looks incomplete")

"""Where every output lives inside a reconstruction directory (the one source of truth).

The writer, the reader, ``align3r export`` and the viewer all take paths from here, and
``docs/outputs.md`` documents the same layout. Per-frame files are named ``<stem>.<ext>``, where
``stem`` comes from the input frame's name (see :func:`frame_stems`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

FORMAT_NAME = "align3r-reconstruction"
FORMAT_VERSION = 1

MANIFEST = "manifest.json"
# "total" (iterations,) + "term_<name>" per loss term (shorter when the term starts later); grouped
# graphs: "total" of the keyframe problem + "term_clip_<k>" = clip k's total (docs/outputs.md)
LOSS_HISTORY = "loss_history.npz"

# Per-frame folders (one file per frame, named by the frame's stem).
DEPTH_DIR = "depth"  # <stem>.npy float32 (H, W); <stem>.png uint16 (depth = png / scale)
DEPTH_PREVIEW_DIR = "depth_preview"  # <stem>.png colourised inverse depth, RGB8
DEPTH_ORIGINAL_DIR = "depth_original"  # <stem>.npy float32 (H0, W0), <stem>.png uint16
CONFIDENCE_DIR = "confidence"  # <stem>.npy float32 raw conf (> 1); <stem>.png 8-bit preview
MASK_DIR = "dynamic_mask"  # <stem>.png uint8 0 / 255
RGB_DIR = "rgb"  # <stem>.png RGB8 at network resolution
FRAME_PLY_DIR = "pointclouds/frames"  # <stem>.ply per-frame world points with colours

# Sequence-level files.
CAM2WORLD = "cameras/cam2world.npy"
INTRINSICS_NPY = "cameras/intrinsics.npy"
INTRINSICS_JSON = "cameras/intrinsics.json"
TRAJECTORY_TUM = "cameras/trajectory_tum.txt"
STATIC_PLY = "pointclouds/static_scene.ply"
SCENE_GLB = "scene.glb"
PREVIEW_VIDEO = "preview.mp4"
COLMAP_DIR = "colmap"  # colmap/images/<stem>.png + colmap/sparse/0/{cameras,images,points3D}.{txt,bin}
COLMAP_MODEL_DIR = "colmap/sparse/0"
COLMAP_IMAGES_DIR = "colmap/images"
NERFSTUDIO_DIR = "nerfstudio"  # transforms.json + images/<stem>.png + depth/<stem>.npy + sparse_pc.ply
NERFSTUDIO_TRANSFORMS = "nerfstudio/transforms.json"
NERFSTUDIO_IMAGES = "images"  # relative to NERFSTUDIO_DIR, as transforms.json names them
NERFSTUDIO_DEPTH = "depth"
NERFSTUDIO_PLY = "sparse_pc.ply"
RERUN_RECORDING = "recording.rrd"

_IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".exr", ".ppm"}
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def frame_stems(names: Sequence[str]) -> list[str]:
    """File stems for N frames: the input names without image suffix, made filesystem-safe.

    ``["00000.jpg", "00001.jpg"]`` -> ``["00000", "00001"]``. Every run of characters outside
    ``[A-Za-z0-9._-]`` becomes one ``_``, then leading and trailing ``.`` and ``_`` are stripped
    (``"été.JPG"`` -> ``"t"``). If that leaves duplicates or empty stems (names from different
    folders, odd characters), every stem becomes the zero-padded frame index instead (at least 5
    digits), so files never overwrite each other.
    """
    stems = []
    for name in names:
        base = Path(str(name)).name
        if Path(base).suffix.lower() in _IMAGE_SUFFIXES:
            base = Path(base).stem
        stems.append(_UNSAFE.sub("_", base).strip("._"))
    if len(set(stems)) != len(stems) or not all(stems):
        width = max(5, len(str(len(names) - 1)))
        stems = [f"{i:0{width}d}" for i in range(len(names))]
    return stems


def frame_file(folder: str, stem: str, ext: str) -> str:
    """Relative path of one per-frame file, e.g. ``depth/00000.npy``."""
    return f"{folder}/{stem}.{ext}"

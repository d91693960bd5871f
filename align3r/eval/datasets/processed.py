"""Shared reader for the processed synthetic layout (PointOdyssey, FlyingThings3D).

One folder per sequence (official ``datasets_preprocess/preprocess_PointOdyssey.py`` and
``preprocess_Flythings3D.py``), one file group per frame ``<id>``::

    <id>_rgb.jpg        colour
    <id>_depth.pfm      float32 depth in metres (``Pf``, bottom row first)
    <id>_mask.png       255 where 0 < depth < 400
    <id>_metadata.npz   camera_intrinsics (3, 3), camera_pose (4, 4)
    <id>_rgb_pred_depth_<prior>.npz   cached prior (official
                                      ``third_party/ml-depth-pro/infer_training_set.py``)

``camera_pose`` is camera-to-world for FlyingThings3D; the PointOdyssey preprocessing stores the
world-to-camera extrinsics (times a Blender->OpenCV axis flip), which its loader inverts: pass
``pose_is_world_to_camera=True``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from align3r.errors import InputError
from align3r.eval.datasets.base import MAX_DEPTH_EVAL_FRAMES, Sequence, check_task, list_images
from align3r.io.formats import read_pfm
from align3r.io.trajectory import Trajectory

PROCESSED_IMAGE_SUFFIXES = ("rgb.jpg", ".jpeg", "rgb.png")
"""The official depth script's filter for processed folders (lower-cased name endings)."""


def frame_file(frame: Path, suffix: str) -> Path:
    """``<id>_rgb.jpg`` -> ``<id><suffix>`` in the same folder (e.g. ``_depth.pfm``)."""
    stem = frame.stem[: -len("_rgb")] if frame.stem.endswith("_rgb") else frame.stem
    return frame.with_name(stem + suffix)


def _prior_path(frame: Path, prior_name: str) -> Path:
    return frame.with_name(f"{frame.stem}_pred_depth_{prior_name}.npz")


def _read_metadata(frames: list[Path], pose_is_world_to_camera: bool):
    paths = [frame_file(f, "_metadata.npz") for f in frames]
    present = [p.is_file() for p in paths]
    if not any(present):
        return None, None
    if not all(present):
        missing = paths[present.index(False)]
        raise InputError(f"{missing} is missing while other frames have metadata; re-run the "
                         "preparation for this sequence.")
    intrinsics, poses = [], []
    for p in paths:
        with np.load(p) as meta:
            if "camera_pose" not in meta or "camera_intrinsics" not in meta:
                raise InputError(f"{p} lacks camera_pose/camera_intrinsics; re-run the preparation.")
            intrinsics.append(np.asarray(meta["camera_intrinsics"], np.float64))
            poses.append(np.asarray(meta["camera_pose"], np.float64))
    poses = np.stack(poses)
    if pose_is_world_to_camera:
        poses = np.linalg.inv(poses)
    return Trajectory(np.arange(len(frames), dtype=np.float64), poses), np.stack(intrinsics)


def processed_sequence(seq_dir: Path, *, dataset: str, name: str, task: str,
                       pose_is_world_to_camera: bool) -> Sequence:
    """One processed sequence folder: its first 110 frames (the depth protocol's cap)."""
    check_task(task)
    frames = list_images(seq_dir, PROCESSED_IMAGE_SUFFIXES)[:MAX_DEPTH_EVAL_FRAMES]
    if not frames:
        raise InputError(f"no *_rgb.jpg frames in {seq_dir}: the benchmark reads the processed layout "
                         f"(<id>_rgb.jpg, <id>_depth.pfm, ...), not the raw download. Make it with "
                         f"python scripts/eval/prepare_{dataset}.py --raw <raw root> --out <processed root> "
                         "and point the dataset root at the output (docs/reproducing.md).")
    trajectory, intrinsics = _read_metadata(frames, pose_is_world_to_camera)
    return Sequence(
        dataset=dataset,
        name=name,
        frame_paths=tuple(frames),
        depth_paths=tuple(frame_file(f, "_depth.pfm") for f in frames),
        depth_reader=read_pfm,
        trajectory=trajectory,
        intrinsics=intrinsics,
        prior_path_rule=_prior_path,
    )

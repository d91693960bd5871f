"""MPI Sintel (training set): depth ``.dpt``, cameras ``.cam``, dynamic labels, final/clean passes.

Layouts accepted for ``root`` (both unzip the official archives, see docs/reproducing.md):

- paper-era Align3R: ``root/MPI-Sintel-training_images/training/{final,clean}/<seq>/frame_XXXX.png``
  and ``root/MPI-Sintel-depth-training/training/{depth,camdata_left,dynamic_label_perfect}/<seq>/``;
- merged (MonST3R, Align3R HEAD): ``root/training/{final,clean,depth,camdata_left,...}/<seq>/``;
  ``root`` may also be that ``training`` folder itself.

Protocols (official ``tool/depth_test.py``; ``tool/pose_test.py`` with ``dust3r/utils/eval_metadata.py``,
``dataset_metadata['sintel']``):

- depth: all 23 sequences (bottom-level folders of the pass), every frame (≤ 110), GT ``.dpt``.
- pose: the 14 MonST3R sequences (:data:`SINTEL_POSE_SEQUENCES`, paper-era) or all 23
  (``sequences="all"``, HEAD); every frame; GT from ``camdata_left/<seq>/*.cam`` (world-to-camera,
  inverted to camera-to-world; camera centres **mean-centred** as the reference; timestamps =
  frame numbers).

The paper's tables use the **final** pass (the default); Align3R's HEAD switched to ``clean``.
Priors are cached in ``depth_prediction_<prior>/<seq>/frame_XXXX.npz`` beside the pass folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from align3r.errors import InputError
from align3r.eval.datasets.base import (
    MAX_DEPTH_EVAL_FRAMES,
    Sequence,
    bottom_level_dirs,
    check_task,
    frame_number,
    list_images,
    require_dir,
    select_sequences,
)
from align3r.io.formats import read_dpt, read_sintel_cam
from align3r.io.trajectory import Trajectory

SINTEL_POSE_SEQUENCES = (
    "alley_2", "ambush_4", "ambush_5", "ambush_6", "cave_2", "cave_4", "market_2",
    "market_5", "market_6", "shaman_3", "sleeping_1", "sleeping_2", "temple_2", "temple_3",
)
"""The 14 sequences of the paper's Sintel pose table (MonST3R's list)."""

SINTEL_PASSES = ("final", "clean")
DYNAMIC_LABEL_DIR = "dynamic_label_perfect"


def sintel_dirs(root: str | Path, pass_name: str = "final") -> tuple[Path, Path]:
    """``(pass_dir, annotation_dir)`` for either accepted layout (module docstring)."""
    if pass_name not in SINTEL_PASSES:
        raise ValueError(f"pass_name must be one of {SINTEL_PASSES}, got {pass_name!r}")
    root = Path(root)
    candidates = [
        (root / "MPI-Sintel-training_images" / "training", root / "MPI-Sintel-depth-training" / "training"),
        (root / "training", root / "training"),
        (root, root),
    ]
    for images, annotation_dir in candidates:
        if (images / pass_name).is_dir():
            return images / pass_name, annotation_dir
    raise InputError(
        f"no Sintel '{pass_name}' pass under {root}: expected "
        f"{root}/MPI-Sintel-training_images/training/{pass_name} or {root}/training/{pass_name}. "
        "Download and unzip MPI-Sintel-training_images.zip and MPI-Sintel-depth-training-20150305.zip "
        "(docs/reproducing.md).")


def load_sintel_trajectory(cam_dir: Path) -> tuple[Trajectory, np.ndarray]:
    """GT trajectory of one sequence from its ``.cam`` files, as the official ``load_sintel_traj``.

    Returns:
        ``(trajectory, intrinsics)``: camera-to-world poses with camera centres mean-centred over
        the sequence and timestamps = frame numbers; (N, 3, 3) K.
    """
    cams = sorted(p for p in require_dir(cam_dir, "Unzip MPI-Sintel-depth-training-20150305.zip "
                                                  "(it holds camdata_left).").iterdir()
                  if p.suffix == ".cam")
    if not cams:
        raise InputError(f"no .cam files in {cam_dir}")
    ks, w2c = zip(*(read_sintel_cam(p) for p in cams))
    world_to_cam = np.tile(np.eye(4), (len(cams), 1, 1))
    world_to_cam[:, :3, :4] = np.stack(w2c)
    cam2world = np.linalg.inv(world_to_cam)
    cam2world[:, :3, 3] -= cam2world[:, :3, 3].mean(axis=0, keepdims=True)
    return Trajectory(np.array([frame_number(p) for p in cams]), cam2world), np.stack(ks)


def _prior_rule(pass_dir: Path, seq: str):
    prior_root = pass_dir.parent

    def rule(frame: Path, prior_name: str) -> Path:
        return prior_root / f"depth_prediction_{prior_name}" / seq / f"{frame.stem}.npz"

    return rule


def sintel_sequences(root: str | Path, *, task: str = "depth", pass_name: str = "final",
                     sequences=None) -> list[Sequence]:
    """The Sintel sequences of the depth or pose protocol.

    Args:
        root: dataset root (module docstring).
        task: ``"depth"`` (all sequences) or ``"pose"`` (the 14 of :data:`SINTEL_POSE_SEQUENCES`).
        pass_name: ``"final"`` (paper) or ``"clean"`` (Align3R HEAD).
        sequences: None for the protocol's list, ``"all"`` for every sequence, or names.
    """
    check_task(task)
    pass_dir, annotations = sintel_dirs(root, pass_name)
    available = [str(d.relative_to(pass_dir)) for d in bottom_level_dirs(pass_dir) if d != pass_dir]
    if sequences is None and task == "pose":
        sequences = list(SINTEL_POSE_SEQUENCES)
    names = select_sequences(available, None if sequences == "all" else sequences, "Sintel")
    out = []
    for seq in names:
        frames = list_images(pass_dir / seq)
        if task == "depth":
            frames = frames[:MAX_DEPTH_EVAL_FRAMES]
        # Cameras pair with frames by sorted index, as the reference does.
        trajectory, intrinsics = load_sintel_trajectory(annotations / "camdata_left" / seq)
        count = len(frames)
        depth_dir = annotations / "depth" / seq
        mask_dir = annotations / DYNAMIC_LABEL_DIR / seq
        masks = tuple((mask_dir / f"{f.stem}.png") if (mask_dir / f"{f.stem}.png").is_file() else None
                      for f in frames)
        out.append(Sequence(
            dataset="sintel",
            name=seq,
            frame_paths=tuple(frames),
            depth_paths=tuple(depth_dir / f"{f.stem}.dpt" for f in frames),
            depth_reader=read_dpt,
            trajectory=trajectory.subset(slice(0, count)),
            intrinsics=intrinsics[:count],
            dynamic_mask_paths=masks,
            prior_path_rule=_prior_rule(pass_dir, seq),
        ))
    return out

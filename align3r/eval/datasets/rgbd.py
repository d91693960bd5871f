"""Shared reader for TUM-layout RGB-D sequences (TUM RGB-D dynamics, Bonn RGB-D Dynamic).

Raw layout of one sequence folder (the official downloads)::

    <seq>/rgb/<timestamp>.png        8-bit colour, named by capture time (seconds)
    <seq>/depth/<timestamp>.png      uint16, metres x 5000, 0 = no reading
    <seq>/groundtruth.txt            TUM trajectory (timestamp tx ty tz qx qy qz qw)

The evaluation subset (made by ``scripts/eval/prepare_{bonn,tum}.py``, as the official scripts)::

    <seq>/rgb_<K>/  <seq>/depth_<K>/  <seq>/groundtruth_<K>.txt

holding sorted frames ``[30 : 30 + K]`` of ``rgb/`` and ``depth/`` and **rows** ``[30 : 30 + K]``
of ``groundtruth.txt``.

Association of frames with depth and poses:

- ``association="index"`` (default; what the paper's numbers use): the i-th sorted image pairs
  with the i-th sorted depth file and the i-th ground-truth row. For TUM this is not time-correct
  (the mocap runs at 100 Hz, the camera at 30 Hz), but it is the official protocol.
- ``association="timestamp"``: each image is matched to the nearest depth image and
  ground-truth pose within ``max_difference`` seconds (0.02 s, TUM's ``associate.py`` rule), using
  the full raw ``depth/`` folder and ``groundtruth.txt``. A frame without a match is an error.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path

import numpy as np

from align3r.errors import InputError
from align3r.eval.datasets.base import (
    MAX_DEPTH_EVAL_FRAMES,
    Sequence,
    check_task,
    list_images,
    require_dir,
    timestamp_from_name,
)
from align3r.io.formats import read_png_depth
from align3r.io.trajectory import Trajectory, associate_timestamps, read_tum_trajectory

RGBD_DEPTH_SCALE = 5000.0
"""TUM and Bonn store depth as uint16 metres x 5000."""
SUBSET_START = 30
"""The evaluation subsets skip the first 30 frames."""
POSE_EVAL_FRAMES = 30
"""The pose protocol of TUM and Bonn uses the first 30 frames of the subset."""
ASSOCIATIONS = ("index", "timestamp")


def _prior_rule(seq_dir: Path, rgb_folder: str):
    def rule(frame: Path, prior_name: str) -> Path:
        return seq_dir / f"{rgb_folder}_depth_prediction_{prior_name}" / f"{frame.stem}.npz"

    return rule


def rgbd_sequence(seq_dir: Path, *, dataset: str, name: str, subset_size: int, task: str,
                  association: str = "index", max_difference: float = 0.02,
                  prepare_hint: str = "") -> Sequence:
    """One prepared TUM-layout sequence (module docstring).

    Args:
        seq_dir: the sequence folder.
        dataset, name: labels of the record.
        subset_size: K of ``rgb_K`` (110 for Bonn, 50 for TUM).
        task: ``"depth"`` (all K frames) or ``"pose"`` (the first 30).
        association: ``"index"`` (official) or ``"timestamp"``.
        max_difference: timestamp association tolerance in seconds.
    """
    check_task(task)
    if association not in ASSOCIATIONS:
        raise ValueError(f"association must be one of {ASSOCIATIONS}, got {association!r}")
    rgb_folder = f"rgb_{subset_size}"
    rgb_dir = require_dir(seq_dir / rgb_folder, f"Prepare the evaluation subset first: {prepare_hint}")
    frames = list_images(rgb_dir)[:MAX_DEPTH_EVAL_FRAMES]
    if task == "pose":
        frames = frames[:POSE_EVAL_FRAMES]
    if not frames:
        raise InputError(f"no images in {rgb_dir}; re-run the preparation: {prepare_hint}")
    if association == "index":
        depth_dir = require_dir(seq_dir / f"depth_{subset_size}", f"Prepare the subset first: {prepare_hint}")
        depth_files = [depth_dir / n for n in sorted(os.listdir(depth_dir))]
        if len(depth_files) < len(frames):
            raise InputError(f"{depth_dir} holds {len(depth_files)} depth maps for {len(frames)} frames; "
                             f"re-run the preparation: {prepare_hint}")
        depth_paths = tuple(depth_files[: len(frames)])
        gt = read_tum_trajectory(seq_dir / f"groundtruth_{subset_size}.txt")
        if len(gt) < len(frames):
            raise InputError(f"{seq_dir / f'groundtruth_{subset_size}.txt'} has {len(gt)} poses for "
                             f"{len(frames)} frames; re-run the preparation: {prepare_hint}")
        trajectory = gt.subset(slice(0, len(frames)))
    else:
        stamps = np.array([timestamp_from_name(f) for f in frames])
        raw_depth = list_images(require_dir(seq_dir / "depth", "The raw depth/ folder is needed for "
                                                               "timestamp association."))
        depth_index = _match_all(stamps, np.array([timestamp_from_name(p) for p in raw_depth]),
                                 max_difference, True, f"{seq_dir.name}: depth", frames)
        depth_paths = tuple(raw_depth[i] for i in depth_index)
        gt = read_tum_trajectory(seq_dir / "groundtruth.txt")
        gt_index = _match_all(stamps, gt.timestamps, max_difference, False, f"{seq_dir.name}: pose", frames)
        trajectory = Trajectory(gt.timestamps[gt_index], gt.cam2world[gt_index])
    return Sequence(
        dataset=dataset,
        name=name,
        frame_paths=tuple(frames),
        depth_paths=depth_paths,
        depth_reader=partial(read_png_depth, scale=RGBD_DEPTH_SCALE),
        trajectory=trajectory,
        prior_path_rule=_prior_rule(seq_dir, rgb_folder),
    )


def _match_all(query: np.ndarray, reference: np.ndarray, max_difference: float, one_to_one: bool,
               what: str, frames: list[Path]) -> np.ndarray:
    """Index into ``reference`` for every query stamp; InputError if one has no match."""
    qi, ri = associate_timestamps(query, reference, max_difference, one_to_one=one_to_one)
    if qi.size != query.size:
        missing = sorted(set(range(query.size)) - set(qi.tolist()))
        raise InputError(f"{what}: {len(missing)} frame(s) have no match within {max_difference} s, "
                         f"e.g. {frames[missing[0]].name}; use association='index' or a larger "
                         "max_difference.")
    return ri

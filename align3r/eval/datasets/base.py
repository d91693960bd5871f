"""The sequence record every benchmark reader yields, and helpers shared by the readers.

A reader turns a dataset root (in the layout of docs/reproducing.md) into a list of
:class:`Sequence` records, one per evaluated video, with the frames **in the order and range the
official protocol uses** (``tool/depth_test.py``, and ``tool/pose_test.py`` with
``dust3r/utils/eval_metadata.py``). Nothing heavy is loaded up front: depth maps and masks
are read on demand; ground-truth trajectories (small text/binary files) are read eagerly so that a
missing or broken file fails when the benchmark is listed, not in the middle of a run.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import numpy as np

from align3r.errors import InputError
from align3r.io.formats import read_mask_png
from align3r.io.trajectory import Trajectory
from align3r.priors.official_cache import OFFICIAL_KINDS

Task = Literal["depth", "pose"]
TASKS = ("depth", "pose")
OFFICIAL_CACHE_PRIORS = tuple(OFFICIAL_KINDS)
"""The priors with official per-frame caches (``depthpro``: metric depth, ``depthanything``:
disparity), by the names that appear in the cache paths (``Sequence.prior_path``)."""

MAX_DEPTH_EVAL_FRAMES = 110
"""``tool/depth_test.py`` reads at most the first 110 (sorted) images of every sequence."""


@dataclass
class Sequence:
    """One benchmark video as the protocol evaluates it.

    - ``dataset``, ``name``: e.g. ``"sintel"``, ``"alley_2"``.
    - ``frame_paths``: N image paths, protocol order and range.
    - ``depth_paths``: N ground-truth depth files (same order), or None when the dataset has no
      depth GT (DAVIS). Read with :meth:`load_depth` (metres, float; invalid pixels ≤ 0).
    - ``trajectory``: ground-truth camera-to-world poses for the N frames (:class:`Trajectory`,
      timestamps in seconds or frame numbers), or None.
    - ``intrinsics``: (N, 3, 3) float64 GT intrinsics in pixels at the GT resolution, or None.
    - ``dynamic_mask_paths``: N paths (None entries where a frame has no mask), or None.
    - ``prior_path_rule``: maps (frame path, prior name) to the official prior-cache ``.npz``
      path (official ``third_party/ml-depth-pro/infer_test_set.py``; read by
      ``dust3r/utils/image_pose.py``, ``load_images``); use :meth:`prior_path`.
    """

    dataset: str
    name: str
    frame_paths: tuple[Path, ...]
    depth_paths: tuple[Path, ...] | None
    depth_reader: Callable[[Path], np.ndarray] | None
    trajectory: Trajectory | None
    prior_path_rule: Callable[[Path, str], Path]
    intrinsics: np.ndarray | None = None
    dynamic_mask_paths: tuple[Path | None, ...] | None = None
    dynamic_mask_threshold: float = 0.99

    def __post_init__(self) -> None:
        n = len(self.frame_paths)
        if n == 0:
            raise InputError(f"{self.dataset} sequence {self.name!r} has no frames.")
        for what, value in (("depth_paths", self.depth_paths), ("dynamic_mask_paths", self.dynamic_mask_paths),
                            ("trajectory", self.trajectory), ("intrinsics", self.intrinsics)):
            if value is not None and len(value) != n:
                raise InputError(f"{self.dataset} sequence {self.name!r}: {len(value)} {what} entries "
                                 f"for {n} frames; the dataset folder is incomplete.")

    def __len__(self) -> int:
        return len(self.frame_paths)

    def load_depth(self, index: int) -> np.ndarray:
        """(H, W) ground-truth depth of frame ``index`` in metres (invalid ≤ 0)."""
        if self.depth_paths is None or self.depth_reader is None:
            raise InputError(f"{self.dataset} has no ground-truth depth (sequence {self.name!r}).")
        return self.depth_reader(self.depth_paths[index])

    def load_depths(self) -> np.ndarray:
        """(N, H, W) ground-truth depth of every frame."""
        return np.stack([self.load_depth(i) for i in range(len(self))])

    def load_dynamic_mask(self, index: int) -> np.ndarray | None:
        """(H, W) bool, True on moving objects; None when the frame has no mask file."""
        if self.dynamic_mask_paths is None or self.dynamic_mask_paths[index] is None:
            return None
        return read_mask_png(self.dynamic_mask_paths[index], self.dynamic_mask_threshold)

    def prior_path(self, index: int, prior_name: str) -> Path:
        """The official cache file of frame ``index``'s ``prior_name`` prior (may not exist yet)."""
        return self.prior_path_rule(self.frame_paths[index], prior_name)

    def prior_paths(self, prior_name: str) -> list[Path]:
        return [self.prior_path(i, prior_name) for i in range(len(self))]

    def head(self, count: int) -> Sequence:
        """The first ``count`` frames (the pose protocol of Bonn/TUM uses the first 30)."""
        def cut(value):
            return None if value is None else value[:count]
        return replace(
            self,
            frame_paths=self.frame_paths[:count],
            depth_paths=cut(self.depth_paths),
            trajectory=None if self.trajectory is None else self.trajectory.subset(slice(0, count)),
            intrinsics=cut(self.intrinsics),
            dynamic_mask_paths=cut(self.dynamic_mask_paths),
        )


def check_task(task: str) -> None:
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def require_dir(path: Path, hint: str) -> Path:
    """``path`` if it is a directory, else an InputError naming it and what to do."""
    if not path.is_dir():
        raise InputError(f"{path} is not a directory. {hint}")
    return path


def list_images(folder: Path, suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png")) -> list[Path]:
    """Files of ``folder`` whose lower-cased name ends with one of ``suffixes``, sorted by name.

    Plain string order (not natural order), as the official ``sorted(os.listdir(...))``.
    """
    names = sorted(n for n in os.listdir(folder) if n.lower().endswith(suffixes))
    return [folder / n for n in names]


def bottom_level_dirs(root: Path) -> list[Path]:
    """Every directory under ``root`` (itself included) without sub-directories, sorted as strings.

    Symbolic links to directories are followed (datasets are often linked into place).
    """
    found = [Path(current) for current, subdirs, _ in os.walk(root, followlinks=True) if not subdirs]
    return sorted(found, key=str)


def select_sequences(available: list[str], wanted, dataset: str) -> list[str]:
    """Filter sequence names; ``wanted`` None -> all, else each must exist."""
    if not available:
        raise InputError(f"{dataset}: no sequence folders found; check the dataset root and its "
                         "layout (docs/reproducing.md).")
    if wanted is None:
        return available
    wanted = [wanted] if isinstance(wanted, str) else list(wanted)
    missing = [w for w in wanted if w not in available]
    if missing:
        on_disk = [w for w in wanted if w in available] or available
        raise InputError(f"{dataset}: sequence(s) {', '.join(missing)} not found; available: "
                         f"{', '.join(available) or 'none'}. To evaluate only the sequences on disk, name them: "
                         f"data.{dataset.lower()}.sequences=[{','.join(on_disk)}] (align3r eval; "
                         "sequences=[...] for load_benchmark).")
    return wanted


def frame_number(path: Path) -> float:
    """The number after the last '_' of the file stem (``frame_0012.png`` -> 12.0)."""
    try:
        return float(path.stem.split("_")[-1])
    except ValueError:
        raise InputError(f"cannot read a frame number from {path.name}") from None


def timestamp_from_name(path: Path) -> float:
    """TUM/Bonn image names are their timestamps in seconds (``1341846647.734820.png``)."""
    try:
        return float(path.stem)
    except ValueError:
        raise InputError(f"{path.name} is not named by its timestamp (TUM layout: "
                         "<seconds>.<fraction>.png); use association='index'.") from None

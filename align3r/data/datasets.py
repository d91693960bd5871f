"""Pair datasets over the processed layout (and the Sintel test set in its raw layout).

A pair dataset lists pairs of frames of one sequence, ``(i, j)`` with ``i < j ≤ i + max_gap`` over
the frames sorted by name, and turns a pair into two views (:mod:`align3r.data.views`) with a
numpy generator handed in by the caller, so sampling is reproducible (:mod:`align3r.data.mixing`).

All pair datasets share this interface:

- ``len(ds)``; ``ds.resolutions``: list of (W, H) landscape resolutions;
- ``ds.get_pair(idx, resolution_idx, rng) -> [view1, view2]``;
- ``ds.set_epoch(epoch)`` (a no-op except for resampled mixtures).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from align3r.data.io import (
    RGB_SUFFIX,
    FramePaths,
    read_mask,
    read_metadata,
    read_pfm,
    read_prior,
)
from align3r.data.views import ViewAugmentation, make_view
from align3r.errors import InputError
from align3r.io.formats import read_dpt, read_sintel_cam
from align3r.priors.pointmap import check_prior_input, match_prior_to_frame, prior_input_map, repair_depth

log = logging.getLogger(__name__)

DEFAULT_RESOLUTIONS = ((512, 288), (512, 336), (512, 256))
#: Written by ``scripts/train/prepare.py`` into its output folder: ``{"dataset": <name>, ...}``.
PREPARED_MARKER = "align3r_prepared.json"
#: Datasets whose processed metadata stores world-to-camera poses (the reference's convention).
WORLD_TO_CAMERA_DATASETS = ("pointodyssey",)


def prepared_dataset(folder: Path) -> str | None:
    """Which raw dataset the processed ``folder`` (a sequence folder or any folder above it) was
    prepared from: the ``dataset`` of the nearest :data:`PREPARED_MARKER` at or above it, else
    ``"pointodyssey"`` for a folder at or under one named ``PointOdyssey_proc`` (the name
    docs/training.md gives the output; folders prepared before the marker existed have no marker);
    None when unknown."""
    folder = Path(folder).absolute()
    for parent in (folder, *folder.parents):
        marker = parent / PREPARED_MARKER
        if marker.is_file():
            try:
                values = json.loads(marker.read_text())
            except (OSError, json.JSONDecodeError):
                values = None
            if isinstance(values, dict) and isinstance(values.get("dataset"), str):
                return values["dataset"]
        if parent.name.lower() == "pointodyssey_proc":
            return "pointodyssey"
    return None

#: Prior names whose cached map is a relative disparity rather than a depth.
DISPARITY_PRIORS = ("depthanything",)


def parse_resolutions(resolution) -> list[tuple[int, int]]:
    """224 → [(224, 224)]; (512, 288) → [(512, 288)]; [[512, 288], ...] → list of (W, H).

    Every resolution must be landscape (W ≥ H); portrait views are obtained by transposition.
    """
    if isinstance(resolution, int):
        items = [(resolution, resolution)]
    elif len(resolution) == 2 and all(isinstance(v, int) for v in resolution):
        items = [tuple(resolution)]
    else:
        items = [(r, r) if isinstance(r, int) else tuple(r) for r in resolution]
    out = []
    for item in items:
        if len(item) != 2 or not all(isinstance(v, int) and v > 0 for v in item):
            raise InputError(f"resolution {item} must be (width, height) positive integers")
        width, height = item
        if width < height:
            raise InputError(f"resolution {item} must be landscape (width >= height)")
        if width % 16 or height % 16:
            raise InputError(f"resolution {item} must be a multiple of 16 (the patch size)")
        out.append((int(width), int(height)))
    if not out:
        raise InputError("at least one resolution is needed")
    return out


def window_pairs(num_frames: Sequence[int], max_gap: int) -> np.ndarray:
    """All (sequence, i, j) with i < j ≤ i + max_gap, sequence by sequence, i then j ascending.

    Returns:
        (P, 3) int64.
    """
    chunks = []
    for seq, n in enumerate(num_frames):
        i, j = np.triu_indices(n, k=1)
        keep = (j - i) <= max_gap
        chunks.append(np.stack([np.full(keep.sum(), seq), i[keep], j[keep]], axis=1))
    return np.concatenate(chunks).astype(np.int64) if chunks else np.zeros((0, 3), np.int64)


class PairDataset:
    """Base class: sequences of frames, windowed pairs, views built by :meth:`load_frame`."""

    label = "pairs"

    def __init__(self, *, resolution=DEFAULT_RESOLUTIONS, aug_crop: int = 0, aug_focal: bool = False,
                 color_jitter: bool = False, max_gap: int = 10, prior_input: str = "pointmap"):
        self.resolutions = parse_resolutions(resolution)
        # the prior's representation (supp. Table 2): the paper's point map, or the depth-map ablation
        self.prior_input = check_prior_input(prior_input)
        self.augmentation = ViewAugmentation(aug_crop=int(aug_crop), aug_focal=bool(aug_focal),
                                             color_jitter=bool(color_jitter))
        self.max_gap = int(max_gap)
        self.sequences: list[list[Path]] = []
        self.pairs = np.zeros((0, 3), np.int64)

    def _set_sequences(self, sequences: list[list[Path]], where: str) -> None:
        self.sequences = [s for s in sequences if len(s) >= 2]
        self.pairs = window_pairs([len(s) for s in self.sequences], self.max_gap)
        if len(self.pairs) == 0:
            raise InputError(f"{type(self).__name__}: no frame pairs found under {where}; check the root "
                             "and that the preparation script has run")

    def __len__(self) -> int:
        return len(self.pairs)

    def __repr__(self) -> str:
        res = ",".join(f"{w}x{h}" for w, h in self.resolutions)
        return f"{type(self).__name__}({len(self)} pairs, {len(self.sequences)} sequences, res={res})"

    def set_epoch(self, epoch: int) -> None:
        pass

    def frame_paths(self, idx: int) -> tuple[Path, Path]:
        seq, i, j = self.pairs[idx]
        return self.sequences[seq][i], self.sequences[seq][j]

    def load_frame(self, path: Path) -> tuple[Image.Image, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(image, depth (H, W) float32, prior map (H, W, 3) in ``self.prior_input``'s representation,
        K (3, 3), cam-to-world (4, 4))."""
        raise NotImplementedError

    def get_pair(self, idx: int, resolution_idx: int, rng: np.random.Generator) -> list[dict[str, Any]]:
        if not 0 <= idx < len(self):
            raise IndexError(f"pair {idx} out of range for {self!r}")
        resolution = self.resolutions[resolution_idx]
        views = []
        for path in self.frame_paths(idx):
            image, depth, prior, k, pose = self.load_frame(path)
            views.append(make_view(image, depth, prior, k, pose, resolution, rng, self.augmentation,
                                   instance=str(path), dataset=self.label))
        return views


def prior_map_for_frame(prior_path: Path, frame_hw: tuple[int, int], prior_name: str,
                        prior_input: str = "pointmap") -> np.ndarray:
    """Cached prior → normalised (H, W, 3) point map (or, with ``prior_input="depthmap"``, the
    repeated normalised depth) at the frame's resolution (official
    ``dust3r/datasets/base/base_stereo_view_dataset.py``, ``BaseStereoViewDataset.pixel_to_pointcloud``,
    then ``_crop_resize_if_necessary``).

    The point map is built at the frame resolution; a prior stored at another resolution (raw
    Depth Anything output) is first resampled to it (``align3r.priors.pointmap``).
    """
    depth, focal = read_prior(prior_path)
    kind = "disparity" if prior_name in DISPARITY_PRIORS else "depth"
    what = f"prior {prior_path}"
    depth, _ = repair_depth(depth, kind=kind, what=what)
    depth, focal = match_prior_to_frame(depth, focal, frame_hw, what=what)
    return prior_input_map(depth, focal, prior_input, what=what)


class ProcessedPairs(PairDataset):
    """Pairs over any dataset in the processed layout.

    Args:
        root: dataset root. sequence_globs: folders (relative to ``root``) holding the frames of one
            sequence each; None = every folder under ``root`` that holds ``*_rgb.jpg`` files.
        exclude: sequences whose relative path contains any of these substrings are skipped.
        prior_name: which cached prior to read (``depthpro`` or ``depthanything``).
        invert_pose: the metadata stores world-to-camera (PointOdyssey) instead of camera-to-world.
            None (default): camera-to-world, except sequences that :func:`prepared_dataset` finds
            were prepared from PointOdyssey (under a ``PointOdyssey_proc`` folder, or marked so by
            ``scripts/train/prepare.py``): those are read as the PointOdyssey reader reads them
            (poses inverted), so ``data_root=data`` with every ``*_proc`` folder gets the geometry
            right. True / False: every sequence, no detection.
        use_mask: multiply the depth by ``<id>_mask.png`` (the reference always does).
        resolution, aug_crop, aug_focal, color_jitter, max_gap: see :class:`PairDataset`.
    """

    label = "processed"
    invert_pose = False

    def __init__(self, root: str | os.PathLike, *, sequence_globs: Sequence[str] | None = None,
                 exclude: Sequence[str] = (), prior_name: str = "depthpro", invert_pose: bool | None = None,
                 use_mask: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"{type(self).__name__}: dataset root {self.root} does not exist; set the "
                             "dataset's root (or data_root in the training config) to a prepared folder")
        self.prior_name = prior_name
        detect = invert_pose is None and not self.invert_pose
        if invert_pose is not None:
            self.invert_pose = bool(invert_pose)
        self.use_mask = use_mask
        folders = self._sequence_folders(sequence_globs)
        folders = [f for f in folders if not any(x in f.relative_to(self.root).as_posix() for x in exclude)]
        #: sequence folders read with inverted poses although ``invert_pose`` is off (detected)
        self.world_to_camera_folders: frozenset[Path] = frozenset()
        if detect:
            self.world_to_camera_folders = frozenset(
                f for f in folders if prepared_dataset(f) in WORLD_TO_CAMERA_DATASETS)
            if self.world_to_camera_folders:
                log.info("%s: %d sequence folder(s) under %s were prepared from PointOdyssey (world-to-camera "
                         "poses, e.g. %s): read as the pointodyssey reader reads them (poses inverted)",
                         type(self).__name__, len(self.world_to_camera_folders), self.root,
                         sorted(self.world_to_camera_folders)[0])
        self._set_sequences([sorted(f.glob(f"*{RGB_SUFFIX}")) for f in folders], str(self.root))

    def _sequence_folders(self, globs: Sequence[str] | None) -> list[Path]:
        if globs is None:
            return sorted({p.parent for p in self.root.rglob(f"*{RGB_SUFFIX}")})
        return sorted({p for g in globs for p in self.root.glob(g) if p.is_dir()})

    def load_frame(self, path: Path):
        paths = FramePaths(path)
        image = Image.open(paths.rgb).convert("RGB")
        depth = read_pfm(paths.depth)
        if depth.ndim != 2 or depth.shape != (image.height, image.width):
            raise InputError(f"{paths.depth}: depth {depth.shape} does not match the image size")
        if self.use_mask:
            depth = depth * read_mask(paths.mask)
        k, pose = read_metadata(paths.metadata)
        if self.invert_pose or path.parent in self.world_to_camera_folders:
            pose = np.linalg.inv(pose).astype(np.float32)
        prior = prior_map_for_frame(paths.prior(self.prior_name), depth.shape, self.prior_name, self.prior_input)
        return image, depth, prior, k, pose


class PointOdysseyPairs(ProcessedPairs):
    """``PointOdyssey_proc/<split>``: one folder per sequence; the metadata pose is inverted."""

    label = "PointOdyssey"
    invert_pose = True

    def __init__(self, root, **kwargs):
        kwargs.setdefault("sequence_globs", ["*"])
        super().__init__(root, **kwargs)


class TartanAirPairs(ProcessedPairs):
    """``Tartanair_proc``: one folder per trajectory and camera; ``Hard`` trajectories excluded."""

    label = "TartanAir"

    def __init__(self, root, **kwargs):
        kwargs.setdefault("sequence_globs", ["*"])
        kwargs.setdefault("exclude", ["Hard"])
        super().__init__(root, **kwargs)


class SpringPairs(ProcessedPairs):
    """``spring_proc/train``: one folder per sequence."""

    label = "Spring"

    def __init__(self, root, **kwargs):
        kwargs.setdefault("sequence_globs", ["*"])
        super().__init__(root, **kwargs)


class SceneFlowPairs(ProcessedPairs):
    """``SceneFlow/``: train = Driving + Monkaa + FlyingThings3D TRAIN, test = FlyingThings3D TEST."""

    label = "SceneFlow"
    SPLITS: ClassVar[dict[str, tuple[str, ...]]] = {
        "train": ("Driving_proc/*/*/*/*", "Monkaa_proc/*/*", "FlyingThings3D_proc/TRAIN/*/*/*"),
        "test": ("FlyingThings3D_proc/TEST/*/*/*",),
    }

    def __init__(self, root, *, split: str = "train", **kwargs):
        if split not in self.SPLITS:
            raise InputError(f"SceneFlow split must be one of {sorted(self.SPLITS)}, got {split!r}")
        kwargs.setdefault("sequence_globs", self.SPLITS[split])
        super().__init__(root, **kwargs)


class VKitti2Pairs(ProcessedPairs):
    """``vkitti_2.0.3_proc``: one folder per scene and camera.

    ``list_scenes_twice`` reproduces the reference, which lists every scene twice (each pair
    appears twice in the pool a resampled mixture draws from).
    """

    label = "VKITTI2"

    def __init__(self, root, *, list_scenes_twice: bool = False, **kwargs):
        kwargs.setdefault("sequence_globs", ["*"])
        super().__init__(root, **kwargs)
        if list_scenes_twice:
            self._set_sequences([s for s in self.sequences for _ in range(2)], str(self.root))


class SintelPairs(PairDataset):
    """MPI-Sintel training set in its raw layout (the reference's validation set).

    ``root`` is the image pass folder ``…/MPI-Sintel-training_images/training/final`` (or
    ``clean``); GT lives in ``…/MPI-Sintel-depth-training/training/{depth,camdata_left,
    dynamic_label_perfect}`` and priors in ``…/training/depth_prediction_<prior>/<seq>/<frame>.npz``
    (the reference's place) or beside the frames as ``<frame>_pred_depth_<prior>.npz`` (what
    ``align3r prior <sequence folder>`` writes).
    As in the reference, the depth is multiplied by the dynamic-object mask when it exists
    (``dynamic_only``), so only moving pixels are scored; pairs have ``max_gap`` = 3 by default.
    """

    label = "Sintel"

    def __init__(self, root: str | os.PathLike, *, prior_name: str = "depthpro", dynamic_only: bool = True,
                 **kwargs):
        kwargs.setdefault("max_gap", 3)
        super().__init__(**kwargs)
        self.root = Path(root)
        if not self.root.is_dir():
            raise InputError(f"Sintel image folder {self.root} does not exist")
        self.prior_name = prior_name
        self.dynamic_only = dynamic_only
        training = self.root.parent
        gt_training = training.parent.parent / "MPI-Sintel-depth-training" / training.name
        self.depth_root = gt_training / "depth"
        self.camera_root = gt_training / "camdata_left"
        self.mask_root = gt_training / "dynamic_label_perfect"
        self.prior_root = training / f"depth_prediction_{prior_name}"
        folders = sorted(p for p in self.root.iterdir() if p.is_dir())
        self._set_sequences([sorted(f.glob("*.png")) for f in folders], str(self.root))

    def load_frame(self, path: Path):
        seq, stem = path.parent.name, path.stem
        image = Image.open(path).convert("RGB")
        depth = read_dpt(self.depth_root / seq / f"{stem}.dpt")
        mask_path = self.mask_root / seq / f"{stem}.png"
        if self.dynamic_only and mask_path.is_file():
            depth = depth * read_mask(mask_path)
        k, world_to_cam = read_sintel_cam(self.camera_root / seq / f"{stem}.cam")
        pose = np.eye(4)
        pose[:3, :3] = world_to_cam[:3, :3].T
        pose[:3, 3] = -world_to_cam[:3, :3].T @ world_to_cam[:3, 3]
        prior_path = self.prior_root / seq / f"{stem}.npz"
        if not prior_path.is_file():
            prior_path = path.with_name(f"{stem}_pred_depth_{self.prior_name}.npz")
        prior = prior_map_for_frame(prior_path, depth.shape, self.prior_name, self.prior_input)
        return image, depth.astype(np.float32), prior, k.astype(np.float32), pose.astype(np.float32)

"""The Bonn and TUM evaluation subsets, made from the raw downloads as the official scripts do.

For each sequence folder (TUM layout: ``rgb/``, ``depth/``, ``groundtruth.txt``) this writes

- ``rgb_<K>/``: sorted ``rgb/`` frames ``[30 : 30 + K]``;
- ``depth_<K>/``: sorted ``depth/`` frames ``[30 : 30 + K]`` (sorted independently: the i-th depth
  file is the one the protocol pairs with the i-th image);
- ``groundtruth_<K>.txt``: **rows** ``[30 : 30 + K]`` of ``groundtruth.txt`` (comments skipped),
  written with numpy's ``savetxt`` defaults as the official script.

with K = 110 for Bonn and 50 for TUM. Files are copied (official), or symlinked/hard-linked to
save disk. Re-running is safe: files already in place are kept; a subset folder holding anything
else is an error (it would change the protocol's frame list).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from align3r.errors import InputError
from align3r.eval.datasets.base import list_images, require_dir
from align3r.eval.datasets.rgbd import SUBSET_START

LINK_MODES = ("copy", "symlink", "hardlink")


def _place(source: Path, target: Path, mode: str) -> None:
    if target.exists() or target.is_symlink():
        if target.is_symlink() and target.resolve() == source.resolve():
            return
        if not target.is_symlink() and target.stat().st_size == source.stat().st_size:
            return
        target.unlink()
    if mode == "copy":
        shutil.copy2(source, target)
    elif mode == "symlink":
        target.symlink_to(source.resolve())
    else:
        os.link(source, target)


def _fill_subset(files: list[Path], target_dir: Path, mode: str) -> None:
    target_dir.mkdir(exist_ok=True)
    expected = {f.name for f in files}
    extra = sorted(n for n in os.listdir(target_dir) if n not in expected)
    if extra:
        raise InputError(f"{target_dir} holds files outside the evaluation subset (e.g. {extra[0]}); "
                         "delete the folder and run the preparation again.")
    for f in files:
        _place(f, target_dir / f.name, mode)


def prepare_rgbd_subset(seq_dir: str | Path, count: int, *, start: int = SUBSET_START,
                        mode: str = "copy") -> dict[str, int]:
    """Write ``rgb_<count>``, ``depth_<count>`` and ``groundtruth_<count>.txt`` for one sequence.

    Returns:
        ``{"rgb": n, "depth": n, "poses": n}``: how many frames/rows the subset holds.
    Raises:
        InputError: a missing raw folder/file, or fewer than ``start + count`` frames or poses.
    """
    if mode not in LINK_MODES:
        raise ValueError(f"mode must be one of {LINK_MODES}, got {mode!r}")
    seq_dir = Path(seq_dir)
    hint = "Extract the official archive so that the sequence has rgb/, depth/ and groundtruth.txt."
    rgb = list_images(require_dir(seq_dir / "rgb", hint), (".png",))
    depth = list_images(require_dir(seq_dir / "depth", hint), (".png",))
    gt_file = seq_dir / "groundtruth.txt"
    if not gt_file.is_file():
        raise InputError(f"{gt_file} not found. {hint}")
    gt = np.loadtxt(gt_file, ndmin=2)
    if gt.shape[1] != 8:
        raise InputError(f"{gt_file} has {gt.shape[1]} columns, expected 8 (TUM format).")
    stop = start + count
    for what, n in (("rgb images", len(rgb)), ("depth images", len(depth)), ("ground-truth poses", len(gt))):
        if n < stop:
            raise InputError(f"{seq_dir.name}: {n} {what}, the subset needs at least {stop}; is the "
                             "download complete?")
    _fill_subset(rgb[start:stop], seq_dir / f"rgb_{count}", mode)
    _fill_subset(depth[start:stop], seq_dir / f"depth_{count}", mode)
    np.savetxt(seq_dir / f"groundtruth_{count}.txt", gt[start:stop])
    return {"rgb": count, "depth": count, "poses": count}


def prepare_bonn(root: str | Path, sequences=None, *, mode: str = "copy") -> list[str]:
    """Make the ``*_110`` subsets of Bonn sequences.

    Args:
        root: the ``rgbd_bonn_dataset`` folder (or its parent).
        sequences: short names; None for the paper's five, ``"all"`` for every folder.
    Returns:
        The prepared sequence names.
    """
    from align3r.eval.datasets.bonn import BONN_SEQUENCES, BONN_SUBSET_SIZE, bonn_root, bonn_sequence_dirs

    base = bonn_root(root)
    if sequences == "all":
        names = sorted(p.name.removeprefix("rgbd_bonn_") for p in bonn_sequence_dirs(base))
    else:
        names = list(BONN_SEQUENCES if sequences is None else sequences)
    for name in names:
        prepare_rgbd_subset(base / f"rgbd_bonn_{name}", BONN_SUBSET_SIZE, mode=mode)
    return names


def prepare_tum(root: str | Path, sequences=None, *, mode: str = "copy") -> list[str]:
    """Make the ``*_50`` subsets of every TUM sequence folder under ``root`` (or of ``sequences``)."""
    from align3r.eval.datasets.tum import TUM_SUBSET_SIZE

    root = require_dir(Path(root), "Extract the rgbd_dataset_freiburg3_*.tgz archives there.")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and (p / "rgb").is_dir()) \
        if sequences is None else list(sequences)
    if not names:
        raise InputError(f"no sequence folder with rgb/ under {root}; extract the TUM archives there.")
    for name in names:
        prepare_rgbd_subset(root / name, TUM_SUBSET_SIZE, mode=mode)
    return names

"""Bonn RGB-D Dynamic: the 5 sequences of the paper, frames [30:140] (``rgb_110``).

``root`` is the unzipped ``rgbd_bonn_dataset`` folder (or its parent), holding
``rgbd_bonn_<name>/`` in the TUM layout (see :mod:`align3r.eval.datasets.rgbd`). Prepare the
``rgb_110``/``depth_110``/``groundtruth_110.txt`` subsets with ``scripts/eval/prepare_bonn.py``.

- depth protocol: the 110 frames, GT depth ``depth_110`` (uint16 / 5000 m), paired by index.
- pose protocol: the first 30 of them with rows 0..29 of ``groundtruth_110.txt``, by index.

Priors: ``rgbd_bonn_<name>/rgb_110_depth_prediction_<prior>/<stamp>.npz``.
"""

from __future__ import annotations

from pathlib import Path

from align3r.errors import InputError
from align3r.eval.datasets.base import Sequence, select_sequences
from align3r.eval.datasets.rgbd import rgbd_sequence

BONN_SEQUENCES = ("balloon2", "crowd2", "crowd3", "person_tracking2", "synchronous")
"""The five Bonn sequences of the paper's tables (folder names without ``rgbd_bonn_``)."""
BONN_SUBSET_SIZE = 110
BONN_PREPARE_HINT = "python scripts/eval/prepare_bonn.py --root <data>/bonn/rgbd_bonn_dataset"


def bonn_sequence_dirs(base: Path) -> list[Path]:
    return [p for p in base.iterdir()
            if p.is_dir() and p.name.startswith("rgbd_bonn_") and p.name != "rgbd_bonn_dataset"]


def bonn_root(root: str | Path) -> Path:
    """The folder holding ``rgbd_bonn_*`` (``root`` itself or ``root/rgbd_bonn_dataset``)."""
    root = Path(root)
    for candidate in (root / "rgbd_bonn_dataset", root):
        if candidate.is_dir() and bonn_sequence_dirs(candidate):
            return candidate
    raise InputError(f"no rgbd_bonn_* sequence folders in {root} or {root / 'rgbd_bonn_dataset'}; "
                     "download and unzip rgbd_bonn_dataset.zip (docs/reproducing.md).")


def bonn_sequences(root: str | Path, *, task: str = "depth", sequences=None,
                   association: str = "index", max_difference: float = 0.02) -> list[Sequence]:
    """The Bonn sequences of the depth or pose protocol.

    Args:
        root: see :func:`bonn_root`.
        task: ``"depth"`` (110 frames) or ``"pose"`` (first 30 frames).
        sequences: None for :data:`BONN_SEQUENCES`, ``"all"`` for every ``rgbd_bonn_*`` folder,
            or short names.
        association: ``"index"`` (official) or ``"timestamp"`` (see the rgbd module).
    """
    base = bonn_root(root)
    available = sorted(p.name.removeprefix("rgbd_bonn_") for p in bonn_sequence_dirs(base))
    if sequences is None:
        sequences = list(BONN_SEQUENCES)
    names = select_sequences(available, None if sequences == "all" else sequences, "Bonn")
    return [rgbd_sequence(base / f"rgbd_bonn_{name}", dataset="bonn", name=name,
                          subset_size=BONN_SUBSET_SIZE, task=task, association=association,
                          max_difference=max_difference, prepare_hint=BONN_PREPARE_HINT)
            for name in names]

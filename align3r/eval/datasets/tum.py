"""TUM RGB-D dynamic objects (freiburg3 sitting/walking): frames [30:80] (``rgb_50``).

``root`` holds the extracted ``rgbd_dataset_freiburg3_*`` folders (TUM layout, see
:mod:`align3r.eval.datasets.rgbd`). Prepare the ``rgb_50``/``depth_50``/``groundtruth_50.txt``
subsets with ``scripts/eval/prepare_tum.py``.

- depth protocol: every sequence folder under ``root``, the 50 frames, GT ``depth_50``
  (uint16 / 5000 m) paired by index.
- pose protocol: the first 30 frames with rows 0..29 of ``groundtruth_50.txt``, by index (the
  official protocol; ``association="timestamp"`` pairs them by time instead).

Priors: ``<seq>/rgb_50_depth_prediction_<prior>/<stamp>.npz``.
"""

from __future__ import annotations

from pathlib import Path

from align3r.errors import InputError
from align3r.eval.datasets.base import Sequence, require_dir, select_sequences
from align3r.eval.datasets.rgbd import rgbd_sequence

TUM_DYNAMIC_SEQUENCES = tuple(
    f"rgbd_dataset_freiburg3_{who}_{motion}"
    for who in ("sitting", "walking") for motion in ("static", "xyz", "halfsphere", "rpy")
)
"""The eight freiburg3 dynamic-object sequences the official download script fetches."""
TUM_SUBSET_SIZE = 50
TUM_PREPARE_HINT = "python scripts/eval/prepare_tum.py --root <data>/tum"


def tum_sequences(root: str | Path, *, task: str = "depth", sequences=None,
                  association: str = "index", max_difference: float = 0.02) -> list[Sequence]:
    """The TUM dynamics sequences of the depth or pose protocol.

    Args:
        root: folder holding the ``rgbd_dataset_*`` sequence folders.
        task: ``"depth"`` (50 frames) or ``"pose"`` (first 30 frames).
        sequences: None for every sequence folder under ``root`` (the official choice), or names.
        association: ``"index"`` (official) or ``"timestamp"``.
    """
    root = require_dir(Path(root), "Download the TUM RGB-D freiburg3 dynamic sequences "
                                   "(docs/reproducing.md).")
    available = sorted(p.name for p in root.iterdir()
                       if p.is_dir() and ((p / "rgb").is_dir() or (p / f"rgb_{TUM_SUBSET_SIZE}").is_dir()))
    if not available:
        raise InputError(f"no TUM sequence folders (with rgb/ or rgb_50/) in {root}; extract the "
                         "rgbd_dataset_freiburg3_*.tgz archives there (docs/reproducing.md).")
    names = select_sequences(available, None if sequences == "all" else sequences, "TUM")
    return [rgbd_sequence(root / name, dataset="tum", name=name, subset_size=TUM_SUBSET_SIZE,
                          task=task, association=association, max_difference=max_difference,
                          prepare_hint=TUM_PREPARE_HINT)
            for name in names]

"""PointOdyssey validation split in the processed layout (``PointOdyssey_proc/val/<seq>/``).

Depth protocol: every sequence folder (bottom-level, sorted), its first 110 frames, GT
``<id>_depth.pfm``. Make the layout with ``scripts/eval/prepare_pointodyssey.py``
(:mod:`align3r.eval.prepare.processed`). See :mod:`align3r.eval.datasets.processed` for files.
"""

from __future__ import annotations

from pathlib import Path

from align3r.eval.datasets.base import Sequence, bottom_level_dirs, require_dir, select_sequences
from align3r.eval.datasets.processed import processed_sequence


def pointodyssey_sequences(root: str | Path, *, task: str = "depth", split: str = "val",
                           sequences=None) -> list[Sequence]:
    """Args: ``root`` = ``PointOdyssey_proc`` (holding ``val/``); ``sequences`` None = all."""
    split_dir = require_dir(Path(root) / split, "Run scripts/eval/prepare_pointodyssey.py first "
                                                "(docs/reproducing.md).")
    dirs = {str(d.relative_to(split_dir)): d for d in bottom_level_dirs(split_dir) if d != split_dir}
    names = select_sequences(list(dirs), None if sequences == "all" else sequences, "PointOdyssey")
    return [processed_sequence(dirs[n], dataset="pointodyssey", name=n, task=task,
                               pose_is_world_to_camera=True) for n in names]

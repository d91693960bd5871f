"""FlyingThings3D TEST split in the processed layout (``FlyingThings3D_proc/TEST/{A,B,C}/<seq>/{left,right}``).

Depth protocol: the bottom-level folders of ``TEST`` sorted as strings, every 20th of them
(``[::20]``), 10 frames each, GT ``<id>_depth.pfm`` (= 1050 / disparity). Make the layout with
``scripts/eval/prepare_flyingthings3d.py``. See :mod:`align3r.eval.datasets.processed` for files.
"""

from __future__ import annotations

from pathlib import Path

from align3r.eval.datasets.base import Sequence, bottom_level_dirs, require_dir, select_sequences
from align3r.eval.datasets.processed import processed_sequence

FLYINGTHINGS3D_FOLDER_STRIDE = 20
"""The official script evaluates every 20th bottom-level folder of TEST."""


def flyingthings3d_sequences(root: str | Path, *, task: str = "depth", split: str = "TEST",
                             sequences=None) -> list[Sequence]:
    """Args: ``root`` = ``FlyingThings3D_proc`` (holding ``TEST/``); ``sequences`` None = the
    protocol's every-20th folders, ``"all"`` = every folder, or names like ``"A/0000/left"``."""
    split_dir = require_dir(Path(root) / split, "Run scripts/eval/prepare_flyingthings3d.py first "
                                                "(docs/reproducing.md).")
    dirs = {d.relative_to(split_dir).as_posix(): d for d in bottom_level_dirs(split_dir) if d != split_dir}
    names = select_sequences(list(dirs), None if sequences in (None, "all") else sequences, "FlyingThings3D")
    if sequences is None:
        names = names[::FLYINGTHINGS3D_FOLDER_STRIDE]
    return [processed_sequence(dirs[n], dataset="flyingthings3d", name=n, task=task,
                               pose_is_world_to_camera=False) for n in names]

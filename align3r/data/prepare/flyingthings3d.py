"""FlyingThings3D raw download → processed layout (format: :mod:`align3r.data.prepare.sceneflow`).

Raw ``frames_finalpass/{TRAIN,TEST}/{A,B,C}/<seq>/{left,right}/NNNN.png``; processed
``<out>/{TRAIN,TEST}/{A,B,C}/<seq>/{left,right}/NNNN_*``. K: fx = fy = 1050, (479.5, 269.5);
the principal-point crop makes 959x539 and the rescale 683x384.
"""

from __future__ import annotations

import os
from pathlib import Path

from align3r.data.prepare.common import RawSequence
from align3r.data.prepare.sceneflow import sequences_under

FOCAL = 1050.0


def raw_sequences(raw_root: str | os.PathLike, splits: tuple[str, ...] = ("TRAIN", "TEST")) -> list[RawSequence]:
    sequences = sequences_under(raw_root, 4, lambda rel: FOCAL)
    return [s for s in sequences if Path(s.name).parts[0] in splits]

"""DAVIS 2017 (480p): real dynamic videos without depth or pose ground truth.

``root`` is the ``DAVIS`` folder of the official zip (``JPEGImages/480p/<seq>/*.jpg``,
``Annotations/480p/<seq>/*.png``). Sequences: the bottom-level folders of ``JPEGImages/480p``,
sorted; the depth script reads the first 110 frames of each. The official depth script scores
the prior against itself here (there is no GT), so DAVIS is for qualitative results only.

Dynamic masks: the object annotations (any non-zero label = moving object), where present.
Priors: ``DAVIS/depth_prediction_<prior>/1080p/<seq>/<stem>.npz`` — the official scripts write
them under ``480p`` but read them from ``1080p``; we name the path they read.
"""

from __future__ import annotations

from pathlib import Path

from align3r.eval.datasets.base import (
    MAX_DEPTH_EVAL_FRAMES,
    Sequence,
    bottom_level_dirs,
    check_task,
    list_images,
    require_dir,
    select_sequences,
)


def _prior_path(frame: Path, prior_name: str) -> Path:
    davis = frame.parents[3]  # DAVIS/JPEGImages/480p/<seq>/<frame>
    return davis / f"depth_prediction_{prior_name}" / "1080p" / frame.parent.name / f"{frame.stem}.npz"


def davis_sequences(root: str | Path, *, task: str = "depth", sequences=None) -> list[Sequence]:
    """Args: ``root`` = the ``DAVIS`` folder; ``sequences`` None = all."""
    check_task(task)
    image_root = require_dir(Path(root) / "JPEGImages" / "480p",
                             "Download and unzip DAVIS-2017-trainval-480p.zip (docs/reproducing.md).")
    dirs = {d.relative_to(image_root).as_posix(): d for d in bottom_level_dirs(image_root) if d != image_root}
    names = select_sequences(list(dirs), None if sequences == "all" else sequences, "DAVIS")
    out = []
    for name in names:
        frames = list_images(dirs[name], (".jpg", ".jpeg", ".png"))[:MAX_DEPTH_EVAL_FRAMES]
        mask_dir = Path(root) / "Annotations" / "480p" / name
        masks = tuple((mask_dir / f"{f.stem}.png") if (mask_dir / f"{f.stem}.png").is_file() else None
                      for f in frames)
        out.append(Sequence(dataset="davis", name=name, frame_paths=tuple(frames), depth_paths=None,
                            depth_reader=None, trajectory=None, prior_path_rule=_prior_path,
                            dynamic_mask_paths=masks, dynamic_mask_threshold=0.0))
    return out

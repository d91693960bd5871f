"""Sintel: check the layout and make the ground-truth dynamic labels (``dynamic_label_perfect``).

A pixel of frame i is labelled *dynamic* when the GT optical flow i -> i+1 differs by more than
``threshold`` pixels from the flow the camera motion alone would cause (the "ego flow" obtained by
back-projecting frame i's GT depth with K_i, moving it by the GT relative pose and projecting with
K_{i+1}). This is MonST3R's ``sintel_get_dynamics.py`` rule, run with ``--threshold 0.1 --save_dir
dynamic_label_perfect`` for the labels the evaluation reads. The last frame of a sequence has no
successor and gets no label file (readers then report no mask for it).

Labels are written as 0/255 PNGs to ``<annotations>/dynamic_label_perfect/<seq>/frame_XXXX.png``.
The flow files (``flow/<seq>/frame_XXXX.flo``) come from the Sintel training "extras" archive; the
evaluation does not need the labels, so without that archive no label is written (a warning says
so) and only the layout is checked.
"""

from __future__ import annotations

import logging
from itertools import pairwise
from pathlib import Path

import cv2
import numpy as np

from align3r.errors import InputError
from align3r.eval.datasets.sintel import DYNAMIC_LABEL_DIR, sintel_dirs
from align3r.io.formats import read_dpt, read_flo, read_sintel_cam

log = logging.getLogger(__name__)

DYNAMIC_FLOW_THRESHOLD = 0.1
"""Pixels: the threshold used for the ``dynamic_label_perfect`` labels."""


def ego_flow(depth: np.ndarray, k1: np.ndarray, world_to_cam1: np.ndarray, k2: np.ndarray,
             world_to_cam2: np.ndarray) -> np.ndarray:
    """Flow induced by camera motion on a static scene.

    Args:
        depth: (H, W) z-depth of frame 1.
        k1, k2: (3, 3) intrinsics of frames 1 and 2 (pixels; pixel (u, v) = (column, row)).
        world_to_cam1, world_to_cam2: (3, 4) or (4, 4) extrinsics.
    Returns:
        (H, W, 2) float64 ``(du, dv)``: where each pixel's 3D point lands in frame 2, minus where
        it is in frame 1 (the re-projection through K1, equal to the pixel up to rounding).
    """
    h, w = depth.shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    z = depth.astype(np.float64)
    pts1 = np.stack([(u - k1[0, 2]) * z / k1[0, 0], (v - k1[1, 2]) * z / k1[1, 1], z], axis=-1)
    e1 = np.eye(4)
    e1[:3, :4] = np.asarray(world_to_cam1)[:3, :4]
    e2 = np.eye(4)
    e2[:3, :4] = np.asarray(world_to_cam2)[:3, :4]
    rel = e2 @ np.linalg.inv(e1)  # camera 1 -> camera 2
    pts2 = pts1 @ rel[:3, :3].T + rel[:3, 3]

    def project(k: np.ndarray, pts: np.ndarray) -> np.ndarray:
        hom = pts @ k.T
        return hom[..., :2] / hom[..., 2:3]

    return project(k2, pts2) - project(k1, pts1)


def dynamic_label(depth: np.ndarray, flow: np.ndarray, cam1: tuple[np.ndarray, np.ndarray],
                  cam2: tuple[np.ndarray, np.ndarray], threshold: float = DYNAMIC_FLOW_THRESHOLD) -> np.ndarray:
    """(H, W) bool: ‖GT flow − ego flow‖ > threshold. ``cam*`` are ``(K, world_to_cam)``."""
    with np.errstate(divide="ignore", invalid="ignore"):
        error = np.linalg.norm(flow.astype(np.float64) - ego_flow(depth, cam1[0], cam1[1], cam2[0], cam2[1]),
                               axis=-1)
    return error > threshold


def _flow_candidates(root: Path, pass_dir: Path, annotations: Path) -> tuple[Path, ...]:
    """Where the flow folder is looked for, in order."""
    return (pass_dir.parent / "flow", annotations / "flow", root / "MPI-Sintel-training_extras" / "training" / "flow")


def _flow_dir(root: Path, pass_dir: Path, annotations: Path) -> Path | None:
    """The first existing flow folder among the known places, or None."""
    return next((c for c in _flow_candidates(root, pass_dir, annotations) if c.is_dir()), None)


def prepare_sintel(root: str | Path, *, pass_name: str = "final", sequences=None,
                   threshold: float = DYNAMIC_FLOW_THRESHOLD, flow_dir: str | Path | None = None,
                   overwrite: bool = False) -> dict[str, int]:
    """Write the dynamic labels of every (or the given) Sintel sequence.

    Args:
        root: the Sintel root (either layout of :mod:`align3r.eval.datasets.sintel`).
        pass_name: the pass whose layout locates the annotation folders (labels do not depend on it).
        sequences: names; None for every sequence with GT depth.
        threshold: flow error in pixels above which a pixel is dynamic.
        flow_dir: the ``flow`` folder when it is not beside the pass or annotation folders.
        overwrite: recompute labels that already exist.
    Returns:
        sequence name -> number of label files written; empty (with a warning) when no flow
        folder is found and ``flow_dir`` is None.
    Raises:
        InputError: no GT depth folder, or ``flow_dir`` given but not a folder.
    """
    root = Path(root)
    pass_dir, annotations = sintel_dirs(root, pass_name)
    depth_root = annotations / "depth"
    if not depth_root.is_dir():
        raise InputError(f"{depth_root} not found; unzip MPI-Sintel-depth-training-20150305.zip.")
    if flow_dir is not None and not Path(flow_dir).is_dir():
        raise InputError(f"flow_dir {flow_dir} is not a folder")
    flows = Path(flow_dir) if flow_dir is not None else _flow_dir(root, pass_dir, annotations)
    if flows is None:
        log.warning("no Sintel flow folder (looked for %s): dynamic labels skipped. They are not needed for "
                    "the evaluation; for them unzip MPI-Sintel-training_extras.zip (docs/reproducing.md) or "
                    "point at the flow folder with --flow-dir DIR (scripts/eval/prepare_sintel.py; flow_dir= in "
                    "Python).", ", ".join(map(str, _flow_candidates(root, pass_dir, annotations))))
        return {}
    names = sorted(p.name for p in depth_root.iterdir() if p.is_dir()) if sequences is None else list(sequences)
    written = {}
    for seq in names:
        depth_files = sorted((depth_root / seq).glob("*.dpt"))
        out_dir = annotations / DYNAMIC_LABEL_DIR / seq
        out_dir.mkdir(parents=True, exist_ok=True)
        count = 0
        for first, second in pairwise(depth_files):
            target = out_dir / f"{first.stem}.png"
            if target.is_file() and not overwrite:
                continue
            cams = annotations / "camdata_left" / seq
            label = dynamic_label(read_dpt(first), read_flo(flows / seq / f"{first.stem}.flo"),
                                  read_sintel_cam(cams / f"{first.stem}.cam"),
                                  read_sintel_cam(cams / f"{second.stem}.cam"), threshold)
            if not cv2.imwrite(str(target), label.astype(np.uint8) * 255):
                raise OSError(f"could not write {target}")
            count += 1
        written[seq] = count
    return written

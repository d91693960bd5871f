"""The writer's input, checked and converted once: a reconstruction plus frames, names, times.

All shape and value checks happen here, before anything touches the disk.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from align3r.align.types import Reconstruction
from align3r.export import layout
from align3r.export.original import OriginalResolution


@dataclass
class SequenceData:
    """Everything the format writers need, as numpy arrays (N frames, network H x W).

    depth, conf (N, H, W) float32; dynamic_mask (N, H, W) bool; cam2world (N, 4, 4) and
    intrinsics (N, 3, 3) float32; rgb (N, H, W, 3) uint8; names / stems (N,); timestamps (N,)
    float64 seconds (frame indices when the input had none); frame_ids (N,) int64 or None;
    loss_history / loss_terms: the optimisation's per-iteration losses.
    """

    depth: np.ndarray
    conf: np.ndarray
    dynamic_mask: np.ndarray
    cam2world: np.ndarray
    intrinsics: np.ndarray
    rgb: np.ndarray
    names: list[str]
    stems: list[str]
    timestamps: np.ndarray
    timestamps_are_seconds: bool
    frame_ids: np.ndarray | None
    loss_history: list[float]
    loss_terms: dict[str, list[float]]
    original: OriginalResolution | None

    @property
    def size_hw(self) -> tuple[int, int]:
        return int(self.depth.shape[1]), int(self.depth.shape[2])

    def __len__(self) -> int:
        return int(self.depth.shape[0])


def _numpy(t) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def sequence_from_reconstruction(recon: Reconstruction, rgb, names: Sequence[str] | None,
                                 timestamps: Sequence[float] | None,
                                 original: OriginalResolution | None) -> SequenceData:
    """Convert and check shapes (raises ValueError, before anything touches the disk)."""
    depth = _numpy(recon.depth).astype(np.float32, copy=False)
    if depth.ndim != 3:
        raise ValueError(f"depth must be (N, H, W), got {depth.shape}")
    n, h, w = depth.shape
    arrays = {
        "conf": (_numpy(recon.conf).astype(np.float32, copy=False), (n, h, w)),
        "dynamic_mask": (_numpy(recon.dynamic_mask).astype(bool, copy=False), (n, h, w)),
        "cam2world": (_numpy(recon.cam2world).astype(np.float32, copy=False), (n, 4, 4)),
        "intrinsics": (_numpy(recon.intrinsics).astype(np.float32, copy=False), (n, 3, 3)),
        "rgb": (_numpy(rgb), (n, h, w, 3)),
    }
    for name, (arr, shape) in arrays.items():
        if arr.shape != shape:
            raise ValueError(f"{name} must be {shape} to match depth (N, H, W) = {depth.shape}, got {arr.shape}")
    if arrays["rgb"][0].dtype != np.uint8:
        raise ValueError(f"rgb must be uint8 (N, H, W, 3), got {arrays['rgb'][0].dtype}")
    if not (np.isfinite(arrays["cam2world"][0]).all() and np.isfinite(arrays["intrinsics"][0]).all()):
        raise ValueError("cam2world / intrinsics contain NaN or inf; refusing to write a broken reconstruction")
    frame_ids = None if recon.frame_ids is None else _numpy(recon.frame_ids).astype(np.int64).reshape(-1)
    if frame_ids is not None and frame_ids.shape != (n,):
        raise ValueError(f"frame_ids must be (N,) = ({n},), got {frame_ids.shape}")
    if names is None:
        names = [f"{int(i):06d}" for i in (frame_ids if frame_ids is not None else range(n))]
    names = [str(x) for x in names]
    if len(names) != n:
        raise ValueError(f"{len(names)} names for {n} frames")
    if timestamps is None:
        ts, seconds = (frame_ids if frame_ids is not None else np.arange(n)).astype(np.float64), False
    else:
        ts, seconds = np.asarray(timestamps, np.float64).reshape(-1), True
        if ts.shape != (n,) or not np.isfinite(ts).all():
            raise ValueError(f"timestamps must be {n} finite values, got shape {ts.shape}")
    if original is not None:
        for name, arr, tail in (("original.frames", original.frames, 3), ("original.depth", original.depth, 2)):
            if arr is not None and (arr.shape[0] != n or tuple(arr.shape[1:3]) != tuple(original.size)
                                    or arr.ndim != tail + 1):
                raise ValueError(f"{name} must be (N, H0, W0{', 3' if tail == 3 else ''}) with N={n}, "
                                 f"(H0, W0)={tuple(original.size)}, got {arr.shape}")
    return SequenceData(depth=depth, conf=arrays["conf"][0], dynamic_mask=arrays["dynamic_mask"][0],
                        cam2world=arrays["cam2world"][0], intrinsics=arrays["intrinsics"][0],
                        rgb=arrays["rgb"][0], names=names, stems=layout.frame_stems(names), timestamps=ts,
                        timestamps_are_seconds=seconds, frame_ids=frame_ids,
                        loss_history=[float(x) for x in recon.loss_history],
                        loss_terms={str(k): [float(x) for x in v] for k, v in recon.loss_terms.items()},
                        original=original)

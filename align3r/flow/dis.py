"""The DIS backend: OpenCV's Dense Inverse Search flow, weight-free, for the CPU and offline use.

DIS works on 8-bit grey images, one pair at a time. Pairs of a batch run in a small thread pool
(OpenCV releases the GIL), each thread with its own DIS object since those are not thread-safe.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch
from torch import Tensor

DIS_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


def to_grey_uint8(images: Tensor) -> np.ndarray:
    """(B, 3, H, W) RGB float in [-1, 1] -> (B, H, W) uint8 grey (ITU-R 601 luma, as OpenCV's RGB2GRAY)."""
    rgb = ((images.detach().float().cpu() + 1) * 127.5).round().clamp(0, 255)
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    return (rgb * weights).sum(1).round().clamp(0, 255).to(torch.uint8).numpy()


class DisBackend:
    """Optical flow with OpenCV DIS.

    Call with ``source, target``: (B, 3, H, W) float in [-1, 1]; returns the (B, 2, H, W) float32
    flow in pixels ``(du, dv)`` on the CPU.

    Args:
        preset: ``"ultrafast"``, ``"fast"`` or ``"medium"`` (slowest, most accurate).
        num_workers: pairs computed in parallel (default: the CPU count, at most 8).
    """

    def __init__(self, preset: str = "medium", num_workers: int | None = None) -> None:
        if preset not in DIS_PRESETS:
            raise ValueError(f"unknown DIS preset {preset!r}; choose one of {sorted(DIS_PRESETS)}")
        self.name = "dis"
        self.preset = preset
        self.device = torch.device("cpu")
        self.num_workers = max(1, num_workers or min(8, os.cpu_count() or 1))
        self._local = threading.local()

    def _dis(self) -> cv2.DISOpticalFlow:
        if not hasattr(self._local, "dis"):
            self._local.dis = cv2.DISOpticalFlow_create(DIS_PRESETS[self.preset])
        return self._local.dis

    def _pair(self, source: np.ndarray, target: np.ndarray) -> np.ndarray:
        return self._dis().calc(source, target, None)

    @torch.no_grad()
    def __call__(self, source: Tensor, target: Tensor) -> Tensor:
        if source.shape != target.shape or source.ndim != 4 or source.shape[1] != 3:
            raise ValueError(f"source and target must both be (B, 3, H, W), got {tuple(source.shape)} "
                             f"and {tuple(target.shape)}")
        grey_source, grey_target = to_grey_uint8(source), to_grey_uint8(target)
        if len(grey_source) == 1 or self.num_workers == 1:
            flows = [self._pair(s, t) for s, t in zip(grey_source, grey_target)]
        else:
            with ThreadPoolExecutor(max_workers=min(self.num_workers, len(grey_source))) as pool:
                flows = list(pool.map(self._pair, grey_source, grey_target))
        # (B, H, W, 2) -> (B, 2, H, W)
        return torch.from_numpy(np.stack(flows)).permute(0, 3, 1, 2).contiguous()

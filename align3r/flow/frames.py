"""The frames the flow is computed on: validated once, converted chunk by chunk.

Two layouts are accepted, both at the network resolution:

- uint8 RGB ``(N, H, W, 3)`` (numpy or torch), the decoded video frames;
- float ``(N, 3, H, W)`` in ``[-1, 1]``, the network's own input tensor
  (``(u8 / 255 - 0.5) / 0.5``).

The frames stay where and as they are; only the frames of one batch are gathered, converted to
float32 in ``[-1, 1]`` (what torchvision's RAFT expects) and moved to the backend's device, so a
long video never exists twice in memory.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from align3r.errors import InputError

# A float frame may exceed [-1, 1] by rounding after resampling, not by more.
_RANGE_SLACK = 1e-3


class Frames:
    """A validated stack of N frames of size H x W (pixels)."""

    def __init__(self, images: np.ndarray | Tensor) -> None:
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(np.ascontiguousarray(images))
        if not isinstance(images, Tensor):
            raise InputError(f"images must be a numpy array or torch tensor, got {type(images).__name__}")
        if images.ndim != 4:
            raise InputError(
                f"images must be uint8 (N, H, W, 3) or float (N, 3, H, W), got shape {tuple(images.shape)}")
        if images.dtype == torch.uint8:
            if images.shape[-1] != 3:
                raise InputError(f"uint8 images must be RGB (N, H, W, 3), got shape {tuple(images.shape)}")
            self.channels_last = True
        elif images.is_floating_point():
            if images.shape[1] != 3:
                hint = " (channels last? pass uint8 (N, H, W, 3) or permute to (N, 3, H, W))" \
                    if images.shape[-1] == 3 else ""
                raise InputError(f"float images must be (N, 3, H, W) in [-1, 1], got shape "
                                 f"{tuple(images.shape)}{hint}")
            self.channels_last = False
            self._check_float_range(images)
        else:
            raise InputError(f"images must be uint8 or floating point, got {images.dtype}")
        if images.shape[0] == 0:
            raise InputError("images is empty: no frames to compute flow on")
        self.images = images

    @staticmethod
    def _check_float_range(images: Tensor) -> None:
        if images.numel() == 0:
            return
        if not bool(torch.isfinite(images).all()):
            raise InputError("images contain NaN or infinite values")
        lo, hi = float(images.min()), float(images.max())
        if lo < -1 - _RANGE_SLACK or hi > 1 + _RANGE_SLACK:
            raise InputError(
                f"float images must be the network input in [-1, 1], got values in [{lo:.3g}, {hi:.3g}]; "
                "pass uint8 (N, H, W, 3) frames for 0..255 data")

    @property
    def num_frames(self) -> int:
        return int(self.images.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) in pixels."""
        if self.channels_last:
            return int(self.images.shape[1]), int(self.images.shape[2])
        return int(self.images.shape[2]), int(self.images.shape[3])

    def gather(self, index: Tensor, device: torch.device | str) -> Tensor:
        """Frames ``index`` (K,) -> (K, 3, H, W) float32 in [-1, 1] on ``device``."""
        picked = self.images[index.to(self.images.device)].to(device)
        if self.channels_last:
            # The network's own normalisation, so uint8 and float inputs give identical values.
            picked = (picked.permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5
        # One memory layout whatever the input's strides: convolutions then give identical results.
        return picked.float().contiguous()

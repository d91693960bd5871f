"""The linear head of DUSt3R 224/512-linear: one Linear per token, pixel-shuffled to the image."""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn


class LinearHead(nn.Module):
    """``forward(decout, (H, W)) -> (B, 4, H, W)`` raw (3 coordinates + confidence logit).

    Reads only the last decoder output (B, N, dec_dim) (earlier entries may be ``None``),
    N = (H/p)·(W/p) in raster order; each
    token predicts its p×p patch: ``Linear(dec_dim, 4·p²)``, viewed channel-major as
    (B, 4·p², h, w) and pixel-shuffled by p.
    """

    def __init__(self, dec_dim: int, patch_size: int = 16, num_channels: int = 4) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(dec_dim, num_channels * patch_size**2)

    def forward(self, decout: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor:
        rows, cols = image_size[0] // self.patch_size, image_size[1] // self.patch_size
        features = self.proj(decout[-1]).transpose(1, 2).unflatten(-1, (rows, cols))  # (B, 4p², h, w)
        return F.pixel_shuffle(features, self.patch_size)

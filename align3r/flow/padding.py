"""Centred replicate padding to a multiple of 8 pixels, and the crop that undoes it.

RAFT works on a 1/8-resolution feature grid, so both image sides must be multiples of 8, and its
correlation pyramid (4 levels) needs feature maps of at least 16 cells, i.e. images of at least
128 px a side. We pad ourselves rather than rely on torchvision's check: the padding is split
evenly between both sides (the extra pixel going to the bottom/right) and uses edge replication,
the same rule as the official code's ``InputPadder(mode="sintel")``. Images already large enough
and divisible by 8 are left untouched, so the padded-then-cropped flow of an image equals the flow
of that image padded by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn.functional as F
from torch import Tensor


def _padded_side(size: int, multiple: int, min_size: int) -> int:
    target = max(size, min_size)
    return -(-target // multiple) * multiple


@dataclass(frozen=True)
class CentredPadding:
    """Pixels added on each side of an (H, W) image: ``top``, ``bottom``, ``left``, ``right``."""

    top: int
    bottom: int
    left: int
    right: int

    @staticmethod
    def for_size(height: int, width: int, multiple: int = 8, min_size: int = 0) -> CentredPadding:
        """The smallest centred padding making both sides multiples of ``multiple`` and ``>= min_size``."""
        pad_h = _padded_side(height, multiple, min_size) - height
        pad_w = _padded_side(width, multiple, min_size) - width
        return CentredPadding(top=pad_h // 2, bottom=pad_h - pad_h // 2,
                              left=pad_w // 2, right=pad_w - pad_w // 2)

    @property
    def is_identity(self) -> bool:
        return not (self.top or self.bottom or self.left or self.right)

    def pad(self, images: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H + top + bottom, W + left + right), edge pixels replicated."""
        if self.is_identity:
            return images
        return F.pad(images, (self.left, self.right, self.top, self.bottom), mode="replicate")

    def crop(self, padded: Tensor) -> Tensor:
        """(..., H', W') padded map -> (..., H, W): the region of the original image."""
        h, w = padded.shape[-2:]
        return padded[..., self.top:h - self.bottom, self.left:w - self.right]

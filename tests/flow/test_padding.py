"""Centred replicate padding: sizes as the reference's InputPadder, exact crop back."""

from __future__ import annotations

import pytest
import torch

from align3r.flow.padding import CentredPadding


@pytest.mark.parametrize("size", [1, 7, 8, 9, 15, 16, 17, 208, 223, 224, 287, 288, 511, 512])
def test_padding_matches_reference_rule(size):
    # The official InputPadder("sintel"): total (((s // 8) + 1) * 8 - s) % 8, half (floored) first.
    total = (((size // 8) + 1) * 8 - size) % 8
    pad = CentredPadding.for_size(size, size)
    assert (pad.top, pad.bottom, pad.left, pad.right) == (total // 2, total - total // 2) * 2
    assert (size + pad.top + pad.bottom) % 8 == 0


def test_min_size_pads_small_images_up_to_it():
    pad = CentredPadding.for_size(36, 150, multiple=8, min_size=128)
    assert (36 + pad.top + pad.bottom, 150 + pad.left + pad.right) == (128, 152)
    assert (pad.top, pad.bottom, pad.left, pad.right) == (46, 46, 1, 1)


def test_pad_replicates_edges_and_crop_restores():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(2, 3, 5, 7)
    pad = CentredPadding.for_size(5, 7)
    padded = pad.pad(x)
    assert padded.shape == (2, 3, 8, 8)
    assert (pad.top, pad.bottom, pad.left, pad.right) == (1, 2, 0, 1)
    assert torch.equal(padded[:, :, 0, :7], x[:, :, 0])          # top row replicated
    assert torch.equal(padded[:, :, -1, :7], x[:, :, -1])        # bottom row replicated
    assert torch.equal(padded[:, :, 1:6, -1], x[:, :, :, -1])    # right column replicated
    assert torch.equal(pad.crop(padded), x)


def test_divisible_size_is_untouched():
    x = torch.randn(1, 2, 16, 24)
    pad = CentredPadding.for_size(16, 24)
    assert pad.is_identity and pad.pad(x) is x and torch.equal(pad.crop(x), x)

"""User dynamic masks: matched by frame name, brought to the network view like the image."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from align3r.errors import InputError
from align3r.io.masks import read_masks
from align3r.io.view_geometry import compute_view_geometry
from align3r.io.views import make_views


def test_mask_follows_the_views_crop_and_stays_binary(tmp_path):
    h0, w0 = 480, 640
    geometry = compute_view_geometry(h0, w0, 224)  # 224: resize then a centred square crop
    # an image whose right half is white: the mask of that half must land where the view shows it
    image = np.zeros((h0, w0, 3), np.uint8)
    image[:, w0 // 2:] = 255
    mask = np.zeros((h0, w0), np.uint8)
    mask[:, w0 // 2:] = 255
    cv2.imwrite(str(tmp_path / "f0.png"), mask)
    cv2.imwrite(str(tmp_path / "f1.png"), cv2.resize(mask, (w0 // 2, h0 // 2), interpolation=cv2.INTER_NEAREST))
    masks, files = read_masks(tmp_path, ["f0.color", "f1"], geometry)
    view = make_views([image], 224).rgb[0].numpy()  # (H, W, 3) in [-1, 1] or [0, 1]
    bright = view.mean(-1) > view.mean()
    assert masks.shape == (2, 224, 224) and masks.dtype == bool
    assert (masks[0] == bright).mean() > 0.99  # same crop as the image (a column of resampling blur aside)
    assert np.array_equal(masks[0], masks[1])  # half-size mask of the same aspect: resized, same result
    assert [f.name for f in files] == ["f0.png", "f1.png"]


def test_missing_mask_is_named(tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), np.zeros((8, 8), np.uint8))
    with pytest.raises(InputError, match=r"no mask for frame.*b"):
        read_masks(tmp_path, ["a", "b"], compute_view_geometry(8, 8, 224))
    with pytest.raises(InputError, match="no such folder"):
        read_masks(tmp_path / "nope", ["a"], compute_view_geometry(8, 8, 224))

"""Benchmark file formats: byte-level layouts, round trips, real 7-Scenes depth, bad input."""

from __future__ import annotations

import struct

import cv2
import numpy as np
import pytest

from align3r.errors import InputError
from align3r.io.formats import (
    SINTEL_TAG,
    read_dpt,
    read_flo,
    read_mask_png,
    read_pfm,
    read_png_depth,
    read_sintel_cam,
    write_dpt,
    write_flo,
    write_pfm,
    write_png_depth,
    write_sintel_cam,
)


def test_dpt_matches_the_sintel_byte_layout_and_round_trips(tmp_path):
    depth = np.arange(12, dtype=np.float32).reshape(3, 4) * 0.5 + 1
    # Written by hand in the Sintel layout: tag, width, height, row-major float32 (little-endian).
    raw = struct.pack("<fii", SINTEL_TAG, 4, 3) + depth.astype("<f4").tobytes()
    (tmp_path / "hand.dpt").write_bytes(raw)
    np.testing.assert_array_equal(read_dpt(tmp_path / "hand.dpt"), depth)
    write_dpt(tmp_path / "ours.dpt", depth)
    assert (tmp_path / "ours.dpt").read_bytes() == raw


def test_cam_matches_the_sintel_byte_layout_and_round_trips(tmp_path):
    k = np.array([[688.0, 0, 511.5], [0, 688.0, 217.5], [0, 0, 1]])
    ext = np.hstack([np.eye(3)[[1, 0, 2]] * [[1], [-1], [1]], [[0.1], [-2.0], [3.5]]])
    raw = struct.pack("<f", SINTEL_TAG) + k.astype("<f8").tobytes() + ext.astype("<f8").tobytes()
    (tmp_path / "hand.cam").write_bytes(raw)
    k_read, ext_read = read_sintel_cam(tmp_path / "hand.cam")
    np.testing.assert_array_equal(k_read, k)
    np.testing.assert_array_equal(ext_read, ext)
    write_sintel_cam(tmp_path / "ours.cam", k, np.vstack([ext, [0, 0, 0, 1]]))
    assert (tmp_path / "ours.cam").read_bytes() == raw


def test_flo_interleaves_u_and_v(tmp_path):
    u = np.arange(6, dtype=np.float32).reshape(2, 3)
    v = -u - 0.25
    raw = struct.pack("<fii", SINTEL_TAG, 3, 2) + np.stack([u, v], -1).astype("<f4").tobytes()
    (tmp_path / "hand.flo").write_bytes(raw)
    flow = read_flo(tmp_path / "hand.flo")
    np.testing.assert_array_equal(flow[..., 0], u)
    np.testing.assert_array_equal(flow[..., 1], v)
    write_flo(tmp_path / "ours.flo", flow)
    assert (tmp_path / "ours.flo").read_bytes() == raw


@pytest.mark.parametrize("little_endian", [True, False])
def test_pfm_stores_bottom_row_first_with_the_scale_sign_as_byte_order(tmp_path, little_endian):
    image = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], dtype=np.float32)  # top row 1 2 3
    order = "<" if little_endian else ">"
    raw = (b"Pf\n3 2\n" + (b"-1.0\n" if little_endian else b"1.0\n")
           + np.flipud(image).astype(order + "f4").tobytes())
    (tmp_path / "hand.pfm").write_bytes(raw)
    np.testing.assert_array_equal(read_pfm(tmp_path / "hand.pfm"), image)
    write_pfm(tmp_path / "ours.pfm", image, little_endian=little_endian)
    assert (tmp_path / "ours.pfm").read_bytes() == raw.replace(b"-1.0\n", b"-1\n").replace(b"\n1.0\n", b"\n1\n")


def test_pfm_three_channels_round_trip(tmp_path):
    image = np.random.default_rng(0).normal(size=(5, 7, 3)).astype(np.float32)
    write_pfm(tmp_path / "c.pfm", image)
    assert (tmp_path / "c.pfm").read_bytes().startswith(b"PF\n7 5\n-1\n")
    np.testing.assert_array_equal(read_pfm(tmp_path / "c.pfm"), image)


def test_png_depth_round_trip_at_the_tum_scale(tmp_path):
    depth = np.array([[0.0, 1.0002, 2.5], [13.107, np.nan, -1.0]])
    write_png_depth(tmp_path / "d.png", depth, scale=5000)
    raw = cv2.imread(str(tmp_path / "d.png"), cv2.IMREAD_UNCHANGED)
    assert raw.dtype == np.uint16
    assert raw.tolist() == [[0, 5001, 12500], [65535, 0, 0]]
    back = read_png_depth(tmp_path / "d.png", scale=5000)
    assert back.dtype == np.float64  # the official Bonn/TUM reader divides in float64
    np.testing.assert_array_equal(back, raw / 5000.0)


def test_real_seven_scenes_depth_reads_in_metres(seven_scenes):
    _, _, root = seven_scenes
    depth = read_png_depth(root / "frame-000000.depth.png", scale=1000)
    assert depth.shape == (480, 640)
    valid = depth > 0
    assert 0.05 < 1 - valid.mean() < 0.15  # 7-10 % invalid readings (README), 10.8 % here
    assert 0.79 < depth[valid].min() and depth.max() < 3.7
    assert 1.6 < np.median(depth[valid]) < 2.0
    # the 16-bit values are millimetres: metres * 1000 gives back integers
    np.testing.assert_allclose(depth * 1000, np.rint(depth * 1000), atol=1e-9)


def test_mask_png_threshold(tmp_path):
    cv2.imwrite(str(tmp_path / "m.png"), np.array([[0, 252, 253, 255]], np.uint8))
    assert read_mask_png(tmp_path / "m.png").tolist() == [[False, False, True, True]]
    assert read_mask_png(tmp_path / "m.png", threshold=0.0).tolist() == [[False, True, True, True]]


def test_bad_files_raise_input_errors_that_name_the_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        read_dpt(tmp_path / "missing.dpt")
    (tmp_path / "wrong.dpt").write_bytes(struct.pack("<fii", 1.0, 2, 2) + bytes(16))
    with pytest.raises(InputError, match=r"wrong\.dpt.*tag"):
        read_dpt(tmp_path / "wrong.dpt")
    (tmp_path / "short.dpt").write_bytes(struct.pack("<fii", SINTEL_TAG, 4, 4) + bytes(8))
    with pytest.raises(InputError, match="truncated"):
        read_dpt(tmp_path / "short.dpt")
    (tmp_path / "short.cam").write_bytes(struct.pack("<f", SINTEL_TAG) + bytes(16))
    with pytest.raises(InputError, match=r"short\.cam"):
        read_sintel_cam(tmp_path / "short.cam")
    (tmp_path / "bad.pfm").write_bytes(b"P6\n1 1\n255\n\x00\x00\x00")
    with pytest.raises(InputError, match="not a PFM"):
        read_pfm(tmp_path / "bad.pfm")
    (tmp_path / "short.pfm").write_bytes(b"Pf\n4 4\n-1\n" + bytes(12))
    with pytest.raises(InputError, match="truncated"):
        read_pfm(tmp_path / "short.pfm")
    cv2.imwrite(str(tmp_path / "eight_bit.png"), np.zeros((2, 2), np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        read_png_depth(tmp_path / "eight_bit.png", scale=5000)

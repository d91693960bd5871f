"""Mapping network resolution back to the original frames: intrinsics and depth."""

import numpy as np
import pytest

from align3r.export.original import OriginalResolution


def project(k, point):
    p = k @ point
    return p[:2] / p[2]


def test_original_intrinsics_agree_with_the_pixel_mapping():
    # 1920x1080 -> resized to 512x288 -> centre-cropped to 512x272 (8 rows off the top).
    mapping = OriginalResolution.from_resize_crop((1080, 1920), (288, 512), (0, 8, 512, 280))
    k_net = np.array([[400.0, 0, 256], [0, 400.0, 136], [0, 0, 1]])
    k_orig = mapping.intrinsics(k_net)
    point = np.array([0.7, -0.4, 3.0])
    u_net, v_net = project(k_net, point)
    u_orig, v_orig = project(k_orig, point)
    # Continuous coordinates (pixel centre + 0.5) map by the resize/crop affine.
    sx = sy = 1920 / 512
    assert u_orig + 0.5 == pytest.approx(sx * (u_net + 0.5))
    assert v_orig + 0.5 == pytest.approx(sy * (v_net + 0.5 + 8))


def test_resampled_depth_follows_a_linear_ramp_and_is_nan_outside_the_crop():
    # Network image 8 wide covers original columns [4, 20) of a 24-wide original (scale 2, offset 4).
    mapping = OriginalResolution(size=(6, 24), scale=(2.0, 2.0), offset=(4.0, 0.0))
    u = np.arange(8, dtype=np.float32)
    depth = np.broadcast_to(10 + u, (1, 3, 8)).copy()  # depth = 10 + u_net
    out = mapping.resample_depth(depth)
    assert out.shape == (1, 6, 24) and out.dtype == np.float32
    assert np.isnan(out[0, :, :4]).all() and np.isnan(out[0, :, 20:]).all()
    u_net = (np.arange(4, 20) + 0.5 - 4) / 2 - 0.5  # network pixel coordinate of each original pixel
    expected = 10 + np.clip(u_net, 0, 7)  # linear inside, replicated in the half-pixel border
    np.testing.assert_allclose(out[0, 2, 4:20], expected, atol=1e-5)


def test_written_original_depth(written):
    out, recon, _, _ = written
    full = np.load(out / "depth_original" / "00001.npy")
    assert full.shape == (96, 136) and full.dtype == np.float32
    assert np.isnan(full[:, :4]).all() and np.isnan(full[:, 132:]).all()  # cropped away
    inner = full[:, 4:132]
    assert np.isfinite(inner).all()
    # Same range as the network depth (bilinear interpolation never extrapolates).
    d = recon.depth[1].numpy()
    assert d.min() - 1e-5 <= inner.min() and inner.max() <= d.max() + 1e-5
    # Original pixel (row 2*10+1, column 4+2*20+1) sits at the centre of network pixel (10, 20)'s
    # 2x2 block: its value is the bilinear mix of (10, 20) and its lower-right neighbours.
    assert full[21, 45] == pytest.approx(0.5625 * d[10, 20] + 0.1875 * (d[10, 21] + d[11, 20]) + 0.0625 * d[11, 21],
                                         rel=1e-5)


def test_mapping_from_the_io_view_geometry_inverts_it():
    from align3r.io.view_geometry import compute_view_geometry

    geometry = compute_view_geometry(480, 854, 512)  # the DAVIS frames: 512x288 view
    mapping = OriginalResolution.from_view_geometry(geometry)
    assert mapping.size == (480, 854)
    (sx, sy), (bx, by) = geometry.scale_xy, geometry.offset_xy
    x_orig = np.array([0.0, 100.25, 854.0])
    x_net = sx * x_orig + bx
    np.testing.assert_allclose(mapping.scale[0] * x_net + mapping.offset[0], x_orig, atol=1e-9)
    y_orig = np.array([0.0, 77.5, 480.0])
    np.testing.assert_allclose(mapping.scale[1] * (sy * y_orig + by) + mapping.offset[1], y_orig, atol=1e-9)

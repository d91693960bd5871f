"""Prior point maps against the official load_images outputs (fixtures/prior/), and bad priors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from align3r.errors import InputError
from align3r.io.view_geometry import compute_view_geometry
from align3r.priors import pointmap
from align3r.priors.pointmap import (
    DISPARITY_FOCAL_PX,
    match_prior_to_frame,
    prior_pointmap,
    prior_to_view,
    repair_depth,
)
from align3r.priors.types import DepthPrior

STEMS = ("00000", "00010")


@pytest.fixture(scope="module")
def prior_dir(fixtures_dir):
    return fixtures_dir / "prior"


@pytest.fixture(scope="module")
def outputs(prior_dir):
    return np.load(prior_dir / "load_images_outputs.npz")


def _depthpro(prior_dir, stem) -> DepthPrior:
    z = np.load(prior_dir / f"{stem}_pred_depth_depthpro.npz")
    return DepthPrior(z["depth"], float(z["focallength_px"]), "depth", "fixture")


def _depthanything(prior_dir, stem) -> DepthPrior:
    z = np.load(prior_dir / f"{stem}_pred_depth_depthanything.npz")
    return DepthPrior(z["depth"][0], None, "disparity", "fixture")  # stored (1, H, W) upstream


@pytest.mark.parametrize("stem", STEMS)
def test_full_resolution_point_map_matches_fixture(prior_dir, outputs, stem):
    prior = _depthpro(prior_dir, stem)
    pts = prior_pointmap(prior.depth, prior.focal_px)
    assert pts.shape == (480, 854, 3) and pts.dtype == np.float32
    rc = outputs[f"fullres_sample_rc_{stem}"]
    np.testing.assert_allclose(pts[rc[:, 0], rc[:, 1]], outputs[f"fullres_sample_pts_{stem}"], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(pts.min(axis=(0, 1)), 0.0)
    np.testing.assert_array_equal(pts.max(axis=(0, 1)), 1.0)


@pytest.mark.parametrize("size", [512, 224])
@pytest.mark.parametrize("stem", STEMS)
def test_network_point_map_matches_fixture(prior_dir, outputs, size, stem):
    geometry = compute_view_geometry(480, 854, size)
    view, repaired = prior_to_view(_depthpro(prior_dir, stem), geometry)
    ref = outputs[f"pred_depth_depthpro_{size}_{stem}"][0]
    assert view.shape == ref.shape and repaired == 0
    np.testing.assert_allclose(view, ref, rtol=0, atol=1e-5)
    # Depth Anything style: disparity back-projected with f = 200 gives the same map (focal cancels)
    view_da, _ = prior_to_view(_depthanything(prior_dir, stem), geometry)
    np.testing.assert_allclose(view_da, ref, rtol=0, atol=1e-5)
    if size == 224 and stem == "00000":
        np.testing.assert_allclose(view_da, outputs["pred_depth_depthanything_224_00000"][0], rtol=0, atol=1e-5)


def test_focal_and_depth_scale_cancel(prior_dir):
    depth = _depthpro(prior_dir, "00000").depth
    base = prior_pointmap(depth, 612.375)
    for focal, scale in ((DISPARITY_FOCAL_PX, 1.0), (1500.0, 3.7), (None, 0.01)):
        np.testing.assert_allclose(prior_pointmap(depth * scale, focal), base, rtol=0, atol=2e-6)


def test_prior_at_another_resolution_is_resampled_not_cropped(prior_dir, outputs):
    # Old transformers returned DA-V2 disparity at 518x924 for an 854x480 frame: upstream then fed a
    # 287-row prior to a 288-row image. We resample it to the frame first.
    depth = _depthpro(prior_dir, "00000").depth
    small = cv2.resize(depth, (924, 518), interpolation=cv2.INTER_LINEAR)
    view, _ = prior_to_view(DepthPrior(small, None, "disparity"), compute_view_geometry(480, 854, 512))
    ref = outputs["pred_depth_depthpro_512_00000"][0]
    assert view.shape == (288, 512, 3)
    assert np.abs(view - ref).mean() < 2e-3  # two bilinear resamplings of a smooth map


def test_prior_focal_follows_a_resample():
    depth = np.ones((240, 427), np.float32)
    out, focal = match_prior_to_frame(depth, 300.0, (480, 854))
    assert out.shape == (480, 854) and focal == pytest.approx(300.0 * 854 / 427)
    with pytest.raises(InputError, match="aspect ratios differ"):
        match_prior_to_frame(np.ones((854, 480), np.float32), None, (480, 854))


def _ramp(h=40, w=60):
    y, x = np.mgrid[0:h, 0:w]
    return (2.0 + 0.05 * x + 0.02 * y).astype(np.float32)


def test_few_invalid_values_are_filled_from_the_nearest_valid_pixel():
    depth = _ramp()
    bad = depth.copy()
    bad[10, 10], bad[20, 30], bad[0, 0], bad[39, 59] = np.nan, np.inf, 0.0, -1.0
    fixed, count = repair_depth(bad)
    assert count == 4 and np.isfinite(fixed).all() and (fixed > 0).all()
    assert fixed[10, 10] in (depth[9, 10], depth[11, 10], depth[10, 9], depth[10, 11])
    assert fixed[0, 0] in (depth[0, 1], depth[1, 0])
    untouched = np.ones_like(depth, bool)
    untouched[[10, 20, 0, 39], [10, 30, 0, 59]] = False
    np.testing.assert_array_equal(fixed[untouched], depth[untouched])
    view, repaired = prior_to_view(DepthPrior(bad, 100.0, "depth"), compute_view_geometry(40, 60, 512))
    assert repaired == 4 and np.isfinite(view).all()


def test_zero_disparity_is_valid_but_negative_is_repaired():
    disp = _ramp()
    disp[:3] = 0.0  # far sky
    fixed, count = repair_depth(disp, kind="disparity")
    assert count == 0 and (fixed[:3] == 0).all()
    disp[5, 5] = -0.5
    fixed, count = repair_depth(disp, kind="disparity")
    assert count == 1 and fixed[5, 5] >= 0


@pytest.mark.parametrize("fill", [np.nan, np.inf, 0.0, -2.0])
def test_mostly_invalid_prior_is_rejected(fill):
    depth = _ramp()
    depth[:, :10] = fill  # one sixth of the map
    with pytest.raises(InputError, match=r"invalid.*at most 5%"):
        repair_depth(depth, what="depth prior of frame 3")
    fixed, count = repair_depth(depth, max_invalid_fraction=0.2)
    assert count == 400 and np.isfinite(fixed).all()
    with pytest.raises(InputError, match="invalid"):
        repair_depth(np.full((8, 8), fill, np.float32), max_invalid_fraction=1.0)


def test_constant_prior_is_rejected_instead_of_nan():
    with pytest.raises(InputError, match="constant"):
        prior_pointmap(np.full((30, 40), 4.0, np.float32), 50.0)
    with pytest.raises(InputError, match="constant"):
        prior_to_view(DepthPrior(np.full((30, 40), 0.5, np.float32), None, "disparity"),
                      compute_view_geometry(30, 40, 224))


def test_bad_focal_is_rejected():
    for focal in (0.0, -10.0, float("nan")):
        with pytest.raises(InputError, match="focal"):
            prior_pointmap(_ramp(), focal)


# ---- a prior at another resolution than the frame: prior_resize ---------------------------------

def _half_resolution(prior: DepthPrior) -> DepthPrior:
    """The prior as a Depth Pro cache at half the frame's resolution (427x240 for 854x480)."""
    depth = cv2.resize(prior.depth, (427, 240), interpolation=cv2.INTER_AREA)
    return DepthPrior(depth, prior.focal_px * 427 / 854, "depth", "half")


def test_half_resolution_prior_follows_the_official_path_by_default(prior_dir):
    # official dust3r/utils/image_pose.py load_images: the point map is built at 427x240 and
    # resized with the long-side rule from its own size (cubic, enlarging) to 512x288, no crop
    half = _half_resolution(_depthpro(prior_dir, "00000"))
    geometry = compute_view_geometry(480, 854, 512)
    expected = cv2.resize(prior_pointmap(half.depth, half.focal_px), (512, 288), interpolation=cv2.INTER_CUBIC)
    auto, _ = prior_to_view(half, geometry)
    official, _ = prior_to_view(half, geometry, prior_resize="official")
    np.testing.assert_array_equal(auto, expected)
    np.testing.assert_array_equal(official, expected)
    frame, _ = prior_to_view(half, geometry, prior_resize="frame")
    assert 1e-4 < np.abs(frame - official).max() < 1e-2  # the two settings differ, slightly


def test_processor_resolution_prior_falls_back_to_the_frame_with_a_note(prior_dir, caplog, monkeypatch):
    # 924x518 -> 512x287 by the official rule: a 287-row prior for a 288-row view
    depth = cv2.resize(_depthpro(prior_dir, "00000").depth, (924, 518), interpolation=cv2.INTER_LINEAR)
    prior = DepthPrior(depth, None, "disparity")
    geometry = compute_view_geometry(480, 854, 512)
    monkeypatch.setattr(pointmap, "_NOTED", set())  # as in a fresh process
    with caplog.at_level("INFO", logger="align3r.priors.pointmap"):
        auto, _ = prior_to_view(prior, geometry)
        prior_to_view(prior, geometry)
    notes = [r for r in caplog.records if "resampled to the frame first" in r.getMessage()]
    assert len(notes) == 1  # once per size, not per frame
    np.testing.assert_array_equal(auto, prior_to_view(prior, geometry, prior_resize="frame")[0])
    with pytest.raises(InputError, match=r"prior_resize=official is not defined.*512x287.*512x288"):
        prior_to_view(prior, geometry, prior_resize="official")
    with pytest.raises(InputError, match="unknown prior_resize"):
        prior_to_view(prior, geometry, prior_resize="nearest")


def test_frame_sized_prior_takes_the_same_path_under_every_setting(prior_dir):
    prior = _depthpro(prior_dir, "00000")
    geometry = compute_view_geometry(480, 854, 224)
    views = [prior_to_view(prior, geometry, prior_resize=r, size=224)[0] for r in ("auto", "official", "frame")]
    np.testing.assert_array_equal(views[0], views[1])
    np.testing.assert_array_equal(views[0], views[2])

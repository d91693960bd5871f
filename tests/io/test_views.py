"""Network views against the official load_images outputs (fixtures/prior/) and the geometry."""

from __future__ import annotations

import cv2
import numpy as np
import PIL.Image
import pytest
import torch

from align3r.errors import InputError
from align3r.io import compute_view_geometry, frames_from_arrays, make_views
from align3r.priors.types import DepthPrior

STEMS = ("00000", "00010")


@pytest.fixture(scope="module")
def prior_dir(fixtures_dir):
    return fixtures_dir / "prior"


@pytest.fixture(scope="module")
def outputs(prior_dir):
    return np.load(prior_dir / "load_images_outputs.npz")


@pytest.fixture(scope="module")
def frames(prior_dir):
    return [np.asarray(PIL.Image.open(prior_dir / f"{s}.jpg").convert("RGB")) for s in STEMS]


@pytest.fixture(scope="module")
def priors(prior_dir):
    out = []
    for s in STEMS:
        z = np.load(prior_dir / f"{s}_pred_depth_depthpro.npz")
        out.append(DepthPrior(z["depth"], float(z["focallength_px"]), "depth"))
    return out


@pytest.mark.parametrize("size", [512, 224])
def test_views_equal_the_official_loader(outputs, frames, priors, size):
    views = make_views(frames, size, priors=priors)
    for k, stem in enumerate(STEMS):
        np.testing.assert_array_equal(views.rgb[k].numpy(), outputs[f"rgb_u8_{size}_{stem}"])
        np.testing.assert_array_equal(views.true_shape[k:k + 1].numpy(), outputs[f"true_shape_{size}_{stem}"])
        np.testing.assert_allclose(views.prior_pts3d[k].numpy(), outputs[f"pred_depth_depthpro_{size}_{stem}"][0],
                                   rtol=0, atol=1e-5)
    assert views.true_shape.dtype == torch.int32 and views.prior_repaired.tolist() == [0, 0]
    if size == 224:
        assert torch.equal(views.img[:1], torch.from_numpy(outputs["img_224_00000"]))  # bit-exact
    img = views.img
    assert img.dtype == torch.float32 and img.shape == (2, 3, *views.image_size)
    assert img.min() >= -1 and img.max() <= 1
    assert torch.equal(views.image_tensor([1]), img[1:])


@pytest.mark.parametrize(("w", "h", "size", "expected_hw"), [
    (854, 480, 512, (288, 512)),  # DAVIS
    (1024, 436, 512, (208, 512)),  # Sintel: 512x218 cropped to 512x208
    (640, 480, 512, (384, 512)),  # TUM / Bonn
    (682, 384, 512, (288, 512)),  # processed PointOdyssey
    (480, 854, 512, (512, 288)),  # portrait
    (600, 600, 512, (384, 512)),  # square → 4:3 landscape crop, as upstream
    (854, 480, 224, (224, 224)),
    (480, 854, 224, (224, 224)),
])
def test_view_sizes_follow_the_reference_table(w, h, size, expected_hw):
    g = compute_view_geometry(h, w, size)
    assert g.output_hw == expected_hw
    assert all(s % 16 == 0 for s in g.output_hw)
    frame = np.zeros((h, w, 3), np.uint8)
    assert make_views([frame, frame], size).rgb.shape == (2, *expected_hw, 3)


def test_square_ok_keeps_square_frames_square():
    assert compute_view_geometry(600, 600, 512, square_ok=True).output_hw == (512, 512)


def test_resize_without_crop_keeps_the_whole_frame(priors, frames):
    # 640x500 → 512x400 → the 512-mode crop would drop rows; crop=False squeezes them instead
    rng = np.random.default_rng(0)
    frame = cv2.resize(rng.integers(0, 255, (50, 64, 3), dtype=np.uint8), (640, 500))
    cropped = make_views([frame, frame], 512)
    whole = make_views([frame, frame], 512, crop=False)
    assert cropped.image_size == whole.image_size == (400, 512)
    g = compute_view_geometry(500, 640, 512, crop=False)
    assert g.resized_hw == (400, 512) and g.crop_box == (0, 0, 512, 400)
    g = compute_view_geometry(500, 637, 512, crop=False)  # 512x402 → 512x400, no crop
    other = make_views([frame[:, :637], frame[:, :637]], 512, crop=False)
    expected = PIL.Image.fromarray(frame[:, :637]).resize((512, 402), PIL.Image.LANCZOS).resize(
        (512, 400), PIL.Image.LANCZOS)
    np.testing.assert_array_equal(other.rgb[0].numpy(), np.asarray(expected))
    # the prior follows with a second (cubic) resize and stays finite and in range
    depth = np.linspace(1, 5, 500 * 637, dtype=np.float32).reshape(500, 637)
    view = make_views([frame[:, :637]] * 2, 512, crop=False, priors=[DepthPrior(depth, 500.0, "depth")] * 2)
    assert view.prior_pts3d.shape == (2, 400, 512, 3)
    assert torch.isfinite(view.prior_pts3d).all() and view.prior_pts3d.amin() > -0.01


def _project(pts: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """(M, 3) camera points → (M, 2) pixel coordinates under K."""
    return (pts @ k.T)[:, :2] / pts[:, 2:]


def test_intrinsics_move_with_the_view():
    rng = np.random.default_rng(1)
    for crop, size in ((True, 224), (False, 512), (True, 512)):
        frame = np.zeros((500, 640, 3), np.uint8)
        views = make_views([frame, frame], size, crop=crop)
        k_net = torch.tensor([[400.0, 0, views.image_size[1] / 2], [0, 410.0, views.image_size[0] / 2], [0, 0, 1]],
                             dtype=torch.float64)
        k_orig = views.to_original_intrinsics(k_net)
        assert torch.allclose(views.to_network_intrinsics(k_orig), k_net)
        # a 3-D point projects to network pixel u_net and to original pixel u_orig; the view's
        # resize/crop maps pixel centres u_orig + 0.5 → u_net + 0.5 (corner coordinates)
        pts = torch.from_numpy(rng.uniform([-1, -1, 2], [1, 1, 6], size=(20, 3)))
        (sx, sy), (bx, by) = views.geometry.scale_xy, views.geometry.offset_xy
        mapped = (_project(pts, k_orig) + 0.5) * torch.tensor([sx, sy], dtype=torch.float64) + torch.tensor([bx, by]) - 0.5
        assert torch.allclose(mapped, _project(pts, k_net), atol=1e-9)


def test_resize_to_original_inverts_the_view():
    frame = np.zeros((480, 854, 3), np.uint8)
    whole = make_views([frame], 512, crop=False, priors=None)
    maps = torch.rand(1, 288, 512, dtype=torch.float64)
    back = whole.resize_to_original(maps)
    expected = cv2.resize(maps[0].numpy(), (854, 480), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(back[0].numpy(), expected, atol=1e-6)
    assert whole.original_coverage().all()

    square = make_views([frame], 224)  # columns 87..310 of the 399-wide resize are kept
    coverage = square.original_coverage()
    cols = coverage.any(dim=0).nonzero()[:, 0]
    assert coverage.all(dim=0)[cols].all() and 180 <= cols[0] <= 190 and 660 <= cols[-1] <= 670
    ramp = torch.arange(224, dtype=torch.float32).repeat(1, 224, 1)  # value = network column
    back = square.resize_to_original(ramp)
    assert back.shape == (1, 480, 854)
    assert back[0, :, 0].eq(0).all() and back[0, :, -1].eq(223).all()  # clamped outside the crop
    inside = back[0, 240, cols]
    assert torch.all(inside[1:] >= inside[:-1])
    labels = torch.randint(0, 5, (1, 224, 224, 2))
    nearest = square.resize_to_original(labels, mode="nearest")
    assert nearest.dtype == labels.dtype and set(nearest.unique().tolist()) <= set(range(5))


def test_select_and_frame_sequences(frames, priors):
    seq = frames_from_arrays(frames, names=list(STEMS))
    views = make_views(seq, 224, priors=priors)
    one = views.select([1])
    assert len(one) == 1 and torch.equal(one.rgb[0], views.rgb[1])
    assert torch.equal(one.prior_pts3d[0], views.prior_pts3d[1])


def test_bad_view_inputs(frames, priors):
    with pytest.raises(InputError, match="different sizes"):
        make_views([frames[0], frames[0][:, :500]], 512)
    with pytest.raises(InputError, match="2 frames"):
        make_views(frames, 512, priors=priors[:1])
    with pytest.raises(InputError, match="uint8"):
        make_views([frames[0].astype(np.float32)], 512)
    with pytest.raises(InputError, match="too elongated"):
        make_views([np.zeros((4, 900, 3), np.uint8)], 512)
    nan_prior = DepthPrior(np.full((480, 854), np.nan, np.float32), 600.0, "depth")
    with pytest.raises(InputError, match="depth prior of frame 1"):
        make_views(frames, 512, priors=[priors[0], nan_prior])

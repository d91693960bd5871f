"""User-supplied depth: official caches (golden fixtures), real 7-Scenes 16-bit PNGs, .npy/.npz folders."""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from align3r.errors import InputError
from align3r.io import make_views
from align3r.io.view_geometry import compute_view_geometry
from align3r.pipeline import PipelineConfig, prepare_input
from align3r.priors import load_prior
from align3r.priors.external import FolderPrior, OfficialCachePrior, read_depth_file
from align3r.priors.official_cache import official_cache_ok, official_cache_path, write_official_cache
from align3r.priors.pointmap import match_prior_to_frame, prior_to_view
from align3r.priors.types import DepthPrior

STEMS = ("00000", "00010")


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


@pytest.fixture(scope="module")
def fixture_frames(fixtures_dir) -> tuple[list[Path], list[np.ndarray]]:
    paths = [fixtures_dir / "prior" / f"{stem}.jpg" for stem in STEMS]
    return paths, [_rgb(p) for p in paths]


@pytest.fixture(scope="module")
def kitchen(data_dir) -> Path:
    return data_dir / "seven_scenes_redkitchen_tsdf" / "data"


# --- the official caches (fixtures made by the official code) ---------------------------------

def test_official_depth_pro_cache_beside_frames(fixture_frames):
    paths, images = fixture_frames
    priors = load_prior("official-cache:depthpro").predict(images, frame_names=[str(p) for p in paths])
    for path, prior, focal in zip(paths, priors, (612.375, 598.625)):
        stored = np.load(official_cache_path(path, "depthpro"))
        assert prior.kind == "depth" and prior.focal_px == focal
        np.testing.assert_array_equal(prior.depth, stored["depth"])  # already at 480x854: untouched
        assert prior.source.endswith(f"{path.stem}_pred_depth_depthpro.npz")


@pytest.mark.parametrize("model", ["depthpro", "depthanything"])
def test_official_caches_beside_the_frames_through_the_pipeline(fixtures_dir, fixture_frames, model, tmp_path,
                                                                monkeypatch):
    """``official-cache:<name>`` without a folder, as infer.yaml offers it: the pipeline hands the
    frame paths on, so the caches are found beside the frames, not in the working directory."""
    paths, images = fixture_frames
    monkeypatch.chdir(tmp_path)
    prepared = prepare_input(fixtures_dir / "prior", PipelineConfig(progress=False), load_prior(f"official-cache:{model}"))
    direct = OfficialCachePrior(model, fixtures_dir / "prior").predict(images, frame_names=[p.stem for p in paths])
    expected = make_views(images, 512, priors=direct, progress=False).prior_pts3d
    assert prepared.names == list(STEMS)
    torch.testing.assert_close(prepared.views.prior_pts3d, expected, rtol=0, atol=0)
    with pytest.raises(InputError, match=f"official-cache:{model}:<folder>"):  # a video frame's bare name
        load_prior(f"official-cache:{model}").predict(images[:1], frame_names=["frame_000000"])


def test_official_depth_anything_cache_in_a_folder(fixture_frames, fixtures_dir):
    paths, images = fixture_frames
    prior = OfficialCachePrior("depthanything", fixtures_dir / "prior")
    priors = prior.predict(images, frame_names=[p.stem for p in paths])  # names, not paths: looked up in folder
    stored = np.load(fixtures_dir / "prior" / "00000_pred_depth_depthanything.npz")["depth"]
    assert stored.shape == (1, 480, 854)
    assert priors[0].kind == "disparity" and priors[0].focal_px is None
    np.testing.assert_array_equal(priors[0].depth, stored[0])


def test_official_caches_found_by_name_in_a_folder(fixture_frames, fixtures_dir):
    paths, images = fixture_frames
    with pytest.raises(InputError, match="several models"):
        FolderPrior(fixtures_dir / "prior")
    prior = FolderPrior(fixtures_dir / "prior", cache_name="depthpro")
    priors = prior.predict(images, frame_names=[p.name for p in paths])
    assert [p.kind for p in priors] == ["depth", "depth"]  # from the _pred_depth_depthpro suffix
    assert [p.focal_px for p in priors] == [612.375, 598.625]


def test_processor_resolution_cache_is_read_at_its_size_and_resampled_for_the_frame(tmp_path, fixture_frames):
    """An official Depth Anything cache at 518x924 for an 854x480 frame: read as stored; the views
    resample it (bilinear) to 480x854 instead of the official 287-row prior (``match_prior_to_frame``,
    what ``make_views(prior_resize="auto")`` does for this size)."""
    _, images = fixture_frames
    rng = np.random.default_rng(0)
    disparity = rng.uniform(0.0, 5.0, (1, 518, 924)).astype(np.float32)
    np.savez_compressed(tmp_path / "00000_pred_depth_depthanything.npz", depth=disparity)
    prior = OfficialCachePrior("depthanything", tmp_path).predict(images[:1], frame_names=["00000"])[0]
    assert prior.depth.shape == (518, 924)
    resized, _ = match_prior_to_frame(prior.depth, prior.focal_px, (480, 854))
    assert resized.shape == (480, 854)
    assert disparity.min() <= resized.min() and resized.max() <= disparity.max()
    # a uniform ramp stays a ramp: bilinear resampling of a linear function is exact
    ramp = np.broadcast_to(np.linspace(1.0, 2.0, 924, dtype=np.float32), (1, 518, 924))
    np.savez_compressed(tmp_path / "00000_pred_depth_depthanything.npz", depth=ramp)
    prior = OfficialCachePrior("depthanything", tmp_path).predict(images[:1], frame_names=["00000"])[0]
    resized, _ = match_prior_to_frame(prior.depth, prior.focal_px, (480, 854))
    np.testing.assert_allclose(resized[240, 100:700], resized[0, 100:700], atol=1e-6)
    assert np.all(np.diff(resized[240]) >= 0)


def test_wrong_aspect_ratio_is_refused(tmp_path, fixture_frames):
    _, images = fixture_frames
    np.save(tmp_path / "00000.npy", np.ones((500, 500), np.float32))
    with pytest.raises(InputError, match=r"00000\.npy.*aspect"):
        FolderPrior(tmp_path).predict(images[:1], frame_names=["00000.jpg"])


def test_missing_official_cache_names_the_file(tmp_path, fixture_frames):
    _, images = fixture_frames
    with pytest.raises(InputError, match=r"00000_pred_depth_depthpro\.npz"):
        OfficialCachePrior("depthpro", tmp_path).predict(images[:1], frame_names=["00000"])
    with pytest.raises(InputError, match="frame_names"):
        OfficialCachePrior("depthpro").predict(images[:1])


def test_written_official_cache_round_trips(tmp_path):
    depth = np.random.default_rng(1).uniform(1, 9, (6, 10)).astype(np.float32)
    write_official_cache(tmp_path / "a_pred_depth_depthpro.npz", DepthPrior(depth, 321.5, "depth"), "depthpro")
    write_official_cache(tmp_path / "a_pred_depth_depthanything.npz", DepthPrior(depth, None, "disparity"),
                         "depthanything", focal_px=500.0)
    pro = np.load(tmp_path / "a_pred_depth_depthpro.npz")
    anything = np.load(tmp_path / "a_pred_depth_depthanything.npz")
    assert pro["depth"].shape == (6, 10) and pro["focallength_px"].shape == () and pro["focallength_px"] == 321.5
    assert anything["depth"].shape == (1, 6, 10) and anything["focallength_px"] == 500.0
    assert official_cache_ok(tmp_path / "a_pred_depth_depthpro.npz", "depthpro", (6, 10))
    assert not official_cache_ok(tmp_path / "a_pred_depth_depthpro.npz", "depthpro", (6, 11))
    read, focal = read_depth_file(tmp_path / "a_pred_depth_depthanything.npz")
    np.testing.assert_array_equal(read, depth)
    assert focal == 500.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_pred_depth_depthanything.npz", "a_pred_depth_depthpro.npz"]


# --- real 16-bit PNG sensor depth (7-Scenes, millimetres, 0 = no reading) ---------------------

def test_seven_scenes_png_depth_matched_by_name(kitchen):
    names = [f"frame-{i:06d}.color.jpg" for i in (3, 0, 7)]  # any order: matched by name
    images = [_rgb(kitchen / n) for n in names]
    prior = load_prior(f"external:{kitchen}", scale=1 / 1000, pattern="*.depth.png", focal_px=585.0)
    priors = prior.predict(images, frame_names=names)
    for name, p in zip(names, priors):
        raw = cv2.imread(str(kitchen / name.replace(".color.jpg", ".depth.png")), cv2.IMREAD_UNCHANGED)
        valid = raw > 0
        assert 0.05 < 1 - valid.mean() < 0.15  # the sensor's holes
        assert p.kind == "depth" and p.focal_px == 585.0 and p.depth.shape == (480, 640)
        np.testing.assert_allclose(p.depth[valid], raw[valid].astype(np.float32) / 1000, rtol=1e-6)
        # holes take the value of a valid pixel: positive, within the valid range
        assert (p.depth > 0).all()
        assert raw[valid].min() / 1000 - 1e-6 <= p.depth.min() <= p.depth.max() <= raw.max() / 1000 + 1e-6
        assert 0.7 < np.median(p.depth) < 3.7  # metres, as the data's README says


def test_png_needs_scale_and_16_bits(kitchen, tmp_path):
    with pytest.raises(InputError, match="scale"):
        read_depth_file(kitchen / "frame-000000.depth.png")
    cv2.imwrite(str(tmp_path / "eight.png"), np.full((4, 4), 7, np.uint8))
    with pytest.raises(InputError, match="16-bit"):
        read_depth_file(tmp_path / "eight.png", scale=0.001)


def test_invalid_pixels_fill_or_error(kitchen):
    image = _rgb(kitchen / "frame-000000.color.jpg")
    strict = FolderPrior(kitchen, scale=1 / 1000, pattern="frame-000000.depth.png", invalid="error")
    with pytest.raises(InputError, match="invalid depth pixels"):
        strict.predict([image])


# --- .npy / .npz folders ----------------------------------------------------------------------

def _small_frames(count: int) -> list[np.ndarray]:
    return [np.full((6, 8, 3), i, np.uint8) for i in range(count)]


def _ramp_map(k: int, shape: tuple[int, int] = (6, 8)) -> np.ndarray:
    """A depth map telling file k apart: a ramp from 10k + 1 to 10k + 2 m across the columns."""
    return np.broadcast_to(np.linspace(10 * k + 1, 10 * k + 2, shape[1], dtype=np.float32), shape).copy()


def test_npy_folder_in_natural_order_without_names(tmp_path):
    for i in (1, 2, 10):
        np.save(tmp_path / f"frame_{i}.npy", np.full((6, 8), float(i), np.float32) + np.eye(6, 8, dtype=np.float32))
    priors = FolderPrior(tmp_path, scale=2.0).predict(_small_frames(3), focal_px=[100.0, None, 300.0])
    assert [float(np.median(p.depth)) for p in priors] == [2.0, 4.0, 20.0]  # frame_2 before frame_10, x2
    assert [p.focal_px for p in priors] == [100.0, None, 300.0]  # the caller's focal when the file has none


def test_npz_focal_priority_and_kind(tmp_path):
    depth = np.arange(48, dtype=np.float32).reshape(6, 8) + 1
    np.savez(tmp_path / "a.npz", depth=depth, focal_px=np.float32(50.0))
    [from_file] = FolderPrior(tmp_path).predict(_small_frames(1), focal_px=[99.0], frame_names=["a.png"])
    assert from_file.focal_px == 50.0  # the file's focal beats the caller's
    [given] = FolderPrior(tmp_path, focal_px=70.0, kind="disparity").predict(_small_frames(1), frame_names=["a"])
    assert given.focal_px == 70.0 and given.kind == "disparity"


def test_matching_errors_name_what_is_wrong(tmp_path):
    for name in ("a", "b"):
        np.save(tmp_path / f"{name}.npy", np.arange(48, dtype=np.float32).reshape(6, 8) + 1)
    with pytest.raises(InputError, match=r"no depth file for frame 'c\.jpg'"):
        FolderPrior(tmp_path).predict(_small_frames(2), frame_names=["a.jpg", "c.jpg"])
    with pytest.raises(InputError, match="2 depth files for 3 frames"):
        FolderPrior(tmp_path).predict(_small_frames(3))
    with pytest.raises(InputError, match="does not exist"):
        FolderPrior(tmp_path / "nowhere")
    (tmp_path / "a_depth.npy").write_bytes((tmp_path / "a.npy").read_bytes())
    with pytest.raises(InputError, match="both match frame 'a'"):
        FolderPrior(tmp_path).predict(_small_frames(2), frame_names=["a", "b"])


def test_files_in_order_follow_the_source_index_of_each_frame(tmp_path):
    for i in range(5):
        np.save(tmp_path / f"{i:04d}.npy", _ramp_map(i))
    picked = FolderPrior(tmp_path).predict(_small_frames(2), frame_names=["x", "y"], frame_indices=[3, 1])
    assert [p.source[-8:] for p in picked] == ["0003.npy", "0001.npy"]
    with pytest.raises(InputError, match=r"5 depth files.*source frame 7 was asked for"):
        FolderPrior(tmp_path).predict(_small_frames(2), frame_indices=[2, 7])


@pytest.mark.parametrize(("stride", "start"), [(1, 0), (3, 2)])
def test_depth_files_in_order_through_the_pipeline_chunks(tmp_path, stride, start):
    """40 frames (two pipeline chunks of 32) and depth files 0000.npy.. whose names do not match
    the frames': file k belongs to source frame k, whatever the stride, start and chunking."""
    frames, depth = tmp_path / "frames", tmp_path / "depth"
    frames.mkdir()
    depth.mkdir()
    rng = np.random.default_rng(0)
    for k in range(40):
        Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).save(frames / f"img_{k:04d}.png")
        np.save(depth / f"{k:04d}.npy", _ramp_map(k))
    config = PipelineConfig(size=224, stride=stride, start=start, progress=False)
    prepared = prepare_input(frames, config, load_prior(f"external:{depth}"), need_mono_depth=True)
    expected = np.arange(start, 40, stride)
    np.testing.assert_array_equal(prepared.indices, expected)
    medians = prepared.mono_depth.flatten(1).median(dim=1).values.numpy()
    np.testing.assert_allclose(medians, 10 * expected + 1.5, atol=0.2)  # _ramp_map(k) spans 10k+1 .. 10k+2
    for extra in range(32, 40):  # exactly one chunk's worth of files: no silent reuse
        (depth / f"{extra:04d}.npy").unlink()
    with pytest.raises(InputError, match=r"32 depth files.*source frame 3\d was asked for"):
        prepare_input(frames, config, load_prior(f"external:{depth}"))


def test_holes_in_depth_files_are_filled_with_a_warning_up_to_half_the_map(tmp_path, caplog):
    """One rule per kind of prior, both in ``align3r.priors.pointmap``: a depth file may have up
    to 50 % holes (sensor depth), a model's prior up to 5 %."""
    holes = _ramp_map(0, (20, 30))
    holes[:, :6] = 0.0  # 20 %
    np.save(tmp_path / "a.npy", holes)
    with caplog.at_level(logging.WARNING, logger="align3r"):
        [filled] = FolderPrior(tmp_path).predict([np.zeros((20, 30, 3), np.uint8)], frame_names=["a"])
    assert (filled.depth > 0).all()
    assert any(r.levelno == logging.WARNING and "a.npy" in r.getMessage() for r in caplog.records)
    with pytest.raises(InputError, match="at most 5%"):
        prior_to_view(DepthPrior(holes, 100.0, "depth"), compute_view_geometry(20, 30, 224))
    holes[:, :16] = 0.0  # 53 %
    np.save(tmp_path / "a.npy", holes)
    with pytest.raises(InputError, match=r"a\.npy: 53\.3% of its depth pixels are invalid.*at most 50%"):
        FolderPrior(tmp_path).predict([np.zeros((20, 30, 3), np.uint8)], frame_names=["a"])


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: np.save(p / "x.npy", np.ones((2, 6, 8), np.float32)), r"x\.npy.*shape \(2, 6, 8\)"),
    (lambda p: np.savez(p / "x.npz", disparity=np.ones((6, 8), np.float32)), r"x\.npz.*no array named 'depth'"),
    (lambda p: (p / "x.npy").write_bytes(b"\x93NUMPY garbage"), r"cannot read depth file .*x\.npy"),
    (lambda p: np.save(p / "x.npy", np.zeros((6, 8), np.float32)), r"x\.npy.*100\.0% of its depth pixels.*at most 50%"),
    (lambda p: np.save(p / "x.npy", np.full((6, 8), 3.0, np.float32)), r"x\.npy.*constant"),
])
def test_unreadable_or_wrong_files_name_the_file(tmp_path, make, message):
    make(tmp_path)
    with pytest.raises(InputError, match=message):
        FolderPrior(tmp_path).predict(_small_frames(1))


def test_truncated_npz_names_the_file(tmp_path):
    np.savez(tmp_path / "x.npz", depth=np.arange(48, dtype=np.float32).reshape(6, 8))
    data = (tmp_path / "x.npz").read_bytes()
    (tmp_path / "x.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cannot read depth file .*x\.npz"):
        FolderPrior(tmp_path).predict(_small_frames(1))


def test_unknown_prior_name_lists_the_choices():
    with pytest.raises(InputError, match="external:<folder>"):
        load_prior("midas")

"""Pair datasets, views, mixtures and samplers on tiny processed sets."""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from align3r.data import (
    PairSampleSet,
    PointOdysseyPairs,
    ProcessedPairs,
    ResizedPairs,
    ResolutionBatchSampler,
    SceneFlowPairs,
    SequentialBatchSampler,
    SintelPairs,
    SpringPairs,
    TartanAirPairs,
    VKitti2Pairs,
    build_mixture,
    window_pairs,
)
from align3r.data.prepare import common, flyingthings3d, pointodyssey, sceneflow, spring, tartanair, vkitti2
from align3r.errors import InputError
from align3r.priors.pointmap import prior_depthmap, prior_pointmap

TRAIN_RES = [(512, 288), (512, 336), (512, 256)]


def test_window_pairs_are_all_pairs_within_the_gap():
    pairs = window_pairs([5, 14], max_gap=10)
    seq0 = pairs[pairs[:, 0] == 0]
    assert len(seq0) == 10  # C(5, 2)
    seq1 = pairs[pairs[:, 0] == 1]
    assert len(seq1) == sum(min(10, 13 - i) for i in range(13))
    assert np.all(pairs[:, 1] < pairs[:, 2]) and np.all(pairs[:, 2] - pairs[:, 1] <= 10)


def test_identity_view_geometry_is_float_exact(tmp_path, synth):
    """Raw → prepared → loaded at the processed resolution without augmentation: the GT points of
    both views lie on the box walls to float precision, and the prior is the exact point map."""
    _k, poses = synth.write_pointodyssey(tmp_path / "raw", n=2, size=(512, 384))
    common.prepare_sequences(pointodyssey.raw_sequences(tmp_path / "raw", splits=("train",)),
                             tmp_path / "proc", progress=False)
    assert synth.write_priors(tmp_path / "proc") == 2
    ds = PointOdysseyPairs(tmp_path / "proc" / "train", resolution=(512, 384))
    assert len(ds) == 1
    v1, v2 = ds.get_pair(0, 0, np.random.default_rng(0))
    for view, pose in ((v1, poses[0]), (v2, poses[1])):
        assert view["img"].shape == (3, 384, 512) and view["true_shape"].tolist() == [384, 512]
        pts = view["pts3d"].numpy()
        assert view["valid_mask"].all()
        # the uint16 depth quantisation (1.5 cm) is the only error source here
        assert synth.box_residual(pts).max() < 0.02
        # world frame is PointOdyssey's (flipped by diag(1,-1,-1)): camera centres match
        np.testing.assert_allclose(view["camera_pose"][:3, 3].numpy(), synth.BLENDER[:3, :3] @ pose[:3, 3],
                                   atol=1e-4)
        depth = view["depthmap"].numpy()
        prior = np.load(view["instance"].replace(".jpg", "_pred_depth_depthpro.npz"))
        np.testing.assert_array_equal(view["prior_pts3d"].numpy(), prior_pointmap(prior["depth"], float(prior["focallength_px"])))
        assert depth.shape == (384, 512)
    assert torch.all(v1["img"] >= -1) and torch.all(v1["img"] <= 1)
    # the supp. Table 2 ablation: the same views with the depth-map representation of the prior
    ds_depth = PointOdysseyPairs(tmp_path / "proc" / "train", resolution=(512, 384), prior_input="depthmap")
    for view in ds_depth.get_pair(0, 0, np.random.default_rng(0)):
        prior = np.load(view["instance"].replace(".jpg", "_pred_depth_depthpro.npz"))
        np.testing.assert_array_equal(view["prior_pts3d"].numpy(), prior_depthmap(prior["depth"]))
    with pytest.raises(InputError, match="prior representation"):
        PointOdysseyPairs(tmp_path / "proc" / "train", resolution=(512, 384), prior_input="normals")


@dataclass(frozen=True)
class RawSample:
    """A raw-format sample of one training set and where its prepared form is read from."""

    write: Callable  # (synth, raw root) -> None
    sequences: Callable  # raw root -> [RawSequence]
    processed: str  # the processed folder, relative to the test folder (as under data_root)
    dataset: Callable  # (test folder, **options) -> the set's pair dataset


def _sceneflow_pairs(root, **kwargs):
    return SceneFlowPairs(root / "SceneFlow", split="train", **kwargs)


RAW_SAMPLES = {
    "flyingthings3d": RawSample(
        lambda synth, raw: synth.write_sceneflow_sequence(raw, "TRAIN/A/0000", fx=1050.0, cams=("left", "right")),
        flyingthings3d.raw_sequences, "SceneFlow/FlyingThings3D_proc", _sceneflow_pairs),
    "driving": RawSample(
        lambda synth, raw: synth.write_sceneflow_sequence(raw, "15mm_focallength/scene_forwards/fast", fx=450.0),
        sceneflow.driving_sequences, "SceneFlow/Driving_proc", _sceneflow_pairs),
    "monkaa": RawSample(
        lambda synth, raw: synth.write_sceneflow_sequence(raw, "a_rain_of_stones_x2", fx=1050.0, seed=1),
        sceneflow.monkaa_sequences, "SceneFlow/Monkaa_proc", _sceneflow_pairs),
    "tartanair": RawSample(lambda synth, raw: synth.write_tartanair(raw, n=2), tartanair.raw_sequences,
                           "Tartanair_proc", lambda root, **kw: TartanAirPairs(root / "Tartanair_proc", **kw)),
    "spring": RawSample(lambda synth, raw: synth.write_spring(raw, n=2), spring.raw_sequences, "spring_proc",
                        lambda root, **kw: SpringPairs(root / "spring_proc" / "train", **kw)),
    "vkitti2": RawSample(lambda synth, raw: synth.write_vkitti2(raw, n=2), vkitti2.raw_sequences,
                         "vkitti_2.0.3_proc", lambda root, **kw: VKitti2Pairs(root / "vkitti_2.0.3_proc", **kw)),
}


@pytest.mark.parametrize("name", sorted(RAW_SAMPLES))
def test_prepared_raw_samples_load_with_agreeing_geometry(tmp_path, synth, name):
    """Raw format → preparation script → the set's dataset class with the paper's augmentations, at
    each training resolution: the GT points of both views of every pair agree in world space.

    Tolerances come from the synthetic samples' quantisation only: depth is resampled nearest-
    neighbour twice (preparation, then the view crop; each moves a depth by up to half a source
    pixel, up to two output pixels where the 128×96 Spring/VKITTI2 samples are enlarged ×4), view
    1's points are rounded to view 2's pixel grid, and VKITTI2 depth is in whole centimetres. On
    the box's walls this stays below 0.1 % of the depth for the median pixel and ~2 % at grazing
    ones (measured: median ≤ 1e-3, max 2.2e-2); a wrong pose, such as the right camera's (0.5
    units away), disagrees by several per cent almost everywhere.
    """
    if name == "spring":
        pytest.importorskip("h5py")
    sample = RAW_SAMPLES[name]
    sample.write(synth, tmp_path / "raw")
    common.prepare_sequences(sample.sequences(tmp_path / "raw"), tmp_path / sample.processed, progress=False)
    synth.write_priors(tmp_path / sample.processed)
    ds = sample.dataset(tmp_path, resolution=TRAIN_RES, aug_crop=16, aug_focal=True, color_jitter=True)
    assert len(ds) >= 1
    for idx in range(len(ds)):
        for res_idx, (w, h) in enumerate(TRAIN_RES):
            views = ds.get_pair(idx, res_idx, np.random.default_rng(idx))
            for view, other in (views, views[::-1]):
                assert view["pts3d"].shape == (h, w, 3) and view["valid_mask"].shape == (h, w, 2)
                valid = view["valid_mask"].numpy()[..., 0]
                assert valid.mean() > 0.99  # every wall is nearer than 400
                rel, num_points = synth.cross_view_depth_error(view, other)
                assert len(rel) > 0.3 * num_points  # consecutive frames overlap a lot
                assert np.median(rel) < 2e-3 and rel.max() < 0.05, (np.median(rel), rel.max())
                residual = synth.box_residual(view["pts3d"].numpy()[valid])
                assert np.median(residual) < 5e-3 and residual.max() < 0.05, (np.median(residual), residual.max())


def test_processed_views_agree_in_world_space(tmp_path, synth):
    """Direct processed sequence (float PFM depth): the two views' GT points are on the same walls,
    to float error, at the processed resolution."""
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=3, size=(96, 64))
    ds = ProcessedPairs(tmp_path / "set", resolution=(96, 64))
    assert len(ds) == 3
    for idx in range(len(ds)):
        for view in ds.get_pair(idx, 0, np.random.default_rng(idx)):
            assert synth.box_residual(view["pts3d"].numpy()).max() < 1e-4


@pytest.mark.parametrize("res_idx", [0, 1, 2])
def test_augmented_views_have_the_resolution_and_consistent_geometry(tmp_path, synth, res_idx):
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=3, size=(682, 384))
    ds = ProcessedPairs(tmp_path / "set", resolution=TRAIN_RES, aug_crop=16, aug_focal=True, color_jitter=True)
    views = ds.get_pair(1, res_idx, np.random.default_rng(5))
    w, h = TRAIN_RES[res_idx]
    for view in views:
        assert view["img"].shape == (3, h, w)
        assert view["prior_pts3d"].shape == (h, w, 3) and view["pts3d"].shape == (h, w, 3)
        assert view["true_shape"].tolist() == [h, w]
        # intrinsics of the crop keep the principal point near the centre
        k = view["camera_intrinsics"].numpy()
        assert abs(k[0, 2] - w / 2) <= 1 and abs(k[1, 2] - h / 2) <= 1
        # nearest resampling: points stay within a fraction of a pixel footprint of the walls
        residual = synth.box_residual(view["pts3d"].numpy())
        assert np.median(residual) < 5e-3 and np.percentile(residual, 99) < 0.05
        assert 0 <= view["prior_pts3d"].min() and view["prior_pts3d"].max() <= 1


def test_valid_mask_channels_are_the_references(synth):
    """(H, W, 2): channel 0 = 0 < depth < 400 (the losses' mask), channel 1 = depth > 0, both only
    where the GT point is finite (official
    ``dust3r/utils/geometry.py``, ``depthmap_to_camera_coordinates``;
    ``BaseStereoViewDataset.__getitem__``)."""
    from PIL import Image

    from align3r.data import ViewAugmentation, make_view

    depth = np.full((64, 96), 5.0, dtype=np.float32)
    depth[:10, :10] = 0.0
    depth[20:30, 20:30] = 450.0  # known but too far for the loss
    depth[40:50, 40:50] = np.inf  # non-finite GT point
    k = synth.pinhole(50.0, 50.0, 48.0, 32.0)

    def mask_of(depth):
        with np.errstate(invalid="ignore"):  # inf · 0
            view = make_view(Image.new("RGB", (96, 64)), depth, np.zeros((64, 96, 3), np.float32), k, np.eye(4),
                             (96, 64), np.random.default_rng(0), ViewAugmentation())
        np.testing.assert_array_equal(view["depthmap"].numpy(), depth)  # identity geometry
        assert view["valid_mask"].shape == (64, 96, 2) and view["valid_mask"].dtype == torch.bool
        return view["valid_mask"].numpy()

    mask = mask_of(depth)
    np.testing.assert_array_equal(mask[..., 0], (depth > 0) & (depth < 400))
    np.testing.assert_array_equal(mask[..., 1], (depth > 0) & np.isfinite(depth))
    # nothing below 400: channel 0 falls back to the nearest pixels, channel 1 is unchanged
    far = np.where(depth == 5.0, 500.0, depth).astype(np.float32)
    mask = mask_of(far)
    np.testing.assert_array_equal(mask[..., 0], far == 450.0)
    np.testing.assert_array_equal(mask[..., 1], (far > 0) & np.isfinite(far))


def test_focal_augmentation_zooms_in(tmp_path, synth):
    k, _ = synth.write_processed_sequence(tmp_path / "set" / "seq0", n=2, size=(320, 160))
    plain = ProcessedPairs(tmp_path / "set", resolution=(320, 160))
    zoom = ProcessedPairs(tmp_path / "set", resolution=(320, 160), aug_focal=True)
    focals = {float(zoom.get_pair(0, 0, np.random.default_rng(s))[0]["camera_intrinsics"][0, 0]) for s in range(20)}
    f0 = float(plain.get_pair(0, 0, np.random.default_rng(0))[0]["camera_intrinsics"][0, 0])
    assert f0 == pytest.approx(k[0, 0], rel=1e-6)
    # keeping 80/90/100 % of the image and rescaling to the same size multiplies the focal by 1/s
    assert sorted(round(f / f0, 4) for f in focals) == [1.0, 1.1111, 1.25]


def test_portrait_frames_are_stored_landscape(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=2, size=(64, 96))  # portrait
    ds = ProcessedPairs(tmp_path / "set", resolution=(96, 64))
    view = ds.get_pair(0, 0, np.random.default_rng(0))[0]
    assert view["true_shape"].tolist() == [96, 64]  # true (H, W)
    assert view["img"].shape == (3, 64, 96) and view["valid_mask"].shape == (64, 96, 2)  # stored transposed
    pts = view["pts3d"].numpy()
    assert synth.box_residual(pts).max() < 1e-4
    k = view["camera_intrinsics"].numpy()
    assert k[0, 2] == pytest.approx(48) and k[1, 2] == pytest.approx(32)  # intrinsics of the stored image


def test_missing_prior_is_a_clear_error(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=2, size=(96, 64), prior_names=())
    ds = ProcessedPairs(tmp_path / "set", resolution=(96, 64))
    with pytest.raises(InputError, match="align3r prior --dataset"):
        ds.get_pair(0, 0, np.random.default_rng(0))


def test_depthanything_prior_at_processor_resolution_is_resampled(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=2, size=(96, 64), prior_names=())
    for rgb in (tmp_path / "set" / "seq0").glob("*_rgb.jpg"):
        disparity = np.random.default_rng(0).uniform(0.1, 1.0, (1, 42, 63)).astype(np.float32)
        np.savez(rgb.with_name(rgb.stem + "_pred_depth_depthanything.npz"), depth=disparity)
    ds = ProcessedPairs(tmp_path / "set", resolution=(96, 64), prior_name="depthanything")
    view = ds.get_pair(0, 0, np.random.default_rng(0))[0]
    assert view["prior_pts3d"].shape == (64, 96, 3)
    assert torch.isfinite(view["prior_pts3d"]).all()


def test_dataset_subclass_layouts(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "tartan" / "office_Easy_P000_left", n=2)
    synth.write_processed_sequence(tmp_path / "tartan" / "office_Hard_P000_left", n=2)
    assert len(TartanAirPairs(tmp_path / "tartan", resolution=(96, 64)).sequences) == 1
    for rel in ("Driving_proc/15mm/fw/fast/left", "Monkaa_proc/scene/left", "FlyingThings3D_proc/TRAIN/A/0000/left",
                "FlyingThings3D_proc/TEST/A/0000/left"):
        synth.write_processed_sequence(tmp_path / "sf" / rel, n=2)
    assert len(SceneFlowPairs(tmp_path / "sf", split="train", resolution=(96, 64)).sequences) == 3
    assert len(SceneFlowPairs(tmp_path / "sf", split="test", resolution=(96, 64)).sequences) == 1
    synth.write_processed_sequence(tmp_path / "vk" / "scene0000_left", n=3)
    assert len(VKitti2Pairs(tmp_path / "vk", resolution=(96, 64))) == 3
    assert len(VKitti2Pairs(tmp_path / "vk", resolution=(96, 64), list_scenes_twice=True)) == 6


def test_sintel_raw_layout(tmp_path, synth):
    from PIL import Image

    root = tmp_path / "MPI-Sintel" / "MPI-Sintel-training_images" / "training" / "final"
    gt = tmp_path / "MPI-Sintel" / "MPI-Sintel-depth-training" / "training"
    prior = tmp_path / "MPI-Sintel" / "MPI-Sintel-training_images" / "training" / "depth_prediction_depthpro"
    k = synth.pinhole(100.0, 100.0, 48.0, 32.0)
    poses = synth.camera_poses(5)
    for d in (root / "alley_1", gt / "depth" / "alley_1", gt / "camdata_left" / "alley_1", prior / "alley_1"):
        d.mkdir(parents=True)
    for i in range(5):
        depth = synth.render_depth(k, poses[i], 96, 64)
        synth.texture(k, poses[i], depth).save(root / "alley_1" / f"frame_{i + 1:04d}.png")
        with open(gt / "depth" / "alley_1" / f"frame_{i + 1:04d}.dpt", "wb") as f:
            np.array([202021.25], "<f4").tofile(f)
            np.array([96, 64], "<i4").tofile(f)
            depth.astype("<f4").tofile(f)
        with open(gt / "camdata_left" / "alley_1" / f"frame_{i + 1:04d}.cam", "wb") as f:
            np.array([202021.25], "<f4").tofile(f)
            k.astype("<f8").tofile(f)
            np.linalg.inv(poses[i])[:3].astype("<f8").tofile(f)
        np.savez(prior / "alley_1" / f"frame_{i + 1:04d}.npz", depth=depth, focallength_px=np.float32(100))
    assert isinstance(Image.open(root / "alley_1" / "frame_0001.png"), Image.Image)
    ds = SintelPairs(root, resolution=(96, 64))
    assert len(ds) == 4 + 3 + 2  # gaps 1, 2, 3
    for view in ds.get_pair(3, 0, np.random.default_rng(0)):
        assert synth.box_residual(view["pts3d"].numpy()).max() < 1e-4
    # priors beside the frames (what `align3r prior <sequence>` writes) are found too
    for npz in (prior / "alley_1").glob("*.npz"):
        npz.rename(root / "alley_1" / f"{npz.stem}_pred_depth_depthpro.npz")
    assert ds.get_pair(0, 0, np.random.default_rng(0))[0]["prior_pts3d"].shape == (64, 96, 3)


def test_resized_mixture_is_a_per_epoch_permutation(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=4, size=(96, 64))
    base = ProcessedPairs(tmp_path / "set", resolution=(96, 64))  # 6 pairs
    mix = ResizedPairs(14, base)
    mix.set_epoch(0)
    first = mix._mapping.copy()
    assert len(first) == 14 and sorted(first[:6]) == list(range(6)) and sorted(first[6:12]) == list(range(6))
    mix.set_epoch(0)
    np.testing.assert_array_equal(mix._mapping, first)
    mix.set_epoch(1)
    assert not np.array_equal(mix._mapping, first)


def test_build_mixture_from_config_entries(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "a" / "seq", n=3, size=(96, 64))
    synth.write_processed_sequence(tmp_path / "b" / "seq", n=3, size=(96, 64))
    mix = build_mixture([{"name": "processed", "size": 10, "root": str(tmp_path / "a")},
                         {"name": "pointodyssey", "size": 5, "root": str(tmp_path / "b")}],
                        common={"resolution": [[96, 64]], "prior_name": "depthpro"})
    assert len(mix) == 15
    with pytest.raises(InputError, match="unknown dataset"):
        build_mixture([{"name": "nope", "root": "x"}])
    with pytest.raises(InputError, match="landscape"):
        build_mixture([{"name": "processed", "root": str(tmp_path / "a"), "resolution": [64, 96]}])


def test_samples_are_deterministic_per_epoch_and_index(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=3, size=(160, 96))
    pairs = ProcessedPairs(tmp_path / "set", resolution=[(128, 64), (96, 64)], aug_crop=16, aug_focal=True,
                           color_jitter=True)
    a, b = PairSampleSet(pairs, seed=3), PairSampleSet(pairs, seed=3)
    x, y = a[(2, 1)], b[(2, 1)]
    for vx, vy in zip(x, y):
        for key in ("img", "pts3d", "prior_pts3d", "camera_intrinsics"):
            assert torch.equal(vx[key], vy[key])
    assert x[0]["idx"].tolist() == [2, 1, 0] and x[1]["idx"].tolist() == [2, 1, 1]
    b.set_epoch(1)
    assert not torch.equal(b[(2, 1)][0]["img"], x[0]["img"])  # new epoch, new augmentation


def test_sampler_one_resolution_per_global_batch_and_world_size_invariance():
    single = ResolutionBatchSampler(23, batch_size=4, num_resolutions=3)
    single.set_epoch(4)
    batches = list(single)
    assert len(batches) == len(single) == 5  # 23 // 4, tail dropped
    assert all(len({r for _, r in b}) == 1 for b in batches)
    assert len({i for b in batches for i, _ in b}) == 20  # no repeats
    assert len({b[0][1] for b in batches}) > 1  # resolutions vary across batches
    for world in (2, 4):
        ranks = [ResolutionBatchSampler(23, batch_size=4 // world, num_resolutions=3, world_size=world, rank=r)
                 for r in range(world)]
        for s in ranks:
            s.set_epoch(4)
        merged = [functools.reduce(operator.iadd, parts, []) for parts in zip(*(list(s) for s in ranks))]
        assert merged == batches
    resumed = ResolutionBatchSampler(23, batch_size=4, num_resolutions=3)
    resumed.set_epoch(4)
    resumed.set_start(3)
    assert list(resumed) == batches[3:]


def test_sequential_sampler_covers_everything_once():
    shards = [list(SequentialBatchSampler(7, batch_size=2, world_size=2, rank=r)) for r in range(2)]
    seen = sorted(i for shard in shards for b in shard for i, _ in b)
    assert seen == list(range(7))


def test_loader_collates_views(tmp_path, synth):
    synth.write_processed_sequence(tmp_path / "set" / "seq0", n=3, size=(96, 64))
    samples = PairSampleSet(ResizedPairs(4, ProcessedPairs(tmp_path / "set", resolution=(96, 64))), seed=0)
    sampler = ResolutionBatchSampler(len(samples), batch_size=2, num_resolutions=1)
    view1, view2 = next(iter(torch.utils.data.DataLoader(samples, batch_sampler=sampler)))
    assert view1["img"].shape == (2, 3, 64, 96) and view1["true_shape"].dtype == torch.int32
    assert view2["prior_pts3d"].shape == (2, 64, 96, 3) and len(view1["instance"]) == 2

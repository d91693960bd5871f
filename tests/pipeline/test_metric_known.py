"""The pipeline's wiring of metric scale, known poses and user masks (tiny random network).

The network's geometry is meaningless here: what is checked is that each setting reaches its
stage and its outputs (the metric and pose rules themselves are tested with exact predictions in
``tests/align/test_metric_known_7scenes.py``)."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
import torch

from align3r.errors import InputError
from align3r.export.reader import load_reconstruction
from align3r.io.trajectory import Trajectory, read_tum_trajectory, write_tum_trajectory
from align3r.pipeline import run_pipeline

FRAMES = (0, 5, 10, 15)


@pytest.fixture(scope="module")
def clip7(data_dir, tmp_path_factory):
    """Four 7-Scenes frames, their sensor depth as metric .npy files, their poses and masks."""
    src = data_dir / "seven_scenes_redkitchen_tsdf" / "data"
    root = tmp_path_factory.mktemp("seven")
    for sub in ("frames", "depth", "masks"):
        (root / sub).mkdir()
    poses = []
    for k in FRAMES:
        shutil.copy(src / f"frame-{k:06d}.color.jpg", root / "frames")
        mm = cv2.imread(str(src / f"frame-{k:06d}.depth.png"), cv2.IMREAD_UNCHANGED)
        np.save(root / "depth" / f"frame-{k:06d}.depth.npy", mm.astype(np.float32) / 1000)
        mask = np.zeros((480, 640), np.uint8)
        mask[:, 400:] = 255  # the right part "moves"
        cv2.imwrite(str(root / "masks" / f"frame-{k:06d}.png"), mask)
        poses.append(np.loadtxt(src / f"frame-{k:06d}.pose.txt"))
    poses = np.stack(poses)
    u, _, vt = np.linalg.svd(poses[:, :3, :3])  # exactly rigid (KinectFusion's are to ~1e-7)
    poses[:, :3, :3] = u @ vt
    write_tum_trajectory(root / "poses.txt", Trajectory(np.arange(len(FRAMES), dtype=float), poses))
    return root, poses


@pytest.fixture(scope="module")
def settings(tiny_net_dir, clip7, tmp_path_factory):
    root, _ = clip7
    return dict(model=str(tiny_net_dir), prior=f"external:{root / 'depth'}", size=224, flow="dis",
                graph="swin-2-noncyclic", align_overrides={"iterations": 10}, progress=False,
                cache_dir=str(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def relative_and_metric(clip7, settings, tmp_path_factory):
    root, _ = clip7
    out = tmp_path_factory.mktemp("runs")
    relative = run_pipeline(root / "frames", out=out / "relative", scale="relative", **settings)
    metric = run_pipeline(root / "frames", out=out / "metric", prior_metric=True, **settings)  # scale=auto
    return relative, metric, out


def test_metric_scale_rescales_every_output_and_is_recorded(relative_and_metric):
    relative, metric, out = relative_and_metric
    manifest = json.loads((out / "metric" / "manifest.json").read_text())
    record = manifest["scale"]
    assert manifest["depth_units"].startswith("metres (")
    assert record["mode"] == "metric" and record["units"] == "metres"
    factor = record["factor"]
    assert factor == pytest.approx(metric.scale["factor"]) and factor > 0 and factor != pytest.approx(1)
    assert 0 < record["pixels_used"] <= record["pixels_total"] == 4 * 224 * 224
    assert len(record["frame_factors"]) == 4 and record["frame_spread"] >= 0
    rel, met = (load_reconstruction(out / name).reconstruction for name in ("relative", "metric"))
    torch.testing.assert_close(met.depth, rel.depth * factor, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(met.cam2world[:, :3, 3], rel.cam2world[:, :3, 3] * factor, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(met.cam2world[:, :3, :3], rel.cam2world[:, :3, :3])
    tum = [read_tum_trajectory(out / name / "cameras" / "trajectory_tum.txt").positions
           for name in ("relative", "metric")]
    np.testing.assert_allclose(tum[1], tum[0] * factor, rtol=1e-5, atol=1e-6)
    # the factor is prior / aligned depth: the metric depth's median now matches the sensor's
    rel_record = json.loads((out / "relative" / "manifest.json").read_text())["scale"]
    assert rel_record == {"mode": "relative", "units": "relative (one arbitrary global scale)", "factor": 1.0}
    assert relative.scale["mode"] == "relative"


def test_known_poses_and_masks_reach_the_outputs(clip7, settings, tmp_path):
    root, poses = clip7
    result = run_pipeline(root / "frames", out=tmp_path / "out", poses=str(root / "poses.txt"),
                          masks=str(root / "masks"), **{**settings, "graph": "grouped"})
    written = read_tum_trajectory(tmp_path / "out" / "cameras" / "trajectory_tum.txt")
    np.testing.assert_allclose(written.cam2world, poses, rtol=0, atol=1e-6)  # held fixed, the input's units
    assert result.scale["mode"] == "poses"
    dynamic = result.reconstruction.dynamic_mask.cpu()
    assert dynamic.shape == (4, 224, 224)
    assert dynamic[:, :, -40:].all() and not dynamic[:, :, :100].any()  # right part (x >= 400 of 640) only
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    roles = [entry["role"] for entry in manifest["inputs"]]
    assert roles.count("poses") == 1 and roles.count("mask") == 4
    assert manifest["settings"]["pipeline"]["poses_fixed"] is True


def test_unmatched_frames_fail_with_their_names(clip7, settings, tmp_path):
    root, poses = clip7
    write_tum_trajectory(tmp_path / "short.txt", Trajectory(np.arange(3, dtype=float), poses[:3]))
    with pytest.raises(InputError, match=r"no pose for frame.*frame-000015\.color"):
        run_pipeline(root / "frames", out=tmp_path / "out", poses=str(tmp_path / "short.txt"), **settings)
    (root / "masks2").mkdir(exist_ok=True)
    with pytest.raises(InputError, match="no mask for frame"):
        run_pipeline(root / "frames", out=tmp_path / "out", masks=str(root / "masks2"), **settings)


@pytest.mark.parametrize("changes, message", [
    ({"prior": "depthanything", "scale": "metric"}, "not metric"),
    ({"scale": "metric"}, "not metric"),  # user depth not declared metric
    ({"prior_metric": True, "scale": "metric", "poses": "x.txt"}, "poses set the units"),
    ({"prior": "depthpro", "prior_metric": True}, "declares user depth"),
    ({"prior_metric": True, "poses": "missing.txt"}, "no such file"),
])
def test_bad_scale_or_poses_fail_before_any_work(clip7, settings, tmp_path, no_work, changes, message):
    root, _ = clip7
    with pytest.raises(InputError, match=message):
        run_pipeline(root / "frames", out=tmp_path / "out", **{**settings, **changes})

"""`align3r infer` end to end on a real clip with a tiny random network and a tiny random Depth Pro."""

from __future__ import annotations

import hashlib
import json

import av
import cv2
import numpy as np
import pytest
import torch
import trimesh

from align3r.cli import main


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, clip, fast_overrides):
    out = tmp_path_factory.mktemp("infer") / "lady"
    rc = main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides()])
    assert rc == 0
    return out


def test_core_outputs_have_the_right_shapes_and_round_trip(run_dir):
    import align3r

    saved = align3r.load_reconstruction(run_dir)
    rec = saved.reconstruction
    n = 6
    assert rec.depth.shape == (n, 224, 224) and rec.depth.dtype == torch.float32
    assert torch.isfinite(rec.depth).all() and (rec.depth > 0).all()
    assert rec.cam2world.shape == (n, 4, 4)
    rot = rec.cam2world[:, :3, :3]
    assert torch.allclose(rot @ rot.transpose(1, 2), torch.eye(3).expand(n, 3, 3), atol=1e-4)
    assert torch.allclose(rec.cam2world[:, 3], torch.tensor([0.0, 0, 0, 1]).expand(n, 4))
    assert rec.intrinsics.shape == (n, 3, 3)
    assert torch.allclose(rec.intrinsics[:, 0, 2], torch.full((n,), 112.0))  # cx = W/2
    assert rec.conf.shape == (n, 224, 224) and (rec.conf > 1).all()
    assert rec.dynamic_mask.shape == (n, 224, 224) and rec.dynamic_mask.dtype == torch.bool
    assert len(rec.loss_history) == 20
    # the frames are the sampled ones (stride 4 from frame 0), named after the video frames
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["settings"]["frame_indices"] == [0, 4, 8, 12, 16, 20]
    assert saved.rgb.shape == (n, 224, 224, 3)
    # the files on disk are what load_reconstruction read
    depth0 = np.load(run_dir / "depth" / f"{saved.stems[0]}.npy")
    np.testing.assert_array_equal(depth0, rec.depth[0].numpy())


def test_trajectory_parses_with_evo_and_equals_the_poses(run_dir):
    from evo.tools import file_interface

    import align3r

    traj = file_interface.read_tum_trajectory_file(str(run_dir / "cameras" / "trajectory_tum.txt"))
    poses = np.stack(traj.poses_se3)
    rec = align3r.load_reconstruction(run_dir).reconstruction
    np.testing.assert_allclose(poses, rec.cam2world.numpy(), atol=1e-5)
    np.testing.assert_allclose(np.diff(traj.timestamps), 4 / 30, atol=1e-3)  # stride 4 at 30 fps


def test_point_clouds_and_scene_load_with_trimesh(run_dir):
    frames = sorted((run_dir / "pointclouds" / "frames").glob("*.ply"))
    assert len(frames) == 6
    cloud = trimesh.load(frames[0])
    assert len(cloud.vertices) > 100 and np.isfinite(cloud.vertices).all()
    static = trimesh.load(run_dir / "pointclouds" / "static_scene.ply")
    assert len(static.vertices) > 100
    scene = trimesh.load(run_dir / "scene.glb")
    names = set(scene.geometry)
    assert sum(n.startswith("camera_") for n in names) == 6


def test_preview_video_decodes(run_dir):
    with av.open(str(run_dir / "preview.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 6
    assert frames[0].shape[0] == 224 and frames[0].shape[1] == 3 * 224  # RGB | depth | mask


def test_colmap_and_original_resolution_depth(run_dir):
    cameras = (run_dir / "colmap" / "sparse" / "0" / "cameras.txt").read_text().splitlines()
    cams = [line.split() for line in cameras if line and not line.startswith("#")]
    assert cams and all(c[1] == "PINHOLE" and c[2:4] == ["854", "480"] for c in cams)
    images = (run_dir / "colmap" / "sparse" / "0" / "images.txt").read_text().splitlines()
    assert len([line for line in images if line and not line.startswith("#")]) >= 6
    original = sorted((run_dir / "depth_original").glob("*.npy"))
    assert len(original) == 6 and np.load(original[0]).shape == (480, 854)


def _stems(run_dir) -> list[str]:
    return [f["stem"] for f in json.loads((run_dir / "manifest.json").read_text())["frames"]]


def test_depth_and_confidence_pngs_decode_back_with_the_manifest_ranges(run_dir):
    outputs = json.loads((run_dir / "manifest.json").read_text())["outputs"]
    scale = outputs["depth_png"]["scale"]
    lo, hi = outputs["confidence_png"]["log_conf_range"]
    for stem in _stems(run_dir):
        depth = np.load(run_dir / "depth" / f"{stem}.npy")
        png = cv2.imread(str(run_dir / "depth" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint16 and png.shape == depth.shape and (png > 0).all()
        np.testing.assert_allclose(png / scale, depth, atol=0.51 / scale)  # rounding to the uint16 step
        preview = cv2.imread(str(run_dir / "depth_preview" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert preview.shape == (*depth.shape, 3) and preview.dtype == np.uint8
        assert len(np.unique(preview.reshape(-1, 3), axis=0)) > 10  # a colour ramp, not a flat image
        conf = np.load(run_dir / "confidence" / f"{stem}.npy")
        conf_png = cv2.imread(str(run_dir / "confidence" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        assert conf_png.shape == conf.shape and conf_png.dtype == np.uint8
        expected = np.clip(np.log(conf), lo, hi)
        np.testing.assert_allclose(lo + conf_png / 255 * (hi - lo), expected, atol=(hi - lo) / 255 + 1e-6)


def test_intrinsics_json_matches_the_npy_at_network_and_original_resolution(run_dir):
    k = np.load(run_dir / "cameras" / "intrinsics.npy")
    doc = json.loads((run_dir / "cameras" / "intrinsics.json").read_text())
    net = doc["network"]
    assert (net["width"], net["height"]) == (224, 224)
    assert [f["frame"] for f in net["frames"]] == _stems(run_dir)
    as_json = np.array([[f["fx"], f["fy"], f["cx"], f["cy"]] for f in net["frames"]])
    np.testing.assert_allclose(as_json, np.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2], k[:, 1, 2]], 1), rtol=1e-6)
    original = doc["original"]
    assert (original["width"], original["height"]) == (854, 480)
    # the same cameras, K mapped through the resize + crop the manifest records
    scale_xy = json.loads((run_dir / "manifest.json").read_text())["original"]["scale_xy"]
    focal = np.array([[f["fx"], f["fy"]] for f in original["frames"]])
    np.testing.assert_allclose(focal, as_json[:, :2] * scale_xy, rtol=1e-5)


def test_colmap_points_parse_as_the_static_scene(run_dir):
    sparse = run_dir / "colmap" / "sparse" / "0"
    rows = np.loadtxt(sparse / "points3D.txt", comments="#", ndmin=2)  # ID X Y Z R G B ERROR, no tracks
    assert rows.shape[1] == 8 and len(rows) > 100 and (rows[:, 7] == 0).all()
    np.testing.assert_array_equal(rows[:, 0], np.arange(1, len(rows) + 1))
    static = trimesh.load(run_dir / "pointclouds" / "static_scene.ply")
    np.testing.assert_allclose(rows[:, 1:4], static.vertices, rtol=1e-6, atol=1e-6)
    poses = [line.split() for line in (sparse / "images.txt").read_text().splitlines()
             if line and not line.startswith("#")]  # IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME
    assert len(poses) == 6 and all(len(p) == 10 for p in poses)
    assert sorted(p[9] for p in poses) == sorted(f.name for f in (run_dir / "colmap" / "images").iterdir())


def test_original_resolution_depth_matches_the_source(run_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    png_scale = manifest["outputs"]["original_depth"]["png_scale"]
    for stem in _stems(run_dir):
        depth = np.load(run_dir / "depth_original" / f"{stem}.npy")
        assert depth.shape == (480, 854) and depth.dtype == np.float32  # the video's resolution
        png = cv2.imread(str(run_dir / "depth_original" / f"{stem}.png"), cv2.IMREAD_UNCHANGED)
        valid = np.isfinite(depth)
        assert 0.3 < valid.mean() < 1  # the centre crop is covered, the cropped sides are NaN
        assert (png[~valid] == 0).all()
        np.testing.assert_allclose(png[valid] / png_scale, depth[valid], atol=0.51 / png_scale)


def test_manifest_records_inputs_versions_and_timings(run_dir, clip, tiny_net_dir):
    manifest = json.loads((run_dir / "manifest.json").read_text())
    video, prior_model, checkpoint = manifest["inputs"]
    assert video == {"role": "video", "path": str(clip.absolute()), "bytes": clip.stat().st_size,
                     "sha256": "sha256:" + hashlib.sha256(clip.read_bytes()).hexdigest()}
    assert prior_model["role"] == "depth_prior_model" and prior_model["source"]
    assert checkpoint["role"] == "checkpoint" and checkpoint["path"] == str(tiny_net_dir.absolute())
    assert checkpoint["kind"] == "align3r" and len(checkpoint["weights_fingerprint"]) == 32
    for library in ("align3r", "python", "torch", "numpy", "trimesh", "av"):
        assert manifest["versions"][library]
    timings = manifest["timings"]
    for stage in ("load", "decode", "priors", "views", "inference", "flow", "align"):
        assert timings[stage] >= 0
    assert set(timings["export_s"]) >= {"core", "depth_png", "ply", "glb", "colmap", "video"}
    assert manifest["settings"]["pipeline"]["formats"] == "all"


def test_glb_has_the_static_scene_node(run_dir):
    scene = trimesh.load(run_dir / "scene.glb")
    assert "static_scene" in scene.graph.nodes
    static = scene.geometry["static_scene"]
    assert len(static.vertices) == len(trimesh.load(run_dir / "pointclouds" / "static_scene.ply").vertices)


def test_summary_line_names_frames_pairs_and_stage_times(tmp_path, clip, fast_overrides, capsys):
    out = tmp_path / "again"
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides("formats=[]")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("align3r infer: 6 frames, 18 pairs, 224x224")  # swin-2-noncyclic: 9 pairs, both ways
    for stage in ("priors", "inference", "flow", "align", "export"):
        assert stage in line


def test_preview_rate_and_loss_history_are_as_documented(run_dir):
    """docs/outputs.md: preview.mp4 runs at the sampled frames' rate (30 fps / stride 4); in one
    alignment problem loss_history.npz holds `total` and one array per term, the flow term shorter
    (it starts at iteration ceil(flow_start * iterations) = 2 of 20)."""
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["outputs"]["video"]["fps"] == pytest.approx(30 / 4)
    with av.open(str(run_dir / "preview.mp4")) as container:
        assert float(container.streams.video[0].average_rate) == pytest.approx(7.5, rel=1e-3)
    losses = np.load(run_dir / "loss_history.npz")
    assert set(losses.files) == {"total", "term_alignment", "term_temporal", "term_flow"}
    assert len(losses["total"]) == len(losses["term_alignment"]) == len(losses["term_temporal"]) == 20
    assert len(losses["term_flow"]) == 18

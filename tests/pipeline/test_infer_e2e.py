"""`align3r infer` end to end on a real clip with a tiny random network and a tiny random Depth Pro."""

from __future__ import annotations

import json

import av
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


def test_summary_line_names_frames_pairs_and_stage_times(tmp_path, clip, fast_overrides, capsys):
    out = tmp_path / "again"
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides("formats=[]")]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("align3r infer: 6 frames, 18 pairs, 224x224")  # swin-2-noncyclic: 9 pairs, both ways
    for stage in ("priors", "inference", "flow", "align", "export"):
        assert stage in line

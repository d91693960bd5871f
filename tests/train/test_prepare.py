"""Preparation scripts: tiny raw samples in each source format → the processed layout.

Geometry checks: every processed depth pixel, unprojected with the processed intrinsics and
pose, must land on the synthetic box's walls (so both frames agree in world space), and the
intrinsics must follow the exact crop/rescale convention of the reference.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from align3r.data.io import FramePaths, read_mask, read_metadata, read_pfm
from align3r.data.prepare import common, flyingthings3d, pointodyssey, sceneflow, spring, tartanair, vkitti2
from align3r.errors import InputError


def expected_rescaled_k(k, in_size, out_size, crop_lt=(0, 0)):
    """Reference convention, written independently: crop → scale about pixel corners, centred floor."""
    k = np.array(k, dtype=np.float64)
    k[0, 2] -= crop_lt[0]
    k[1, 2] -= crop_lt[1]
    scale = max(out_size[0] / in_size[0], out_size[1] / in_size[1]) + 1e-8
    floored = np.floor(np.array(in_size) * scale)
    out = k.copy()
    out[:2, :] *= scale
    out[:2, 2] = (k[:2, 2] + 0.5) * scale - 0.5 * (np.array(in_size) * scale - floored) - 0.5
    return out, tuple(int(x) for x in floored)


def processed_world_points(paths: FramePaths, invert_pose: bool):
    depth = read_pfm(paths.depth)
    with np.load(paths.metadata) as meta:  # as stored (float64), not the loader's float32
        k, pose = meta["camera_intrinsics"], meta["camera_pose"].astype(np.float64)
    if invert_pose:
        pose = np.linalg.inv(pose)
    h, w = depth.shape
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    cam = np.stack([(u - k[0, 2]) * depth / k[0, 0], (v - k[1, 2]) * depth / k[1, 1], depth], axis=-1)
    return cam @ pose[:3, :3].T + pose[:3, 3], depth, k


def test_processed_size_matches_reference_examples():
    assert common.processed_size(960, 540) == (682, 384)  # PointOdyssey
    assert common.processed_size(640, 480) == (512, 384)  # TartanAir
    assert common.processed_size(1242, 375) == (1271, 384)  # VKITTI2 is enlarged
    assert common.processed_size(400, 400) == (512, 512)  # square: long side 512 wins


def test_pfm_roundtrip_is_bottom_up_little_endian(tmp_path, synth):
    from align3r.data.io import write_pfm

    depth = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_pfm(tmp_path / "d.pfm", depth)
    raw = (tmp_path / "d.pfm").read_bytes()
    assert raw.startswith(b"Pf\n4 3\n-1\n")
    stored = np.frombuffer(raw[len(b"Pf\n4 3\n-1\n"):], dtype="<f4").reshape(3, 4)
    np.testing.assert_array_equal(stored, depth[::-1])  # bottom row first
    np.testing.assert_array_equal(read_pfm(tmp_path / "d.pfm"), depth)


def test_pointodyssey_identity_geometry_is_exact(tmp_path, synth):
    """512x384 with the principal point at the centre: no resampling, so float-exact geometry."""
    k, poses = synth.write_pointodyssey(tmp_path / "raw", n=2, size=(512, 384))
    written = common.prepare_sequences(pointodyssey.raw_sequences(tmp_path / "raw", splits=("train",)),
                                       tmp_path / "proc", progress=False)
    assert written == 2
    folder = tmp_path / "proc" / "train" / "seq_a"
    assert sorted(p.name for p in folder.glob("*_rgb.jpg")) == ["0000_rgb.jpg", "0001_rgb.jpg"]
    for i in range(2):
        paths = FramePaths.of(folder, f"{i:04d}")
        world, depth, k_proc = processed_world_points(paths, invert_pose=True)
        assert depth.shape == (384, 512)
        np.testing.assert_allclose(k_proc, k, rtol=1e-6)
        # stored pose is world-to-camera · diag(1,-1,-1,1), exactly as the reference stores it
        _, stored = read_metadata(paths.metadata)
        np.testing.assert_allclose(stored, np.linalg.inv(poses[i]) @ synth.BLENDER, atol=1e-5)
        # uint16 quantisation of PointOdyssey depth is 1000/65535 m ≈ 1.5 cm
        assert synth.box_residual(world).max() < 0.02
        assert read_mask(paths.mask).all()


def test_pointodyssey_resampled_geometry_and_intrinsics(tmp_path, synth):
    k, _poses = synth.write_pointodyssey(tmp_path / "raw", n=2, size=(960, 540))
    common.prepare_sequences(pointodyssey.raw_sequences(tmp_path / "raw", splits=("train",)), tmp_path / "proc",
                             progress=False)
    expected_k, expected_size = expected_rescaled_k(k, (960, 540), (682, 384))
    assert expected_size == (682, 384)
    for i in range(2):
        paths = FramePaths.of(tmp_path / "proc" / "train" / "seq_a", f"{i:04d}")
        world, depth, k_proc = processed_world_points(paths, invert_pose=True)
        assert depth.shape == (384, 682)
        np.testing.assert_allclose(k_proc, expected_k, rtol=1e-9, atol=1e-9)
        # nearest resampling moves a depth by at most ~half a source pixel along the wall
        residual = synth.box_residual(world)
        assert np.median(residual) < 0.01 and np.percentile(residual, 99) < 0.05


def test_prepare_resumes_and_skips_complete_frames(tmp_path, synth):
    synth.write_pointodyssey(tmp_path / "raw", n=2, size=(512, 384))
    seqs = pointodyssey.raw_sequences(tmp_path / "raw", splits=("train",))
    assert common.prepare_sequences(seqs, tmp_path / "proc", progress=False) == 2
    (tmp_path / "proc" / "train" / "seq_a" / "0001_metadata.npz").unlink()  # as if interrupted
    assert common.prepare_sequences(seqs, tmp_path / "proc", progress=False) == 1


def test_flyingthings3d_layout_intrinsics_and_geometry(tmp_path, synth):
    k, poses = synth.write_sceneflow_sequence(tmp_path / "raw", "TRAIN/A/0000", fx=1050.0, n=2,
                                              cams=("left", "right"))
    seqs = flyingthings3d.raw_sequences(tmp_path / "raw")
    assert [s.name for s in seqs] == ["TRAIN/A/0000/left", "TRAIN/A/0000/right"]
    common.prepare_sequences(seqs, tmp_path / "proc", progress=False)
    # crop about (479.5, 269.5) truncates to 959x539, then 683x384 (official
    # `datasets_preprocess/preprocess_Flythings3D.py`)
    expected_k, size = expected_rescaled_k(k, (959, 539), (682, 384))
    assert size == (683, 384)
    # each camera folder gets its own line of camera_data.txt: L for left, R (0.5 to the right) for right
    for cam, cam_poses in (("left", poses), ("right", synth.right_camera(poses))):
        for i, frame in enumerate(("0006", "0007")):
            paths = FramePaths.of(tmp_path / "proc" / "TRAIN/A/0000" / cam, frame)
            world, depth, k_proc = processed_world_points(paths, invert_pose=False)
            assert depth.shape == (384, 683)
            np.testing.assert_allclose(k_proc, expected_k, rtol=1e-9, atol=1e-9)
            _, stored = read_metadata(paths.metadata)
            np.testing.assert_allclose(stored, cam_poses[i], atol=1e-5)  # Blender → OpenCV undone exactly
            residual = synth.box_residual(world)
            assert np.median(residual) < 0.01 and np.percentile(residual, 99) < 0.05


def test_flyingthings3d_invalid_disparity_is_masked(tmp_path, synth):
    synth.write_sceneflow_sequence(tmp_path / "raw", "TEST/B/0001", fx=1050.0, n=2)
    pfm = tmp_path / "raw/disparity/TEST/B/0001/left/0006.pfm"
    disp = read_pfm(pfm)
    disp[:50, :50] = np.nan
    disp[-50:, -50:] = -1
    synth.write_pfm_raw(pfm, disp)
    common.prepare_sequences(flyingthings3d.raw_sequences(tmp_path / "raw", splits=("TEST",)), tmp_path / "proc",
                             progress=False)
    paths = FramePaths.of(tmp_path / "proc/TEST/B/0001/left", "0006")
    mask, depth = read_mask(paths.mask), read_pfm(paths.depth)
    assert not mask[:30, :30].any() and not mask[-30:, -30:].any()
    assert np.all(depth[:30, :30] == np.float32(1050.0) / np.float32(1e-3))  # 1050 / 1e-3, beyond 400
    assert mask[150:250, 300:400].all()


def test_driving_focal_and_monkaa_layout(tmp_path, synth):
    synth.write_sceneflow_sequence(tmp_path / "driving", "15mm_focallength/scene_forwards/fast", fx=450.0, n=2)
    synth.write_sceneflow_sequence(tmp_path / "monkaa", "a_rain_of_stones_x2", fx=1050.0, n=2)
    driving = sceneflow.driving_sequences(tmp_path / "driving")
    monkaa = sceneflow.monkaa_sequences(tmp_path / "monkaa")
    assert [s.name for s in driving] == ["15mm_focallength/scene_forwards/fast/left"]
    assert [s.name for s in monkaa] == ["a_rain_of_stones_x2/left"]
    _, _depth, k, _ = driving[0].frames[0].load()
    assert k[0, 0] == 450.0
    assert monkaa[0].frames[0].load()[2][0, 0] == 1050.0
    assert common.prepare_sequences(driving, tmp_path / "driving_proc", progress=False) == 2
    assert common.prepare_sequences(monkaa, tmp_path / "monkaa_proc", progress=False) == 2
    for folder in ("driving_proc/15mm_focallength/scene_forwards/fast/left", "monkaa_proc/a_rain_of_stones_x2/left"):
        for frame in ("0006", "0007"):
            world, depth, _ = processed_world_points(FramePaths.of(tmp_path / folder, frame), invert_pose=False)
            assert depth.shape == (384, 683)
            residual = synth.box_residual(world)
            assert np.median(residual) < 0.01 and np.percentile(residual, 99) < 0.05


def test_tartanair_ned_poses_and_easy_only(tmp_path, synth):
    k, _poses = synth.write_tartanair(tmp_path / "raw", n=2)
    seqs = tartanair.raw_sequences(tmp_path / "raw", cameras=("left",))
    assert [s.name for s in seqs] == ["office_Easy_P000_left"]
    common.prepare_sequences(seqs, tmp_path / "proc", progress=False)
    for i in range(2):
        paths = FramePaths.of(tmp_path / "proc" / "office_Easy_P000_left", f"{i:06d}")
        world, depth, k_proc = processed_world_points(paths, invert_pose=False)
        assert depth.shape == (384, 512)
        expected_k, _ = expected_rescaled_k(k, (640, 480), (512, 384))
        np.testing.assert_allclose(k_proc, expected_k, rtol=1e-9)
        residual = synth.box_residual(world)
        assert np.median(residual) < 0.01 and np.percentile(residual, 99) < 0.05


def test_spring_disparity_at_twice_resolution(tmp_path, synth):
    pytest.importorskip("h5py")
    synth.write_spring(tmp_path / "raw", n=2)
    seqs = spring.raw_sequences(tmp_path / "raw")  # the real .dsp5 reader
    assert [s.name for s in seqs] == ["train/0001"]
    assert [f.frame_id for f in seqs[0].frames] == ["0001", "0002"]
    common.prepare_sequences(seqs, tmp_path / "proc", progress=False)
    world, depth, _ = processed_world_points(FramePaths.of(tmp_path / "proc/train/0001", "0002"), False)
    assert depth.shape == (384, 512)
    assert np.median(synth.box_residual(world)) < 0.02


def test_spring_dsp5_reader(tmp_path, synth):
    h5py = pytest.importorskip("h5py")
    disparity = np.random.default_rng(0).uniform(0.5, 50, (6, 8)).astype(np.float32)
    disparity[0, 0] = np.nan  # Spring marks pixels without GT so
    synth.write_dsp5(tmp_path / "a.dsp5", disparity)
    np.testing.assert_array_equal(spring.read_dsp5(tmp_path / "a.dsp5"), disparity)
    with h5py.File(tmp_path / "other.dsp5", "w") as f:
        f.create_dataset("flow", data=disparity)
    with pytest.raises(InputError, match="no 'disparity' dataset"):
        spring.read_dsp5(tmp_path / "other.dsp5")


def test_spring_without_h5py_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)  # as if not installed
    with pytest.raises(InputError, match="pip install h5py"):
        spring.read_dsp5(tmp_path / "a.dsp5")


def test_vkitti2_layout_and_inverted_extrinsics(tmp_path, synth):
    _k, poses = synth.write_vkitti2(tmp_path / "raw", n=2)
    seqs = vkitti2.raw_sequences(tmp_path / "raw")
    assert [s.name for s in seqs] == ["scene0000_left", "scene0000_right"]
    assert seqs[0].mask_max_depth == 600
    common.prepare_sequences(seqs, tmp_path / "proc", progress=False)
    for side, cam_poses in (("left", poses), ("right", synth.right_camera(poses))):  # Camera_0, Camera_1
        paths = FramePaths.of(tmp_path / f"proc/scene0000_{side}", "00001")
        _, stored = read_metadata(paths.metadata)
        np.testing.assert_allclose(stored, cam_poses[1], atol=1e-4)  # camera-to-world stored
        world, depth, _ = processed_world_points(paths, invert_pose=False)
        assert depth.shape == (384, 512)
        assert np.median(synth.box_residual(world)) < 0.02  # cm quantisation + enlargement


def test_missing_raw_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="missing"):
        pointodyssey.raw_sequences(tmp_path / "nowhere")


def test_prepare_script_end_to_end(tmp_path, synth, capsys):
    import importlib.util
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "train" / "prepare.py"
    spec = importlib.util.spec_from_file_location("prepare_script", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    synth.write_tartanair(tmp_path / "raw", n=2)
    assert module.main(["tartanair", str(tmp_path / "raw"), str(tmp_path / "proc")]) == 0
    assert "2 frames written" in capsys.readouterr().out  # the Easy trajectory's left camera (no right)
    assert FramePaths.of(tmp_path / "proc" / "office_Easy_P000_left", "000001").is_complete()
    assert module.main(["tartanair", str(tmp_path / "raw"), str(tmp_path / "proc")]) == 0  # resumes: nothing to do
    assert "0 frames written" in capsys.readouterr().out
    assert module.main(["pointodyssey", str(tmp_path / "nowhere"), str(tmp_path / "p")]) == 2

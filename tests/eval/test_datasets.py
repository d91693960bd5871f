"""Benchmark readers: tiny datasets in the exact on-disk layouts, built from real 7-Scenes frames
(depth, poses, intrinsics) and the real DAVIS-style lady-running clip, read back through the
readers and compared with what was written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from align3r.errors import InputError
from align3r.eval.datasets import (
    BONN_SEQUENCES,
    SINTEL_POSE_SEQUENCES,
    load_benchmark,
    sintel_sequences,
)
from align3r.io.formats import write_dpt, write_pfm, write_png_depth, write_sintel_cam
from align3r.io.trajectory import (
    Trajectory,
    cam2world_to_tum_wxyz,
    tum_wxyz_to_cam2world,
    write_tum_trajectory,
)

FRAME_SIZE = (120, 160)  # real 7-Scenes maps subsampled 4x to keep the files small


def _real_frame(seven_scenes, index):
    frame, k, _ = seven_scenes
    depth, pose, _ = frame(index)
    return depth[::4, ::4], pose, np.diag([0.25, 0.25, 1.0]) @ k


def _tiny_png(path: Path, value: int = 0, size: tuple[int, int] = FRAME_SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((*size, 3), value % 256, np.uint8))


# ------------------------------------------------------------------------------------------ Sintel


def _make_sintel(root: Path, seven_scenes, layout: str, sequences: dict[str, range], pass_name="final"):
    """Sintel files: frame_%04d.png images, .dpt depth, .cam cameras (world-to-camera)."""
    if layout == "paper":
        images = root / "MPI-Sintel-training_images" / "training"
        annotations = root / "MPI-Sintel-depth-training" / "training"
    else:
        images = annotations = root / "training"
    truth = {}
    for seq, frames in sequences.items():
        (annotations / "depth" / seq).mkdir(parents=True)
        (annotations / "camdata_left" / seq).mkdir(parents=True)
        poses = []
        for n, index in enumerate(frames, start=1):
            depth, pose, k = _real_frame(seven_scenes, index)
            _tiny_png(images / pass_name / seq / f"frame_{n:04d}.png", n)
            write_dpt(annotations / "depth" / seq / f"frame_{n:04d}.dpt", depth)
            write_sintel_cam(annotations / "camdata_left" / seq / f"frame_{n:04d}.cam", k, np.linalg.inv(pose))
            poses.append(pose)
        truth[seq] = (np.stack(poses), k)
    return images, annotations, truth


@pytest.mark.parametrize("layout", ["paper", "merged"])
def test_sintel_depth_protocol_reads_every_sequence_and_frame(tmp_path, seven_scenes, layout):
    seqs = {"alley_2": range(0, 12, 2), "bamboo_1": range(40, 44), "market_2": range(60, 65)}
    images, annotations, truth = _make_sintel(tmp_path, seven_scenes, layout, seqs)
    mask_dir = annotations / "dynamic_label_perfect" / "alley_2"
    mask_dir.mkdir(parents=True)
    cv2.imwrite(str(mask_dir / "frame_0001.png"), np.where(np.arange(160) < 40, 255, 0).astype(np.uint8)[None].repeat(120, 0))

    out = sintel_sequences(tmp_path)
    assert [s.name for s in out] == ["alley_2", "bamboo_1", "market_2"]  # all, sorted
    alley = out[0]
    assert [p.name for p in alley.frame_paths] == [f"frame_{n:04d}.png" for n in range(1, 7)]
    assert alley.frame_paths[0].parent == images / "final" / "alley_2"
    for i, index in enumerate(seqs["alley_2"]):
        np.testing.assert_array_equal(alley.load_depth(i), _real_frame(seven_scenes, index)[0].astype(np.float32))
    # GT: .cam world-to-camera inverted, camera centres mean-centred, timestamps = frame numbers
    poses, k = truth["alley_2"]
    expected = poses.copy()
    expected[:, :3, 3] -= poses[:, :3, 3].mean(0)
    np.testing.assert_allclose(alley.trajectory.cam2world, expected, atol=1e-12)
    np.testing.assert_array_equal(alley.trajectory.timestamps, np.arange(1, 7))
    np.testing.assert_allclose(alley.intrinsics, np.broadcast_to(k, (6, 3, 3)))
    # dynamic masks where present; priors beside the pass folder
    assert alley.load_dynamic_mask(0)[:, :40].all() and not alley.load_dynamic_mask(0)[:, 40:].any()
    assert alley.load_dynamic_mask(1) is None
    assert alley.prior_path(2, "depthpro") == images / "depth_prediction_depthpro" / "alley_2" / "frame_0003.npz"
    assert alley.load_depths().shape == (6, *FRAME_SIZE)


def test_sintel_pose_protocol_uses_the_14_sequences(tmp_path, seven_scenes):
    _make_sintel(tmp_path, seven_scenes, "paper", {"alley_2": range(3), "bamboo_1": range(3)})
    with pytest.raises(InputError, match="ambush_4"):  # the protocol needs all 14
        sintel_sequences(tmp_path, task="pose")
    out = sintel_sequences(tmp_path, task="pose", sequences=["alley_2"])
    assert [s.name for s in out] == ["alley_2"] and len(out[0]) == 3
    assert len(SINTEL_POSE_SEQUENCES) == 14 and "bamboo_1" not in SINTEL_POSE_SEQUENCES
    assert [s.name for s in sintel_sequences(tmp_path, task="pose", sequences="all")] == ["alley_2", "bamboo_1"]


def test_sintel_clean_pass_and_missing_layout(tmp_path, seven_scenes):
    images, _, _ = _make_sintel(tmp_path, seven_scenes, "merged", {"cave_2": range(2)}, pass_name="clean")
    out = sintel_sequences(tmp_path, pass_name="clean")
    assert out[0].frame_paths[0].parent == images / "clean" / "cave_2"
    with pytest.raises(InputError, match="no Sintel 'final' pass"):
        sintel_sequences(tmp_path)


# --------------------------------------------------------------------------------- TUM and Bonn


def _make_rgbd_sequence(seq_dir: Path, seven_scenes, frames: range, gt_per_frame: int = 3,
                        t0: float = 1341846647.0):
    """A TUM-layout sequence from real 7-Scenes frames: rgb/ and depth/ named by timestamp
    (30 Hz, depth 4 ms later), groundtruth.txt at gt_per_frame x the camera rate."""
    stamps = t0 + np.arange(len(frames)) / 30.0
    poses = []
    for stamp, index in zip(stamps, frames):
        depth, pose, _ = _real_frame(seven_scenes, index)
        _tiny_png(seq_dir / "rgb" / f"{stamp:.6f}.png", index)
        (seq_dir / "depth").mkdir(exist_ok=True)
        write_png_depth(seq_dir / "depth" / f"{stamp + 0.004:.6f}.png", depth, scale=5000)
        poses.append(pose)
    # TUM files store quaternions: the (not quite orthonormal) 7-Scenes rotations come back
    # projected onto SO(3); that projection is the truth to compare with.
    poses = tum_wxyz_to_cam2world(cam2world_to_tum_wxyz(np.stack(poses)))
    # the mocap runs faster: extra rows between frames (slightly moved copies)
    gt_stamps = (stamps[:, None] + np.arange(gt_per_frame)[None] / (30.0 * gt_per_frame)).reshape(-1)
    gt_poses = np.repeat(poses, gt_per_frame, axis=0)
    gt_poses[:, 0, 3] += np.tile(np.arange(gt_per_frame) * 1e-3, len(frames))
    write_tum_trajectory(seq_dir / "groundtruth.txt", Trajectory(gt_stamps, gt_poses))
    text = (seq_dir / "groundtruth.txt").read_text()
    (seq_dir / "groundtruth.txt").write_text("# ground truth trajectory\n# timestamp tx ty tz qx qy qz qw\n" + text)
    return stamps, poses


@pytest.fixture(scope="module")
def tum_root(tmp_path_factory, seven_scenes):
    """Two prepared TUM sequences (read-only for the tests that use them)."""
    from align3r.eval.prepare import prepare_tum

    root = tmp_path_factory.mktemp("tum")
    truth = {"rgbd_dataset_freiburg3_walking_xyz": _make_rgbd_sequence(
                 root / "rgbd_dataset_freiburg3_walking_xyz", seven_scenes, range(100)),
             "rgbd_dataset_freiburg3_sitting_static": _make_rgbd_sequence(
                 root / "rgbd_dataset_freiburg3_sitting_static", seven_scenes, range(80))}
    prepare_tum(root)
    return root, truth


def test_tum_depth_and_pose_protocols_by_index(tum_root, seven_scenes):
    root, truth = tum_root
    depth_seqs = load_benchmark("tum", root)
    assert [s.name for s in depth_seqs] == ["rgbd_dataset_freiburg3_sitting_static",
                                            "rgbd_dataset_freiburg3_walking_xyz"]
    seq = depth_seqs[1]
    stamps, poses = truth[seq.name]
    assert len(seq) == 50
    assert [p.name for p in seq.frame_paths] == [f"{s:.6f}.png" for s in stamps[30:80]]
    for i in (0, 17, 49):  # i-th sorted depth file = real frame 30 + i, metres (uint16 / 5000)
        np.testing.assert_array_equal(seq.load_depth(i), _real_frame(seven_scenes, 30 + i)[0])
    # official pairing: rows 30..79 of groundtruth.txt, whatever their time (here 3 rows/frame)
    gt_rows = np.repeat(poses, 3, axis=0)[30:80]
    gt_rows[:, 0, 3] += np.tile(np.arange(3) * 1e-3, 100)[30:80]
    np.testing.assert_allclose(seq.trajectory.cam2world, gt_rows, atol=1e-12)
    assert seq.trajectory.timestamps[3] == pytest.approx(stamps[11])  # row 33 = frame 11, not 33
    assert seq.prior_path(0, "depthanything") == (
        root / seq.name / "rgb_50_depth_prediction_depthanything" / f"{stamps[30]:.6f}.npz")
    pose_seq = load_benchmark("tum", root, task="pose", sequences=[seq.name])[0]
    assert len(pose_seq) == 30 and pose_seq.frame_paths == seq.frame_paths[:30]
    np.testing.assert_array_equal(pose_seq.trajectory.cam2world, seq.trajectory.cam2world[:30])


def test_tum_timestamp_association_pairs_the_right_poses(tum_root, seven_scenes):
    root, truth = tum_root
    name = "rgbd_dataset_freiburg3_walking_xyz"
    seq = load_benchmark("tum", root, sequences=[name], association="timestamp")[0]
    stamps, poses = truth[name]
    np.testing.assert_allclose(seq.trajectory.cam2world, poses[30:80], atol=1e-12)
    np.testing.assert_allclose(seq.trajectory.timestamps, stamps[30:80], atol=1e-6)
    assert [p.name for p in seq.depth_paths] == [f"{s + 0.004:.6f}.png" for s in stamps[30:80]]
    np.testing.assert_array_equal(seq.load_depth(5), _real_frame(seven_scenes, 35)[0])
    with pytest.raises(InputError, match=r"no match within 0\.001"):
        load_benchmark("tum", root, sequences=[name], association="timestamp", max_difference=0.001)


def test_tum_needs_the_prepared_subset(tmp_path, seven_scenes):
    _make_rgbd_sequence(tmp_path / "rgbd_dataset_freiburg3_walking_rpy", seven_scenes, range(3))
    with pytest.raises(InputError, match=r"prepare_tum\.py"):
        load_benchmark("tum", tmp_path)


def _make_bonn_raw(root: Path, name: str, count: int = 140):
    seq = root / f"rgbd_bonn_{name}"
    stamps = 1548266469.0 + np.arange(count) / 30.0
    for i, stamp in enumerate(stamps):
        _tiny_png(seq / "rgb" / f"{stamp:.6f}.png", i, size=(4, 4))
        (seq / "depth").mkdir(exist_ok=True)
        write_png_depth(seq / "depth" / f"{stamp:.6f}.png", np.full((4, 4), 1.0 + i / 1000), scale=5000)
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, 0, 3] = np.arange(count) * 0.01
    write_tum_trajectory(seq / "groundtruth.txt", Trajectory(stamps, poses))
    return stamps


def test_bonn_reads_the_five_sequences_frames_30_to_140(tmp_path):
    from align3r.eval.prepare import prepare_bonn

    root = tmp_path / "bonn" / "rgbd_bonn_dataset"
    for name in BONN_SEQUENCES:
        stamps = _make_bonn_raw(root, name)
    (root / "rgbd_bonn_static" / "rgb").mkdir(parents=True)  # not in the paper's list
    assert prepare_bonn(root.parent) == list(BONN_SEQUENCES)
    seqs = load_benchmark("bonn", root.parent)
    assert [s.name for s in seqs] == list(BONN_SEQUENCES)
    seq = seqs[0]
    assert len(seq) == 110 and seq.frame_paths[0].name == f"{stamps[30]:.6f}.png"
    assert seq.frame_paths[-1].name == f"{stamps[139]:.6f}.png"
    assert seq.load_depth(0)[0, 0] == pytest.approx(1.030) and seq.load_depth(109)[0, 0] == pytest.approx(1.139)
    np.testing.assert_allclose(seq.trajectory.positions[:, 0], np.arange(30, 140) * 0.01, atol=1e-12)
    assert seq.prior_path(0, "depthpro").parent == root / "rgbd_bonn_balloon2" / "rgb_110_depth_prediction_depthpro"
    pose = load_benchmark("bonn", root, task="pose")[2]
    assert pose.name == "crowd3" and len(pose) == 30
    np.testing.assert_allclose(pose.trajectory.positions[:, 0], np.arange(30, 60) * 0.01, atol=1e-12)
    with pytest.raises(InputError, match=r"rgbd_bonn_static/rgb_110 .*prepare_bonn\.py"):
        load_benchmark("bonn", root, sequences="all")  # "static" was not prepared


def _camera_stream_over_real_groundtruth(seq_dir: Path, gt_file: Path, start: float, count: int) -> np.ndarray:
    """A TUM-layout sequence around a real TUM ``groundtruth.txt`` (copied unchanged): ``rgb/``
    named like the Kinect stream (30 Hz with 2 ms jitter, 6 decimals) from ``start``, ``depth/``
    up to 10 ms off each image and holding 1 + i/1000 m (i = frame index). Returns the stamps."""
    rng = np.random.default_rng(7)
    stamps = np.round(start + np.arange(count) / 30.0 + rng.uniform(-0.002, 0.002, count), 6)
    for i, stamp in enumerate(stamps):
        _tiny_png(seq_dir / "rgb" / f"{stamp:.6f}.png", i, size=(2, 2))
        (seq_dir / "depth").mkdir(exist_ok=True)
        write_png_depth(seq_dir / "depth" / f"{stamp + rng.uniform(-0.01, 0.01):.6f}.png",
                        np.full((2, 2), 1.0 + i / 1000), scale=5000)
    shutil.copy(gt_file, seq_dir / "groundtruth.txt")
    return stamps


@pytest.mark.parametrize("dataset", ["tum", "bonn"])
def test_timestamp_association_with_a_real_tum_groundtruth(tmp_path, tum_trajectory_dir, dataset):
    """The real freiburg1_xyz mocap file (100 Hz, irregular, one 0.11 s gap): every frame gets the
    ground-truth row nearest in time (found here by brute force, read back with evo) within
    0.02 s, and its own depth map; a frame inside the gap is refused, naming the frame."""
    from evo.tools import file_interface

    from align3r.eval.prepare import prepare_bonn, prepare_tum

    gt_file = tum_trajectory_dir / "freiburg1_xyz-groundtruth.txt"
    real = file_interface.read_tum_trajectory_file(str(gt_file))
    gap = int(np.argmax(np.diff(real.timestamps)))  # 0.11 s without poses
    assert np.diff(real.timestamps)[gap] > 0.1
    count = 80 if dataset == "tum" else 140
    root = tmp_path / dataset
    names = ("rgbd_dataset_freiburg3_walking_xyz", "rgbd_dataset_freiburg3_sitting_xyz") if dataset == "tum" \
        else ("rgbd_bonn_balloon2", "rgbd_bonn_crowd2")
    stamps = _camera_stream_over_real_groundtruth(root / names[0], gt_file, real.timestamps[100] + 0.0123, count)
    # the second sequence puts subset frame 10 (raw frame 40) in the middle of the gap
    middle = real.timestamps[gap] + np.diff(real.timestamps)[gap] / 2
    gapped = _camera_stream_over_real_groundtruth(root / names[1], gt_file, middle - 40 / 30.0, count)
    short = [n.removeprefix("rgbd_bonn_") for n in names] if dataset == "bonn" else list(names)
    prepare_tum(root) if dataset == "tum" else prepare_bonn(root, sequences=short)

    seq = load_benchmark(dataset, root, sequences=short[:1], association="timestamp")[0]
    frames = stamps[30:30 + len(seq)]
    assert [p.name for p in seq.frame_paths] == [f"{s:.6f}.png" for s in frames]
    nearest = np.abs(real.timestamps[None, :] - frames[:, None]).argmin(1)
    assert np.abs(real.timestamps[nearest] - frames).max() < 0.02
    np.testing.assert_array_equal(seq.trajectory.timestamps, real.timestamps[nearest])
    np.testing.assert_allclose(seq.trajectory.cam2world, np.stack(real.poses_se3)[nearest], atol=1e-12)
    for i in (0, len(seq) // 2, len(seq) - 1):
        assert seq.load_depth(i)[0, 0] == pytest.approx(1.0 + (30 + i) / 1000)
    # the official pairing takes rows 30.. instead: 10 ms apart where the frames are 33 ms apart
    by_index = load_benchmark(dataset, root, sequences=short[:1])[0]
    np.testing.assert_array_equal(by_index.trajectory.timestamps, real.timestamps[30:30 + len(seq)])
    subset = gapped[30:30 + len(seq)]
    far = np.flatnonzero(np.abs(real.timestamps[None, :] - subset[:, None]).min(1) > 0.02)
    assert 10 in far and len(far) == 3  # 0.11 s gap: the frame in the middle and its neighbours
    with pytest.raises(InputError, match=rf"pose: 3 frame\(s\) have no match within 0\.02 s, "
                                         rf"e\.g\. {subset[far[0]]:.6f}\.png"):
        load_benchmark(dataset, root, sequences=short[1:], association="timestamp")


# ------------------------------------------------------------------ processed layout (PO, FT3D)


def _make_processed(seq_dir: Path, seven_scenes, frames, world_to_camera: bool):
    seq_dir.mkdir(parents=True)
    poses = []
    for n, index in enumerate(frames):
        depth, pose, k = _real_frame(seven_scenes, index)
        cv2.imwrite(str(seq_dir / f"{n:04d}_rgb.jpg"), np.zeros((*FRAME_SIZE, 3), np.uint8))
        write_pfm(seq_dir / f"{n:04d}_depth.pfm", depth)
        cv2.imwrite(str(seq_dir / f"{n:04d}_mask.png"), ((depth > 0) * 255).astype(np.uint8))
        stored = np.linalg.inv(pose) if world_to_camera else pose
        np.savez(seq_dir / f"{n:04d}_metadata.npz", camera_intrinsics=k, camera_pose=stored)
        np.savez(seq_dir / f"{n:04d}_rgb_pred_depth_depthpro.npz", depth=depth, focallength_px=k[0, 0])
        poses.append(pose)
    return np.stack(poses)


def test_pointodyssey_processed_sequences(tmp_path, seven_scenes):
    root = tmp_path / "PointOdyssey_proc"
    poses = _make_processed(root / "val" / "ani", seven_scenes, range(0, 8), world_to_camera=True)
    _make_processed(root / "val" / "cab_h", seven_scenes, range(10, 13), world_to_camera=True)
    seqs = load_benchmark("pointodyssey", root)
    assert [s.name for s in seqs] == ["ani", "cab_h"] and len(seqs[0]) == 8
    seq = seqs[0]
    # only *_rgb.jpg are frames (prior .npz, masks, metadata are not)
    assert [p.name for p in seq.frame_paths] == [f"{n:04d}_rgb.jpg" for n in range(8)]
    np.testing.assert_array_equal(seq.load_depth(3), _real_frame(seven_scenes, 3)[0].astype(np.float32))
    np.testing.assert_allclose(seq.trajectory.cam2world, poses, atol=1e-9)  # stored w2c, inverted
    assert seq.prior_path(1, "depthpro") == root / "val" / "ani" / "0001_rgb_pred_depth_depthpro.npz"
    assert seq.prior_path(1, "depthpro").is_file()


def test_flyingthings3d_takes_every_20th_folder(tmp_path, seven_scenes):
    root = tmp_path / "FlyingThings3D_proc"
    names = [f"{letter}/{seq:04d}/{side}" for letter in "AB" for seq in range(12) for side in ("left", "right")]
    for name in names:  # 48 folders, one frame each, except the ones the protocol picks
        (root / "TEST" / name).mkdir(parents=True)
    picked = sorted(names)[::20]
    assert picked == ["A/0000/left", "A/0010/left", "B/0008/left"]
    for name in picked:
        (root / "TEST" / name).rmdir()
        poses = _make_processed(root / "TEST" / name, seven_scenes, range(10), world_to_camera=False)
    seqs = load_benchmark("flyingthings3d", root)
    assert [s.name for s in seqs] == picked and all(len(s) == 10 for s in seqs)
    np.testing.assert_allclose(seqs[-1].trajectory.cam2world, poses, atol=1e-12)  # camera-to-world as stored


# --------------------------------------------------------------------------------------- DAVIS


def test_davis_real_clip_layout(tmp_path, data_dir):
    clip = data_dir / "davis_lady_running" / "demo_data" / "lady-running"
    davis = tmp_path / "DAVIS"
    (davis / "JPEGImages" / "480p").mkdir(parents=True)
    os.symlink(clip, davis / "JPEGImages" / "480p" / "lady-running")
    masks = davis / "Annotations" / "480p" / "lady-running"
    masks.mkdir(parents=True)
    label = np.zeros((480, 854), np.uint8)
    label[100:200, 300:400] = 1  # palette index 1: the object
    cv2.imwrite(str(masks / "00003.png"), label)
    seq = load_benchmark("davis", davis)[0]
    assert seq.name == "lady-running" and len(seq) == 65
    assert seq.frame_paths[0].name == "00000.jpg" and seq.frame_paths[-1].name == "00064.jpg"
    assert seq.depth_paths is None and seq.trajectory is None
    with pytest.raises(InputError, match="no ground-truth depth"):
        seq.load_depth(0)
    mask = seq.load_dynamic_mask(3)
    assert mask.sum() == 100 * 100 and mask[150, 350] and seq.load_dynamic_mask(0) is None
    assert seq.prior_path(0, "depthpro") == davis / "depth_prediction_depthpro" / "1080p" / "lady-running" / "00000.npz"


def test_unknown_benchmark_and_sequence(tmp_path):
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("kitti", tmp_path)
    with pytest.raises(InputError, match="no rgbd_bonn_"):
        load_benchmark("bonn", tmp_path)
    (tmp_path / "PointOdyssey_proc" / "val").mkdir(parents=True)
    with pytest.raises(InputError, match="PointOdyssey: no sequence folders found"):
        load_benchmark("pointodyssey", tmp_path / "PointOdyssey_proc")

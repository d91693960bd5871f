"""Preparation from raw downloads: tiny raw layouts in the official formats, run through the
library functions and the scripts, then read back through the readers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import PIL.Image
import pytest

from align3r.errors import InputError
from align3r.eval.datasets import load_benchmark, sintel_sequences
from align3r.eval.prepare import (
    prepare_flyingthings3d,
    prepare_pointodyssey,
    prepare_rgbd_subset,
    prepare_sintel,
)
from align3r.eval.prepare.sintel import ego_flow
from align3r.io.formats import read_pfm, write_dpt, write_flo, write_pfm, write_png_depth, write_sintel_cam
from align3r.io.trajectory import Trajectory, write_tum_trajectory

ROOT = Path(__file__).resolve().parents[2]


def _raw_rgbd(seq: Path, count: int) -> np.ndarray:
    stamps = 1305031102.0 + np.arange(count) / 30.0
    (seq / "rgb").mkdir(parents=True)
    (seq / "depth").mkdir()
    for i, stamp in enumerate(stamps):
        cv2.imwrite(str(seq / "rgb" / f"{stamp:.6f}.png"), np.full((2, 2, 3), i % 256, np.uint8))
        write_png_depth(seq / "depth" / f"{stamp + 0.01:.6f}.png", np.full((2, 2), 0.5 + i * 0.01), 5000)
    poses = np.tile(np.eye(4), (count, 1, 1))
    poses[:, 2, 3] = np.arange(count)
    write_tum_trajectory(seq / "groundtruth.txt", Trajectory(stamps, poses))
    text = (seq / "groundtruth.txt").read_text()
    (seq / "groundtruth.txt").write_text("# ground truth trajectory\n# file: 'x.bag'\n# timestamp tx ty tz qx qy qz qw\n" + text)
    return stamps


def test_rgbd_subset_takes_frames_and_rows_30_onwards(tmp_path):
    seq = tmp_path / "rgbd_dataset_freiburg3_walking_static"
    stamps = _raw_rgbd(seq, 90)
    assert prepare_rgbd_subset(seq, 50) == {"rgb": 50, "depth": 50, "poses": 50}
    assert sorted(p.name for p in (seq / "rgb_50").iterdir()) == [f"{s:.6f}.png" for s in stamps[30:80]]
    assert len(list((seq / "depth_50").iterdir())) == 50
    gt = np.loadtxt(seq / "groundtruth_50.txt")
    assert gt.shape == (50, 8) and gt[0, 3] == 30 and gt[-1, 3] == 79  # rows, comments skipped
    # numpy savetxt defaults, as the official script writes it
    assert (seq / "groundtruth_50.txt").read_text().splitlines()[0].split()[0] == f"{stamps[30]:.18e}"
    # re-running keeps the files; a stray file in the subset is an error
    mtime = (seq / "rgb_50" / f"{stamps[30]:.6f}.png").stat().st_mtime_ns
    prepare_rgbd_subset(seq, 50)
    assert (seq / "rgb_50" / f"{stamps[30]:.6f}.png").stat().st_mtime_ns == mtime
    (seq / "rgb_50" / "extra.png").write_bytes(b"")
    with pytest.raises(InputError, match="outside the evaluation subset"):
        prepare_rgbd_subset(seq, 50)


def test_rgbd_subset_symlinks_and_short_sequences(tmp_path):
    seq = tmp_path / "rgbd_bonn_crowd2"
    _raw_rgbd(seq, 140)
    prepare_rgbd_subset(seq, 110, mode="symlink")
    linked = sorted((seq / "rgb_110").iterdir())
    assert len(linked) == 110 and all(p.is_symlink() for p in linked)
    short = tmp_path / "rgbd_bonn_short"
    _raw_rgbd(short, 100)
    with pytest.raises(InputError, match="at least 140"):
        prepare_rgbd_subset(short, 110)


def test_prepare_scripts_run_and_report_errors(tmp_path):
    _raw_rgbd(tmp_path / "tum" / "rgbd_dataset_freiburg3_sitting_xyz", 85)
    script = ROOT / "scripts" / "eval" / "prepare_tum.py"
    done = subprocess.run([sys.executable, str(script), "--root", str(tmp_path / "tum")],
                          capture_output=True, text=True, check=True)
    assert "prepared 1 TUM sequence(s): rgbd_dataset_freiburg3_sitting_xyz" in done.stdout
    seq = load_benchmark("tum", tmp_path / "tum")[0]
    assert len(seq) == 50 and seq.load_depth(0)[0, 0] == pytest.approx(0.8)
    failed = subprocess.run([sys.executable, str(ROOT / "scripts" / "eval" / "prepare_bonn.py"),
                             "--root", str(tmp_path / "nowhere")], capture_output=True, text=True)
    assert failed.returncode == 2 and "error: no rgbd_bonn_* sequence folders" in failed.stderr
    assert "Traceback" not in failed.stderr


# ------------------------------------------------------------------------------------- Sintel


def test_ego_flow_of_a_sideways_move_is_f_tx_over_z():
    depth = np.full((6, 8), 4.0)
    depth[2:4, 2:5] = 2.0
    k = np.array([[100.0, 0, 4], [0, 100.0, 3], [0, 0, 1]])
    cam1 = np.eye(4)
    cam2 = np.eye(4)
    cam2[0, 3] = -0.2  # world-to-camera: the camera moves +0.2 m along x
    flow = ego_flow(depth, k, cam1, k, cam2)
    np.testing.assert_allclose(flow[..., 0], -100 * 0.2 / depth, atol=1e-12)
    np.testing.assert_allclose(flow[..., 1], 0, atol=1e-12)


def _raw_sintel_with_flow(root: Path, seven_scenes, seq: str = "ambush_4") -> np.ndarray:
    """Real 7-Scenes depth and poses as Sintel files (merged layout, 3 frames) with GT flow equal
    to the camera-induced flow except on a patch that moves by 0.5 px; returns that patch."""
    frame, k_full, _ = seven_scenes
    k = np.diag([0.25, 0.25, 1.0]) @ k_full
    training = root / "training"
    for sub in ("final", "depth", "camdata_left", "flow"):
        (training / sub / seq).mkdir(parents=True)
    frames = [frame(i) for i in (20, 23, 26)]
    moving = np.zeros((120, 160), bool)
    moving[40:70, 60:100] = True
    for n, (depth, pose, _) in enumerate(frames, start=1):
        depth = depth[::4, ::4].copy()
        depth[depth == 0] = 2.0  # Sintel depth is dense
        cv2.imwrite(str(training / "final" / seq / f"frame_{n:04d}.png"), np.zeros((120, 160, 3), np.uint8))
        write_dpt(training / "depth" / seq / f"frame_{n:04d}.dpt", depth)
        write_sintel_cam(training / "camdata_left" / seq / f"frame_{n:04d}.cam", k, np.linalg.inv(pose))
        frames[n - 1] = (depth, pose)
    for n in (1, 2):
        (d1, p1), (_, p2) = frames[n - 1], frames[n]
        # independent ego flow: back-project, move to camera 2, project
        v, u = np.mgrid[0:120, 0:160].astype(float)
        pts = np.stack([(u - k[0, 2]) / k[0, 0] * d1, (v - k[1, 2]) / k[1, 1] * d1, d1], -1)
        rel = np.linalg.inv(p2) @ p1
        q = pts @ rel[:3, :3].T + rel[:3, 3]
        flow = np.stack([k[0, 0] * q[..., 0] / q[..., 2] + k[0, 2] - u,
                         k[1, 1] * q[..., 1] / q[..., 2] + k[1, 2] - v], -1)
        flow[moving] += [0.3, 0.4]  # 0.5 px of object motion > 0.1 px threshold
        write_flo(training / "flow" / seq / f"frame_{n:04d}.flo", flow)
    return moving


def test_sintel_dynamic_labels_mark_exactly_the_moving_pixels(tmp_path, seven_scenes):
    """The labels must be the moving patch, nothing else."""
    seq = "ambush_4"
    moving = _raw_sintel_with_flow(tmp_path, seven_scenes, seq)
    assert prepare_sintel(tmp_path) == {seq: 2}
    labels = tmp_path / "training" / "dynamic_label_perfect" / seq
    assert sorted(p.name for p in labels.iterdir()) == ["frame_0001.png", "frame_0002.png"]
    out = sintel_sequences(tmp_path, task="pose", sequences=[seq])[0]
    for i in (0, 1):
        np.testing.assert_array_equal(out.load_dynamic_mask(i), moving)
    assert out.load_dynamic_mask(2) is None  # the last frame has no successor
    assert prepare_sintel(tmp_path) == {seq: 0}  # existing labels are kept


def test_sintel_without_flow_skips_the_labels_with_a_warning(tmp_path, seven_scenes, caplog):
    _raw_sintel_with_flow(tmp_path, seven_scenes)
    (tmp_path / "training" / "flow").rename(tmp_path / "elsewhere")
    with caplog.at_level("WARNING"):
        assert prepare_sintel(tmp_path) == {}
    assert "dynamic labels skipped" in caplog.text and "MPI-Sintel-training_extras.zip" in caplog.text
    assert not (tmp_path / "training" / "dynamic_label_perfect").exists()
    with pytest.raises(InputError, match="is not a folder"):
        prepare_sintel(tmp_path, flow_dir=tmp_path / "nowhere")
    assert prepare_sintel(tmp_path, flow_dir=tmp_path / "elsewhere") == {"ambush_4": 2}


def _script(name: str, *args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "eval" / name), *map(str, args)],
                          capture_output=True, text=True)


def test_prepare_sintel_script_with_and_without_flow(tmp_path, seven_scenes):
    moving = _raw_sintel_with_flow(tmp_path, seven_scenes)
    (tmp_path / "training" / "flow").rename(tmp_path / "flow")
    done = _script("prepare_sintel.py", "--root", tmp_path)
    assert done.returncode == 0, done.stderr
    assert "dynamic labels: 0 written for 0 sequence(s)" in done.stdout
    assert "layout OK: 1 sequences, 3 frames (final pass)" in done.stdout
    assert "WARNING: no Sintel flow folder" in done.stderr
    done = _script("prepare_sintel.py", "--root", tmp_path, "--flow-dir", tmp_path / "flow")
    assert done.returncode == 0 and "dynamic labels: 2 written for 1 sequence(s)" in done.stdout
    seq = sintel_sequences(tmp_path, task="pose", sequences=["ambush_4"])[0]
    np.testing.assert_array_equal(seq.load_dynamic_mask(1), moving)
    failed = _script("prepare_sintel.py", "--root", tmp_path / "nowhere")
    assert failed.returncode == 2 and failed.stderr.startswith("error: ") and "Traceback" not in failed.stderr


# -------------------------------------------------------------------- processed layout
# The processing is align3r.data.prepare's (training data); these check the evaluation splits
# come out where, and as, the readers expect.

BLENDER_TO_OPENCV = np.diag([1.0, -1.0, -1.0, 1.0])


def _raw_pointodyssey(raw: Path, count: int = 3, name: str = "scene_d78"):
    """A raw PointOdyssey sequence (``rgbs/``, 16-bit ``depths/``, ``anno.npz``) at 960x540;
    returns the raw depth PNGs and the stored extrinsics."""
    rng = np.random.default_rng(0)
    seq = raw / "val" / name
    (seq / "rgbs").mkdir(parents=True)
    (seq / "depths").mkdir()
    raw_depths = []
    for i in range(count):
        PIL.Image.fromarray(rng.integers(0, 255, (540, 960, 3), dtype=np.uint8)).save(seq / "rgbs" / f"rgb_{i:05d}.jpg")
        depth = rng.integers(1, 65535, (540, 960)).astype(np.uint16)
        depth[:10] = 0  # no reading
        cv2.imwrite(str(seq / "depths" / f"depth_{i:05d}.png"), depth)
        raw_depths.append(depth)
    intrinsics = np.tile(np.array([[700.0, 0, 480], [0, 700.0, 270], [0, 0, 1]], np.float32), (count, 1, 1))
    extrinsics = np.tile(np.eye(4, dtype=np.float32), (count, 1, 1))
    extrinsics[:, 0, 3] = np.arange(count)
    np.savez(seq / "anno.npz", intrinsics=intrinsics, extrinsics=extrinsics, trajs_3d=np.zeros((count, 1, 3)))
    return raw_depths, extrinsics


def test_prepare_pointodyssey_round_trip(tmp_path):
    raw_depths, extrinsics = _raw_pointodyssey(tmp_path / "raw")

    assert prepare_pointodyssey(tmp_path / "raw", tmp_path / "PointOdyssey_proc") == 3
    out_dir = tmp_path / "PointOdyssey_proc" / "val" / "scene_d78"
    assert sorted(p.name for p in out_dir.iterdir())[:4] == [
        "0000_depth.pfm", "0000_mask.png", "0000_metadata.npz", "0000_rgb.jpg"]
    depth = read_pfm(out_dir / "0001_depth.pfm")
    assert depth.shape == (384, 682)
    metres = raw_depths[1].astype(np.float32) / 65535.0 * 1000.0
    assert np.isin(depth, metres).all()  # nearest neighbour: no new values
    mask = cv2.imread(str(out_dir / "0001_mask.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(mask == 255, (depth > 0) & (depth < 400))

    seqs = load_benchmark("pointodyssey", tmp_path / "PointOdyssey_proc")
    assert [s.name for s in seqs] == ["scene_d78"] and len(seqs[0]) == 3
    np.testing.assert_array_equal(seqs[0].load_depth(1), depth)
    # stored: extrinsics . diag(1,-1,-1,1); the reader inverts it
    expected = np.linalg.inv(extrinsics[2] @ BLENDER_TO_OPENCV)
    np.testing.assert_allclose(seqs[0].trajectory.cam2world[2], expected, atol=1e-6)
    assert seqs[0].intrinsics[0][0, 0] == pytest.approx(700 * (384 / 540 + 1e-8))
    assert prepare_pointodyssey(tmp_path / "raw", tmp_path / "po2", max_frames=1) == 1
    with pytest.raises(InputError, match="scene_x"):
        prepare_pointodyssey(tmp_path / "raw", tmp_path / "po3", sequences=["scene_x"])


def _raw_flyingthings3d(raw: Path) -> dict[str, list[np.ndarray]]:
    """Raw FlyingThings3D files of TEST/A/0000 (frames 6 and 7, both eyes): finalpass PNGs,
    disparity PFMs (row 0 NaN, row 1 negative) and camera_data.txt; returns the poses per eye."""
    rel = Path("TEST") / "A" / "0000"
    poses = {side: [np.eye(4) for _ in range(2)] for side in "LR"}
    for n in range(2):
        poses["L"][n][0, 3] = n
        poses["R"][n][0, 3] = n + 0.5
    for side in ("left", "right"):
        (raw / "frames_finalpass" / rel / side).mkdir(parents=True)
        (raw / "disparity" / rel / side).mkdir(parents=True)
        for n in (6, 7):
            PIL.Image.new("RGB", (960, 540), (n, 0, 0)).save(raw / "frames_finalpass" / rel / side / f"{n:04d}.png")
            disparity = np.full((540, 960), 10.0 + n, np.float32)
            disparity[0, :] = np.nan
            disparity[1, :] = -1.0
            write_pfm(raw / "disparity" / rel / side / f"{n:04d}.pfm", disparity)
    (raw / "camera_data" / rel).mkdir(parents=True)
    lines = []
    for n in range(2):
        lines += [f"Frame {n + 6}", "L " + " ".join(map(str, poses["L"][n].ravel())),
                  "R " + " ".join(map(str, poses["R"][n].ravel())), ""]
    (raw / "camera_data" / rel / "camera_data.txt").write_text("\n".join(lines))
    return poses


def test_prepare_flyingthings3d_round_trip(tmp_path):
    raw = tmp_path / "FlyingThings3D"
    poses = _raw_flyingthings3d(raw)

    assert prepare_flyingthings3d(raw, tmp_path / "FlyingThings3D_proc") == 4
    seqs = load_benchmark("flyingthings3d", tmp_path / "FlyingThings3D_proc", sequences="all")
    assert [s.name for s in seqs] == ["A/0000/left", "A/0000/right"]
    right = seqs[1]
    assert [p.name for p in right.frame_paths] == ["0006_rgb.jpg", "0007_rgb.jpg"]
    depth = right.load_depth(1)
    assert depth.shape == (384, 683)
    assert depth[200, 300] == pytest.approx(1050 / 17)  # depth = f / disparity
    assert depth.max() == pytest.approx(1050 / 1e-3)  # NaN / negative disparity -> 1e-3
    np.testing.assert_allclose(right.trajectory.cam2world[1], poses["R"][1] @ BLENDER_TO_OPENCV, atol=1e-6)
    # the principal-point crop is 959x539 (official `datasets_preprocess/preprocess_Flythings3D.py`)
    scale = max(682 / 959, 384 / 539) + 1e-8
    assert right.intrinsics[0][0, 0] == pytest.approx(1050 * scale)
    assert right.intrinsics[0][0, 2] == pytest.approx((479.5 + 0.5) * scale - 0.5 * (959 * scale - 683) - 0.5)


def test_prepare_pointodyssey_script(tmp_path):
    _raw_pointodyssey(tmp_path / "raw", count=2)
    done = _script("prepare_pointodyssey.py", "--raw", tmp_path / "raw", "--out", tmp_path / "PointOdyssey_proc",
                   "--max-frames", 1)
    assert done.returncode == 0, done.stderr
    assert f"processed 1 new frame(s) into {tmp_path / 'PointOdyssey_proc'}/val" in done.stdout
    [seq] = load_benchmark("pointodyssey", tmp_path / "PointOdyssey_proc")
    assert seq.name == "scene_d78" and len(seq) == 1 and seq.load_depth(0).shape == (384, 682)


def test_prepare_flyingthings3d_script(tmp_path):
    _raw_flyingthings3d(tmp_path / "raw")
    done = _script("prepare_flyingthings3d.py", "--raw", tmp_path / "raw", "--out", tmp_path / "FT_proc")
    assert done.returncode == 0, done.stderr
    assert f"processed 4 new frame(s) into {tmp_path / 'FT_proc'}/TEST" in done.stdout
    seqs = load_benchmark("flyingthings3d", tmp_path / "FT_proc", sequences="all")
    assert [s.name for s in seqs] == ["A/0000/left", "A/0000/right"]
    assert seqs[0].load_depth(0)[200, 300] == pytest.approx(1050 / 16)

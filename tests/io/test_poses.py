"""Known camera poses: each file format read back exactly and matched to frames by name / timestamp."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from align3r.errors import InputError
from align3r.io.poses import match_poses, read_poses
from align3r.io.trajectory import Trajectory, write_tum_trajectory

FRAMES = [0, 3, 6, 9, 12]


@pytest.fixture(scope="module")
def gt(data_dir):
    """(names, camera-to-world (N, 4, 4) metres) of 7-Scenes frames."""
    folder = data_dir / "seven_scenes_redkitchen_tsdf" / "data"
    poses = np.stack([np.loadtxt(folder / f"frame-{k:06d}.pose.txt") for k in FRAMES])
    # KinectFusion poses are orthonormal to ~1e-7 only: make them exactly rigid so a w2c round trip is exact
    u, _, vt = np.linalg.svd(poses[:, :3, :3])
    poses[:, :3, :3] = u @ vt
    return [f"frame-{k:06d}.color" for k in FRAMES], poses


def _colmap_rows(poses):
    """Per image (qvec w-first, tvec) of world-to-camera, as COLMAP stores them."""
    w2c = np.linalg.inv(poses)
    xyzw = Rotation.from_matrix(w2c[:, :3, :3]).as_quat()
    return np.concatenate([xyzw[:, 3:], xyzw[:, :3]], 1), w2c[:, :3, 3]


def write_images_txt(path, names, poses):
    q, t = _colmap_rows(poses)
    lines = ["# Image list with two lines of data per image:", "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME"]
    for k, name in enumerate(names):
        lines.append(" ".join([str(k + 1), *(repr(float(v)) for v in (*q[k], *t[k])), "1", name + ".jpg"]))
        lines.append("" if k % 2 else "10.5 20.5 -1 11.0 21.0 7")  # empty and non-empty 2-D point lines
    path.write_text("\n".join(lines) + "\n")


def write_images_bin(path, names, poses):
    q, t = _colmap_rows(poses)
    data = struct.pack("<Q", len(names))
    for k, name in enumerate(names):
        data += struct.pack("<i7di", k + 1, *q[k], *t[k], 1) + name.encode() + b".jpg\x00"
        data += struct.pack("<Q", k % 2) + struct.pack("<ddq", 1.5, 2.5, -1) * (k % 2)
    path.write_bytes(data)


@pytest.mark.parametrize("fmt", ["tum", "colmap_txt", "colmap_bin", "npy"])
def test_each_format_reads_back_the_poses(tmp_path, gt, fmt):
    names, poses = gt
    indices = np.asarray(FRAMES)
    if fmt == "tum":  # frame indices as timestamps, as a run without timestamps writes them
        path = tmp_path / "trajectory_tum.txt"
        write_tum_trajectory(path, Trajectory(indices.astype(float), poses))
    elif fmt == "colmap_txt":
        path = tmp_path / "images.txt"
        write_images_txt(path, names, poses)
    elif fmt == "colmap_bin":
        path = tmp_path / "images.bin"
        write_images_bin(path, names, poses)
    else:
        path = tmp_path / "poses.npy"
        full = np.tile(np.eye(4), (max(FRAMES) + 1, 1, 1))
        full[indices] = poses
        np.save(path, full)
    read = read_poses(path)
    assert read.format == fmt.split("_")[0]
    # shuffled frame order: matching is by name / timestamp / index, never by position in the file
    order = [2, 0, 4, 1, 3]
    matched = match_poses(read, [names[i] for i in order], indices[order])
    np.testing.assert_allclose(matched, poses[order], rtol=0, atol=1e-12)


def test_tum_matched_by_frame_timestamps_and_by_numeric_names(tmp_path, gt):
    _, poses = gt
    stamps = 1305031102.175 + np.arange(len(poses)) / 30
    path = tmp_path / "groundtruth.txt"
    write_tum_trajectory(path, Trajectory(stamps + 0.004, poses))  # another clock, a few ms apart
    read = read_poses(path)
    names = [f"{s:.6f}" for s in stamps]
    np.testing.assert_allclose(match_poses(read, ["x"] * 5, np.arange(5), stamps), poses, atol=1e-12)
    np.testing.assert_allclose(match_poses(read, names, np.arange(5)), poses, atol=1e-12)


def test_unmatched_frames_are_named(tmp_path, gt):
    names, poses = gt
    path = tmp_path / "images.txt"
    write_images_txt(path, names[:3], poses[:3])
    with pytest.raises(InputError, match=r"no pose for frame.*frame-000009\.color, frame-000012\.color"):
        match_poses(read_poses(path), names, np.asarray(FRAMES))
    np.save(tmp_path / "few.npy", poses[:2])
    with pytest.raises(InputError, match="no pose for frame"):
        match_poses(read_poses(tmp_path / "few.npy"), names, np.asarray(FRAMES))


def test_bad_pose_files_fail_clearly(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        read_poses(tmp_path / "missing.txt")
    np.save(tmp_path / "flat.npy", np.zeros((3, 4, 4)))
    with pytest.raises(InputError, match="not a rigid"):
        read_poses(tmp_path / "flat.npy")
    (tmp_path / "images.bin").write_bytes(b"\x05\x00")
    with pytest.raises(InputError, match=r"not a COLMAP images\.bin"):
        read_poses(tmp_path / "images.bin")

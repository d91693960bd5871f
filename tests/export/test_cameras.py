"""TUM trajectory (checked with evo) and intrinsics outputs."""

import json

import numpy as np
import pytest
from evo.tools import file_interface

from align3r.export.cameras import format_tum


def test_evo_reads_our_tum_trajectory_back_to_the_same_poses(written):
    out, recon, _, _ = written
    traj = file_interface.read_tum_trajectory_file(str(out / "cameras" / "trajectory_tum.txt"))
    assert traj.num_poses == 6
    np.testing.assert_allclose(traj.timestamps, [i / 30 for i in range(6)], atol=1e-9)
    np.testing.assert_allclose(np.stack(traj.poses_se3), recon.cam2world.numpy(), atol=1e-6)


def test_tum_order_is_scalar_last():
    # A 90 degree turn about z: quaternion (x, y, z, w) = (0, 0, sin 45, cos 45).
    pose = np.eye(4)
    pose[:3, :3] = [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    pose[:3, 3] = [1, 2, 3]
    line = format_tum(np.array([0.5]), pose[None]).splitlines()[-1]
    np.testing.assert_allclose([float(v) for v in line.split()], [0.5, 1, 2, 3, 0, 0, np.sqrt(0.5), np.sqrt(0.5)],
                               atol=1e-8)


def test_real_tum_trajectory_survives_our_writer(tmp_path, data_dir):
    """A real trajectory (TUM fr1/xyz ground truth) read by evo, written by us, read by evo again."""
    src = data_dir / "evo_tum_trajectories" / "test" / "data" / "freiburg1_xyz-groundtruth.txt"
    ref = file_interface.read_tum_trajectory_file(str(src))
    poses = np.stack(ref.poses_se3)[:500]
    path = tmp_path / "t.txt"
    path.write_text(format_tum(ref.timestamps[:500], poses))
    back = file_interface.read_tum_trajectory_file(str(path))
    np.testing.assert_allclose(back.timestamps, ref.timestamps[:500], atol=1e-6)
    np.testing.assert_allclose(np.stack(back.poses_se3), poses, atol=1e-6)


def test_intrinsics_files(written):
    out, recon, _, _ = written
    k = np.load(out / "cameras" / "intrinsics.npy")
    assert np.array_equal(k, recon.intrinsics.numpy())
    doc = json.loads((out / "cameras" / "intrinsics.json").read_text())
    f3 = doc["network"]["frames"][3]
    assert (doc["network"]["width"], doc["network"]["height"]) == (64, 48)
    assert f3 == {"frame": "00003", "fx": pytest.approx(k[3, 0, 0]), "fy": pytest.approx(k[3, 1, 1]),
                  "cx": 32.0, "cy": 24.0}
    # Original resolution: 2x scale and a 4-pixel left offset (crop of 2 resized pixels).
    o3 = doc["original"]["frames"][3]
    assert (doc["original"]["width"], doc["original"]["height"]) == (136, 96)
    assert o3["fx"] == pytest.approx(2 * k[3, 0, 0])
    assert o3["cx"] == pytest.approx(2 * (32 + 0.5) + 4 - 0.5) and o3["cy"] == pytest.approx(2 * 24.5 - 0.5)

"""Trajectory files and association: real TUM files vs evo, the official pred_traj.txt text."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from evo.core import sync
from evo.tools import file_interface

from align3r.errors import InputError
from align3r.io.trajectory import (
    Trajectory,
    associate_timestamps,
    cam2world_to_tum_wxyz,
    format_official_trajectory,
    read_official_trajectory,
    read_tum_trajectory,
    tum_wxyz_to_cam2world,
    write_official_trajectory,
    write_tum_trajectory,
)

REAL_FILES = ["freiburg1_xyz-groundtruth.txt", "freiburg1_xyz-rgbdslam.txt", "fr2_desk_ORB.txt",
              "freiburg1_xyz-ORB_kf_mono.txt"]


@pytest.mark.parametrize("name", REAL_FILES)
def test_tum_reader_equals_evo_on_real_files(tum_trajectory_dir, name):
    ours = read_tum_trajectory(tum_trajectory_dir / name)
    evo = file_interface.read_tum_trajectory_file(str(tum_trajectory_dir / name))
    np.testing.assert_array_equal(ours.timestamps, evo.timestamps)
    np.testing.assert_allclose(ours.cam2world, np.array(evo.poses_se3), atol=1e-12)


def test_real_file_comment_lines_are_skipped(tum_trajectory_dir):
    traj = read_tum_trajectory(tum_trajectory_dir / "freiburg1_xyz-groundtruth.txt")
    assert len(traj) == 3000  # README: 3000 poses, 3 comment lines
    assert traj.timestamps[0] == pytest.approx(1305031098.6659)
    np.testing.assert_allclose(traj.positions[0], [1.3563, 0.6305, 1.6380])


def test_tum_write_read_round_trip(tum_trajectory_dir, tmp_path):
    traj = read_tum_trajectory(tum_trajectory_dir / "fr2_desk_ORB_kf_mono.txt")
    write_tum_trajectory(tmp_path / "t.txt", traj)
    back = read_tum_trajectory(tmp_path / "t.txt")
    np.testing.assert_array_equal(back.timestamps, traj.timestamps)
    np.testing.assert_allclose(back.cam2world, traj.cam2world, atol=1e-15)
    # and evo reads what we wrote as the same poses (scalar-last order on disk)
    evo = file_interface.read_tum_trajectory_file(str(tmp_path / "t.txt"))
    np.testing.assert_allclose(np.array(evo.poses_se3), traj.cam2world, atol=1e-12)


def test_cam2world_to_tum_equals_the_reference_conversion(metrics_inputs):
    for who in ("gt", "pred"):
        tum = cam2world_to_tum_wxyz(metrics_inputs[f"pose_{who}_c2w"])
        np.testing.assert_array_equal(tum, metrics_inputs[f"pose_{who}_tum_wxyz"])
        np.testing.assert_allclose(tum_wxyz_to_cam2world(tum), metrics_inputs[f"pose_{who}_c2w"], atol=1e-12)


def test_official_pred_traj_text_is_reproduced_exactly(metrics_inputs, metrics_reference, tmp_path):
    expected = metrics_reference["pose"]["reference_save_trajectory_tum_format_text"]
    text = format_official_trajectory(metrics_inputs["pose_timestamps"], metrics_inputs["pose_pred_tum_wxyz"])
    assert text == expected
    traj = Trajectory(metrics_inputs["pose_timestamps"], metrics_inputs["pose_pred_c2w"])
    write_official_trajectory(tmp_path / "pred_traj.txt", traj)
    assert (tmp_path / "pred_traj.txt").read_text() == expected
    back = read_official_trajectory(tmp_path / "pred_traj.txt")
    np.testing.assert_allclose(back.cam2world, traj.cam2world, atol=1e-12)
    # The same text read as standard TUM scrambles the rotations: the two readers must differ.
    misread = read_tum_trajectory(tmp_path / "pred_traj.txt")
    assert np.abs(misread.cam2world[:, :3, :3] - traj.cam2world[:, :3, :3]).max() > 0.1


def test_nearest_association_equals_evo(tum_trajectory_dir):
    gt = read_tum_trajectory(tum_trajectory_dir / "freiburg1_xyz-groundtruth.txt")
    est = read_tum_trajectory(tum_trajectory_dir / "freiburg1_xyz-rgbdslam.txt")
    for max_diff in (0.005, 0.01, 0.02):
        qi, ri = associate_timestamps(est.timestamps, gt.timestamps, max_diff)
        evo_q, evo_r = sync.matching_time_indices(est.timestamps, gt.timestamps, max_diff)
        assert qi.tolist() == evo_q and ri.tolist() == evo_r
        assert np.all(np.abs(est.timestamps[qi] - gt.timestamps[ri]) <= max_diff)


def _greedy_reference(first, second, max_difference):
    """TUM associate.py, written out naively: all pairs, sorted, greedy one-to-one."""
    candidates = sorted((abs(a - b), a, b) for a, b in itertools.product(first, second)
                        if abs(a - b) < max_difference)
    used_a, used_b, matches = set(), set(), []
    for _, a, b in candidates:
        if a not in used_a and b not in used_b:
            used_a.add(a)
            used_b.add(b)
            matches.append((a, b))
    return sorted(matches)


def test_one_to_one_association_equals_the_tum_rule():
    rng = np.random.default_rng(3)
    rgb = np.sort(100 + rng.uniform(0, 3, 60))
    gt = np.sort(100 + rng.uniform(0, 3, 200))
    qi, ri = associate_timestamps(rgb, gt, 0.02, one_to_one=True)
    expected = _greedy_reference(rgb.tolist(), gt.tolist(), 0.02)
    assert list(zip(rgb[qi].tolist(), gt[ri].tolist())) == expected
    # unsorted reference stamps give the same pairs (indices into the unsorted array)
    perm = rng.permutation(200)
    qi2, ri2 = associate_timestamps(rgb, gt[perm], 0.02, one_to_one=True)
    assert list(zip(rgb[qi2].tolist(), gt[perm][ri2].tolist())) == expected


def test_bad_trajectory_files(tmp_path):
    (tmp_path / "short.txt").write_text("# header\n1.0 0 0 0 0 0 0\n")
    with pytest.raises(InputError, match=r"short\.txt:2: expected 8 values"):
        read_tum_trajectory(tmp_path / "short.txt")
    (tmp_path / "zero.txt").write_text("1.0 0 0 0 0 0 0 0\n")
    with pytest.raises(InputError, match="zero quaternion"):
        read_tum_trajectory(tmp_path / "zero.txt")
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InputError, match="no poses"):
        read_tum_trajectory(tmp_path / "empty.txt")
    with pytest.raises(InputError, match="not found"):
        read_official_trajectory(tmp_path / "missing.txt")

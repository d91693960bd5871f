"""Pose metrics: equal to the official eval_metrics (fixture) and to evo's API on real TUM data."""

from __future__ import annotations

import evo.main_ape as main_ape
import evo.main_rpe as main_rpe
import numpy as np
import pytest
from evo.core import metrics, sync
from evo.core.trajectory import PoseTrajectory3D
from evo.tools import file_interface

from align3r.errors import InputError
from align3r.eval.pose_metrics import PoseResult, average_pose_results, evaluate_trajectory
from align3r.io.trajectory import associate_timestamps, read_tum_trajectory

REL = 1e-6


def test_equals_the_official_eval_metrics(metrics_inputs, metrics_reference):
    ref = metrics_reference["pose"]["reference_eval_metrics"]
    out = evaluate_trajectory(metrics_inputs["pose_pred_c2w"], metrics_inputs["pose_gt_c2w"],
                              metrics_inputs["pose_timestamps"])
    assert not out.degenerate and out.num_poses == 30
    assert out.ate == pytest.approx(ref["ATE"], rel=REL)
    assert out.rpe_trans == pytest.approx(ref["RPE_trans"], rel=REL)
    assert out.rpe_rot == pytest.approx(ref["RPE_rot_deg"], rel=REL)
    # timestamps only order the pairs: frame indices give the same numbers
    again = evaluate_trajectory(metrics_inputs["pose_pred_c2w"], metrics_inputs["pose_gt_c2w"])
    assert again.as_dict() == pytest.approx(out.as_dict(), rel=1e-12)


# fixture entry of pose.evo_direct -> (evaluate_trajectory keywords, PoseResult field)
EVO_DIRECT = {
    "ATE_trans_sim3": ({}, "ate"),
    "ATE_trans_se3": ({"alignment": "se3"}, "ate"),
    "ATE_trans_unaligned": ({"alignment": "none"}, "ate"),
    "RPE_trans_sim3_delta1": ({}, "rpe_trans"),
    "RPE_trans_sim3_delta1_all_pairs": ({"rpe_all_pairs": True}, "rpe_trans"),
    "RPE_trans_sim3_delta5": ({"rpe_delta": 5}, "rpe_trans"),  # evo's default pairs (0,5), (5,10), ...
    "RPE_trans_unaligned_delta1": ({"alignment": "none"}, "rpe_trans"),
    "RPE_rot_deg_sim3_delta1": ({}, "rpe_rot"),
    "RPE_rot_rad_sim3_delta1": ({"degrees": False}, "rpe_rot"),
    "RPE_rot_deg_unaligned_delta1": ({"alignment": "none"}, "rpe_rot"),
}


def test_every_evo_direct_entry_is_checked(metrics_reference):
    for version, entries in metrics_reference["pose"]["evo_direct"].items():
        assert set(entries) - {"evo_version", "umeyama_sim3"} == set(EVO_DIRECT), version


@pytest.mark.parametrize("entry", sorted(EVO_DIRECT))
def test_equals_evo_core_api_conventions(metrics_inputs, metrics_reference, entry):
    """SE(3) / unaligned ATE, radians, all-pairs and delta-5 RPE: each fixture entry (identical
    under evo 1.30.6, 1.37.1 and 1.38.1) to 1e-6."""
    kwargs, field = EVO_DIRECT[entry]
    out = evaluate_trajectory(metrics_inputs["pose_pred_c2w"], metrics_inputs["pose_gt_c2w"],
                              metrics_inputs["pose_timestamps"], **kwargs)
    for version, entries in metrics_reference["pose"]["evo_direct"].items():
        assert getattr(out, field) == pytest.approx(entries[entry]["rmse"], rel=REL), version


def test_umeyama_alignment_equals_evo(metrics_inputs, metrics_reference):
    out = evaluate_trajectory(metrics_inputs["pose_pred_c2w"], metrics_inputs["pose_gt_c2w"])
    for version, entries in metrics_reference["pose"]["evo_direct"].items():
        ref = entries["umeyama_sim3"]
        assert out.sim3_scale == pytest.approx(ref["s"], rel=REL), version
        np.testing.assert_allclose(out.sim3_rotation, ref["R"], rtol=REL, atol=1e-12)
        np.testing.assert_allclose(out.sim3_translation, ref["t"], rtol=REL, atol=1e-12)
    se3 = evaluate_trajectory(metrics_inputs["pose_pred_c2w"], metrics_inputs["pose_gt_c2w"], alignment="se3")
    assert se3.sim3_scale == 1.0 and np.allclose(se3.sim3_rotation @ se3.sim3_rotation.T, np.eye(3))
    none = evaluate_trajectory(metrics_inputs["pose_pred_c2w"], metrics_inputs["pose_gt_c2w"], alignment="none")
    assert none.sim3_scale == 1.0 and (none.sim3_rotation == np.eye(3)).all() and not none.sim3_translation.any()


def test_delta5_all_pairs_is_evo_all_pairs(metrics_inputs, metrics_reference):
    """At delta > 1 the pair choice matters: the default is the fixture's (evo's default),
    ``rpe_all_pairs=True`` is evo's ``all_pairs`` (every (i, i + 5))."""
    stamps = metrics_inputs["pose_timestamps"].astype(float)
    ref = PoseTrajectory3D(poses_se3=list(metrics_inputs["pose_gt_c2w"]), timestamps=stamps)
    est = PoseTrajectory3D(poses_se3=list(metrics_inputs["pose_pred_c2w"]), timestamps=stamps)
    expected = main_rpe.rpe(ref, est, metrics.PoseRelation.translation_part, delta=5, delta_unit=metrics.Unit.frames,
                            rel_delta_tol=0.01, all_pairs=True, align=True, correct_scale=True).stats["rmse"]
    out = evaluate_trajectory(metrics_inputs["pose_pred_c2w"], metrics_inputs["pose_gt_c2w"], rpe_delta=5,
                              rpe_all_pairs=True)
    assert out.rpe_trans == pytest.approx(expected, rel=REL)
    default = metrics_reference["pose"]["evo_direct"]["v1.38.1"]["RPE_trans_sim3_delta5"]["rmse"]
    assert abs(out.rpe_trans - default) > 1e-3  # 0.0853 vs 0.0728: not the same protocol


def test_float32_poses_are_accepted(metrics_inputs, metrics_reference):
    """The aligner returns float32: the quaternion path projects them back onto SO(3)."""
    import torch

    pred = torch.from_numpy(metrics_inputs["pose_pred_c2w"]).float()
    out = evaluate_trajectory(pred, metrics_inputs["pose_gt_c2w"])
    assert out.ate == pytest.approx(metrics_reference["pose"]["reference_eval_metrics"]["ATE"], rel=1e-5)


@pytest.mark.parametrize("gt_name, est_name", [
    ("fr2_desk_groundtruth.txt", "fr2_desk_ORB.txt"),
    ("freiburg1_xyz-groundtruth.txt", "freiburg1_xyz-rgbdslam.txt"),
    ("freiburg1_xyz-groundtruth.txt", "freiburg1_xyz-ORB_kf_mono.txt"),
])
def test_real_tum_trajectories_equal_evo_cli_api(tum_trajectory_dir, gt_name, est_name):
    """What `evo_ape tum gt est -as` / `evo_rpe ... --delta 1 --all_pairs -as` compute."""
    ref = file_interface.read_tum_trajectory_file(str(tum_trajectory_dir / gt_name))
    est = file_interface.read_tum_trajectory_file(str(tum_trajectory_dir / est_name))
    ref, est = sync.associate_trajectories(ref, est)
    common = dict(align=True, correct_scale=True)
    rpe = dict(delta=1, delta_unit=metrics.Unit.frames, rel_delta_tol=0.01, all_pairs=True, **common)
    ape = main_ape.ape(ref, est, metrics.PoseRelation.translation_part, **common).stats["rmse"]
    rot = main_rpe.rpe(ref, est, metrics.PoseRelation.rotation_angle_deg, **rpe).stats["rmse"]
    trans = main_rpe.rpe(ref, est, metrics.PoseRelation.translation_part, **rpe).stats["rmse"]

    gt = read_tum_trajectory(tum_trajectory_dir / gt_name)
    pred = read_tum_trajectory(tum_trajectory_dir / est_name)
    pi, gi = associate_timestamps(pred.timestamps, gt.timestamps, max_difference=0.01)
    out = evaluate_trajectory(pred.cam2world[pi], gt.cam2world[gi], pred.timestamps[pi])
    assert out.num_poses == ref.num_poses
    assert out.ate == pytest.approx(ape, rel=REL)
    assert out.rpe_rot == pytest.approx(rot, rel=REL)
    assert out.rpe_trans == pytest.approx(trans, rel=REL)


@pytest.mark.parametrize("case", ["identical", "collinear", "nan"])
def test_degenerate_trajectories_are_reported_not_raised(metrics_inputs, case):
    gt = metrics_inputs["pose_gt_c2w"][:10]
    pred = np.tile(np.eye(4), (10, 1, 1))
    if case == "collinear":
        pred[:, 0, 3] = np.arange(10) * 0.1  # positions on a line: covariance rank 1
    if case == "nan":
        pred = gt.copy()
        pred[3, 0, 3] = np.nan
    out = evaluate_trajectory(pred, gt)
    assert out.degenerate and np.isnan(out.ate) and np.isnan(out.rpe_rot)
    assert ("Degenerate covariance rank" in out.message) if case != "nan" else ("NaN" in out.message)


def test_average_skips_degenerate_sequences():
    good = [PoseResult(0.1, 0.2, 3.0, 30), PoseResult(0.3, 0.4, 1.0, 30)]
    bad = PoseResult(float("nan"), float("nan"), float("nan"), 30, degenerate=True, message="x")
    avg = average_pose_results([good[0], bad, good[1]])
    assert avg == pytest.approx({"ATE": 0.2, "RPE trans": 0.3, "RPE rot": 2.0, "sequences": 2, "skipped": 1})


def test_bad_pose_input(metrics_inputs):
    gt = metrics_inputs["pose_gt_c2w"]
    with pytest.raises(InputError, match="29 predicted poses for 30"):
        evaluate_trajectory(gt[:29], gt)
    with pytest.raises(InputError, match="at least 2"):
        evaluate_trajectory(gt[:1], gt[:1])
    with pytest.raises(InputError, match="camera-to-world"):
        evaluate_trajectory(gt[:, :3, :3], gt[:, :3, :3])
    with pytest.raises(ValueError, match="alignment"):
        evaluate_trajectory(gt, gt, alignment="sim2")

"""Camera-pose metrics with evo, as the official ``dust3r/utils/vo_eval.py::eval_metrics``.

- **ATE**: RMSE of the translation APE after a Sim(3) Umeyama alignment of the prediction onto
  the ground truth (evo ``align=True, correct_scale=True``).
- **RPE trans / RPE rot**: RMSE over consecutive frames (delta 1 frame, all pairs, relative delta
  tolerance 0.01) of the relative-pose translation error and rotation angle (**degrees**), on the
  same Sim(3)-aligned prediction.

Units: ATE and RPE trans in GT units (metres for TUM/Bonn); RPE rot in degrees.

When the positions do not determine a Sim(3) alignment (all cameras at one point, or on a line:
evo's "Degenerate covariance rank"), the sequence is reported as ``degenerate`` with NaN metrics
instead of crashing; the official scripts skip such sequences, and so does
:func:`average_pose_results`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from align3r.errors import Align3RError, InputError

try:
    from evo.core import metrics as evo_metrics
    from evo.core.geometry import GeometryException
    from evo.core.trajectory import PoseTrajectory3D
except ImportError as exc:  # evo is the optional "eval" extra
    raise Align3RError("pose metrics need evo: pip install 'align3r[eval]'") from exc
from align3r.eval.trajectory_io import cam2world_to_tum_wxyz

POSE_METRIC_NAMES = ("ATE", "RPE trans", "RPE rot")


@dataclass
class PoseResult:
    """Pose metrics of one sequence.

    - ``ate``: absolute trajectory error (RMSE, GT units) after Sim(3) alignment.
    - ``rpe_trans``: relative pose error, translation (RMSE, GT units), delta 1 frame.
    - ``rpe_rot``: relative pose error, rotation angle (RMSE, degrees), delta 1 frame.
    - ``num_poses``: poses compared.
    - ``sim3_scale``: the scale of the Sim(3) alignment (prediction -> GT).
    - ``degenerate``: True when no alignment was possible; metrics are then NaN and
      ``message`` says why.
    """

    ate: float
    rpe_trans: float
    rpe_rot: float
    num_poses: int
    sim3_scale: float = float("nan")
    degenerate: bool = False
    message: str = ""

    def as_dict(self) -> dict[str, float]:
        return dict(zip(POSE_METRIC_NAMES, (self.ate, self.rpe_trans, self.rpe_rot)))


def _as_poses(name: str, poses) -> np.ndarray:
    if hasattr(poses, "detach"):
        poses = poses.detach().cpu().numpy()
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] not in ((4, 4), (3, 4)):
        raise InputError(f"{name} must be (T, 4, 4) camera-to-world matrices, got shape {poses.shape}")
    return poses


def _evo_trajectory(cam2world: np.ndarray, timestamps: np.ndarray) -> PoseTrajectory3D:
    # The official code builds evo trajectories from positions + scalar-first quaternions.
    tum = cam2world_to_tum_wxyz(cam2world)
    return PoseTrajectory3D(positions_xyz=tum[:, :3], orientations_quat_wxyz=tum[:, 3:],
                            timestamps=timestamps)


def evaluate_trajectory(pred_c2w, gt_c2w, timestamps=None, *, rpe_delta: int = 1) -> PoseResult:
    """ATE and RPE of a predicted trajectory against ground truth, frame by frame.

    Args:
        pred_c2w: (T, 4, 4) predicted camera-to-world poses (any scale and world frame).
        gt_c2w: (T, 4, 4) ground-truth camera-to-world poses for the same frames, same order
            (associate first when the streams differ: ``trajectory_io.associate_timestamps``).
        timestamps: (T,) optional times; only used to order the RPE pairs (frame indices when None).
        rpe_delta: RPE frame gap (1 in the paper).
    Returns:
        A :class:`PoseResult`; ``degenerate`` instead of an exception when the positions admit no
        Sim(3) alignment or contain NaN/inf.
    Raises:
        InputError: shapes that do not pair up, or fewer than 2 poses.
    """
    pred = _as_poses("pred_c2w", pred_c2w)
    gt = _as_poses("gt_c2w", gt_c2w)
    if pred.shape[0] != gt.shape[0]:
        raise InputError(f"{pred.shape[0]} predicted poses for {gt.shape[0]} ground-truth poses; "
                         "evaluate the same frames (associate them by timestamp first).")
    n = pred.shape[0]
    if n < 2:
        raise InputError(f"pose metrics need at least 2 poses, got {n}.")
    stamps = np.arange(n, dtype=np.float64) if timestamps is None else np.asarray(timestamps, np.float64)
    if stamps.shape != (n,):
        raise InputError(f"timestamps must be ({n},), got {stamps.shape}")
    for name, poses in (("prediction", pred), ("ground truth", gt)):
        if not np.all(np.isfinite(poses)):
            return PoseResult(float("nan"), float("nan"), float("nan"), n, degenerate=True,
                              message=f"the {name} has NaN/inf poses")
    ref = _evo_trajectory(gt, stamps)
    est = _evo_trajectory(pred, stamps)
    try:
        _, _, scale = est.align(ref, correct_scale=True)
    except GeometryException as exc:  # "Degenerate covariance rank, Umeyama alignment is not possible"
        return PoseResult(float("nan"), float("nan"), float("nan"), n, degenerate=True, message=str(exc))
    ape = evo_metrics.APE(evo_metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))

    def rpe(relation: evo_metrics.PoseRelation) -> float:
        metric = evo_metrics.RPE(relation, delta=rpe_delta, delta_unit=evo_metrics.Unit.frames,
                                 rel_delta_tol=0.01, all_pairs=True)
        metric.process_data((copy.deepcopy(ref), copy.deepcopy(est)))
        return float(metric.get_statistic(evo_metrics.StatisticsType.rmse))

    return PoseResult(
        ate=float(ape.get_statistic(evo_metrics.StatisticsType.rmse)),
        rpe_trans=rpe(evo_metrics.PoseRelation.translation_part),
        rpe_rot=rpe(evo_metrics.PoseRelation.rotation_angle_deg),
        num_poses=n,
        sim3_scale=float(scale),
    )


def average_pose_results(results: Iterable[PoseResult]) -> dict[str, float]:
    """Uniform mean over sequences (as the official scripts), skipping degenerate ones.

    Returns:
        ``{"ATE", "RPE trans", "RPE rot"}`` means plus ``"sequences"`` (how many entered the
        mean) and ``"skipped"`` (how many were degenerate).
    """
    results = list(results)
    good = [r for r in results if not r.degenerate]
    out = {k: float(np.mean([r.as_dict()[k] for r in good])) if good else float("nan")
           for k in POSE_METRIC_NAMES}
    out["sequences"] = len(good)
    out["skipped"] = len(results) - len(good)
    return out

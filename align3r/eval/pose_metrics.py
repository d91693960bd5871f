"""Camera-pose metrics with evo, as the official ``dust3r/utils/vo_eval.py::eval_metrics``.

- **ATE**: RMSE of the translation APE after a Sim(3) Umeyama alignment of the prediction onto
  the ground truth (evo ``align=True, correct_scale=True``).
- **RPE trans / RPE rot**: RMSE over frame pairs ``delta`` frames apart (delta 1, relative delta
  tolerance 0.01) of the relative-pose translation error and rotation angle (**degrees**), on the
  same Sim(3)-aligned prediction.

Units: ATE and RPE trans in GT units (metres for TUM/Bonn); RPE rot in degrees (radians with
``degrees=False``).

RPE pairs: the official script passes ``all_pairs=True``, which for its delta of 1 frame gives the
same pairs as evo's default (consecutive frames). For ``rpe_delta`` > 1 the two differ: evo's
default (``rpe_all_pairs=False``, ours too) takes the pairs (0, d), (d, 2d), ..., ``all_pairs``
every (i, i + d). The fixtures' delta-5 value is evo's default.

When the positions do not determine a Sim(3) alignment (all cameras at one point, or on a line:
evo's "Degenerate covariance rank"), the sequence is reported as ``degenerate`` with NaN metrics
instead of crashing; the official scripts skip such sequences, and so does
:func:`average_pose_results`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from align3r.errors import Align3RError, InputError

try:
    from evo.core import metrics as evo_metrics
    from evo.core.geometry import GeometryException
    from evo.core.trajectory import PoseTrajectory3D
except ImportError as exc:  # evo is the optional "eval" extra
    raise Align3RError("pose metrics need evo: pip install 'align3r[eval]'") from exc
from align3r.io.trajectory import cam2world_to_tum_wxyz

POSE_METRIC_NAMES = ("ATE", "RPE trans", "RPE rot")
POSE_ALIGNMENTS = ("sim3", "se3", "none")
"""Alignment of the prediction onto the GT before the metrics: Umeyama with scale (the official
choice), Umeyama without scale, or none."""


@dataclass
class PoseResult:
    """Pose metrics of one sequence.

    - ``ate``: absolute trajectory error (RMSE, GT units) after Sim(3) alignment.
    - ``rpe_trans``: relative pose error, translation (RMSE, GT units), delta 1 frame.
    - ``rpe_rot``: relative pose error, rotation angle (RMSE, degrees), delta 1 frame.
    - ``num_poses``: poses compared.
    - ``sim3_scale``, ``sim3_rotation`` (3, 3), ``sim3_translation`` (3,): the alignment applied
      to the prediction, ``x_gt ≈ s R x_pred + t`` (scale 1 for ``"se3"``, identity for ``"none"``).
    - ``degenerate``: True when no alignment was possible; metrics are then NaN and
      ``message`` says why.
    """

    ate: float
    rpe_trans: float
    rpe_rot: float
    num_poses: int
    sim3_scale: float = float("nan")
    sim3_rotation: np.ndarray | None = field(default=None, compare=False)
    sim3_translation: np.ndarray | None = field(default=None, compare=False)
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


def evaluate_trajectory(pred_c2w, gt_c2w, timestamps=None, *, rpe_delta: int = 1, rpe_all_pairs: bool = False,
                        alignment: str = "sim3", degrees: bool = True) -> PoseResult:
    """ATE and RPE of a predicted trajectory against ground truth, frame by frame.

    Args:
        pred_c2w: (T, 4, 4) predicted camera-to-world poses (any scale and world frame).
        gt_c2w: (T, 4, 4) ground-truth camera-to-world poses for the same frames, same order
            (associate first when the streams differ: ``align3r.io.trajectory.associate_timestamps``).
        timestamps: (T,) optional times; only used to order the RPE pairs (frame indices when None).
        rpe_delta: RPE frame gap (1 in the paper).
        rpe_all_pairs: RPE over every pair (i, i + delta) instead of (0, d), (d, 2d), ... (module
            docstring; the same pairs at delta 1).
        alignment: :data:`POSE_ALIGNMENTS` (``"sim3"``: the official protocol).
        degrees: RPE rotation in degrees (official) or radians.
    Returns:
        A :class:`PoseResult`; ``degenerate`` instead of an exception when the positions admit no
        Sim(3) alignment or contain NaN/inf.
    Raises:
        InputError: shapes that do not pair up, or fewer than 2 poses.
    """
    if alignment not in POSE_ALIGNMENTS:
        raise ValueError(f"alignment must be one of {POSE_ALIGNMENTS}, got {alignment!r}")
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
    rotation, translation, scale = np.eye(3), np.zeros(3), 1.0
    if alignment != "none":
        try:
            rotation, translation, scale = est.align(ref, correct_scale=alignment == "sim3")
        except GeometryException as exc:  # "Degenerate covariance rank, Umeyama alignment is not possible"
            return PoseResult(float("nan"), float("nan"), float("nan"), n, degenerate=True, message=str(exc))
    ape = evo_metrics.APE(evo_metrics.PoseRelation.translation_part)
    ape.process_data((ref, est))

    def rpe(relation: evo_metrics.PoseRelation) -> float:
        metric = evo_metrics.RPE(relation, delta=rpe_delta, delta_unit=evo_metrics.Unit.frames,
                                 rel_delta_tol=0.01, all_pairs=rpe_all_pairs)
        metric.process_data((copy.deepcopy(ref), copy.deepcopy(est)))
        return float(metric.get_statistic(evo_metrics.StatisticsType.rmse))

    angle = evo_metrics.PoseRelation.rotation_angle_deg if degrees else evo_metrics.PoseRelation.rotation_angle_rad
    return PoseResult(
        ate=float(ape.get_statistic(evo_metrics.StatisticsType.rmse)),
        rpe_trans=rpe(evo_metrics.PoseRelation.translation_part),
        rpe_rot=rpe(angle),
        num_poses=n,
        sim3_scale=float(scale),
        sim3_rotation=np.asarray(rotation, np.float64),
        sim3_translation=np.asarray(translation, np.float64),
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

"""Camera trajectories: the in-memory value, TUM text files, and timestamp association.

Two text layouts exist and are easy to confuse:

- **TUM** (the TUM RGB-D benchmark, evo, Bonn): ``timestamp tx ty tz qx qy qz qw`` — quaternion
  **scalar last**; ``#`` starts a comment.
- **Official Align3R/MonST3R ``pred_traj.txt``**: ``t x y z qw qx qy qz`` — quaternion **scalar
  first** (official ``dust3r/utils/vo_eval.py``, ``save_trajectory_tum_format``, called by
  ``dust3r/cloud_opt_flow/base_opt.py``, ``save_tum_poses``). Reading it with a TUM reader silently
  scrambles the rotations, so it
  has its own reader/writer here.

Poses are camera-to-world, translations in the file's units (metres for the real benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from align3r.errors import InputError


@dataclass
class Trajectory:
    """A timed sequence of camera poses.

    - ``timestamps``: (N,) float64, seconds (TUM/Bonn) or frame numbers (Sintel, predictions).
    - ``cam2world``: (N, 4, 4) float64 camera-to-world matrices (OpenCV camera axes).
    """

    timestamps: np.ndarray
    cam2world: np.ndarray

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype=np.float64).reshape(-1)
        self.cam2world = np.asarray(self.cam2world, dtype=np.float64)
        n = self.timestamps.shape[0]
        if self.cam2world.shape != (n, 4, 4):
            raise ValueError(f"cam2world must be (N, 4, 4) with N = {n} timestamps, "
                             f"got {self.cam2world.shape}")

    def __len__(self) -> int:
        return int(self.timestamps.shape[0])

    def subset(self, index) -> Trajectory:
        """The poses at ``index`` (a slice, an int array or a bool mask)."""
        return Trajectory(self.timestamps[index], self.cam2world[index])

    @property
    def positions(self) -> np.ndarray:
        """(N, 3) camera centres in world coordinates."""
        return self.cam2world[:, :3, 3]

    def as_tum_wxyz(self) -> np.ndarray:
        """(N, 7) ``[x, y, z, qw, qx, qy, qz]``: see :func:`cam2world_to_tum_wxyz`."""
        return cam2world_to_tum_wxyz(self.cam2world)


def cam2world_to_tum_wxyz(cam2world: np.ndarray) -> np.ndarray:
    """(N, 4, 4) poses -> (N, 7) ``[x, y, z, qw, qx, qy, qz]`` (scalar-first quaternion).

    The quaternion comes from scipy's ``Rotation.from_matrix`` (which projects a slightly
    non-orthonormal matrix onto SO(3)) without sign canonicalisation, exactly as the official
    ``c2w_to_tumpose`` produces it.
    """
    cam2world = np.asarray(cam2world, dtype=np.float64)
    if cam2world.ndim != 3 or cam2world.shape[1:] not in ((4, 4), (3, 4)):
        raise ValueError(f"cam2world must be (N, 4, 4), got {cam2world.shape}")
    xyzw = Rotation.from_matrix(cam2world[:, :3, :3]).as_quat()
    return np.concatenate([cam2world[:, :3, 3], xyzw[:, 3:], xyzw[:, :3]], axis=1)


def tum_wxyz_to_cam2world(poses: np.ndarray) -> np.ndarray:
    """(N, 7) ``[x, y, z, qw, qx, qy, qz]`` -> (N, 4, 4) camera-to-world (quaternions normalised)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[1] != 7:
        raise ValueError(f"poses must be (N, 7), got {poses.shape}")
    out = np.tile(np.eye(4), (poses.shape[0], 1, 1))
    if poses.shape[0]:
        out[:, :3, :3] = Rotation.from_quat(poses[:, [4, 5, 6, 3]]).as_matrix()
    out[:, :3, 3] = poses[:, :3]
    return out


def _read_rows(path: str | Path, what: str) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} not found: {path}. Check the dataset root and its layout "
                         "(docs/reproducing.md).")
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").split()
        if len(fields) != 8:
            raise InputError(f"{path}:{number}: expected 8 values (timestamp, 3 position, 4 "
                             f"quaternion), got {len(fields)}: {line[:80]!r}")
        try:
            rows.append([float(v) for v in fields])
        except ValueError:
            raise InputError(f"{path}:{number}: not a number in {line[:80]!r}") from None
    if not rows:
        raise InputError(f"{path} holds no poses (only comments or blank lines).")
    values = np.asarray(rows, dtype=np.float64)
    quat_norm = np.linalg.norm(values[:, 4:8], axis=1)
    if not np.all(np.isfinite(values)) or np.any(quat_norm < 1e-6):
        bad = int(np.flatnonzero(~np.isfinite(values).all(1) | (quat_norm < 1e-6))[0])
        raise InputError(f"{path}: pose {bad} is not finite or has a zero quaternion.")
    return values


def read_tum_trajectory(path: str | Path) -> Trajectory:
    """Read a standard TUM trajectory (``timestamp tx ty tz qx qy qz qw``, ``#`` comments)."""
    values = _read_rows(path, "TUM trajectory")
    poses = np.concatenate([values[:, 1:4], values[:, 7:8], values[:, 4:7]], axis=1)
    return Trajectory(values[:, 0], tum_wxyz_to_cam2world(poses))


def write_tum_trajectory(path: str | Path, trajectory: Trajectory) -> None:
    """Write a standard TUM trajectory file (``timestamp tx ty tz qx qy qz qw``), full precision."""
    wxyz = trajectory.as_tum_wxyz()
    rows = np.concatenate([trajectory.timestamps[:, None], wxyz[:, :3], wxyz[:, 4:7], wxyz[:, 3:4]], 1)
    Path(path).write_text("".join(" ".join(repr(float(v)) for v in row) + "\n" for row in rows))


def read_official_trajectory(path: str | Path) -> Trajectory:
    """Read an official ``pred_traj.txt`` (``t x y z qw qx qy qz``: scalar-first quaternion)."""
    values = _read_rows(path, "trajectory (pred_traj.txt)")
    return Trajectory(values[:, 0], tum_wxyz_to_cam2world(values[:, 1:8]))


def format_official_trajectory(timestamps: np.ndarray, tum_wxyz: np.ndarray) -> str:
    """The text the official ``save_trajectory_tum_format`` writes for these values.

    One line per pose, ``t x y z qw qx qy qz``, each number printed as Python prints a float64
    (shortest round-trip form).
    """
    timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
    tum_wxyz = np.asarray(tum_wxyz, dtype=np.float64)
    if tum_wxyz.shape != (timestamps.shape[0], 7):
        raise ValueError(f"tum_wxyz must be (N, 7) with N = {timestamps.shape[0]}, got {tum_wxyz.shape}")
    return "".join(f"{float(t)!r} " + " ".join(repr(float(v)) for v in row) + "\n"
                   for t, row in zip(timestamps, tum_wxyz))


def write_official_trajectory(path: str | Path, trajectory: Trajectory) -> None:
    """Write ``pred_traj.txt`` in the official scalar-first layout (see module docstring)."""
    Path(path).write_text(format_official_trajectory(trajectory.timestamps, trajectory.as_tum_wxyz()))


def associate_timestamps(query: np.ndarray, reference: np.ndarray, max_difference: float = 0.02,
                         one_to_one: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Match each query timestamp to the nearest reference timestamp within ``max_difference``.

    Args:
        query: (N,) timestamps (seconds), e.g. the RGB frames.
        reference: (M,) timestamps, e.g. the ground-truth poses; need not be sorted.
        max_difference: largest accepted |query - reference| (seconds).
        one_to_one: False: every query takes its nearest reference (several queries may share
            one), ties going to the earlier reference — what evo's ``associate_trajectories``
            does (with its ``<=`` bound). True: the TUM benchmark's ``associate.py`` rule — all
            candidate pairs with difference ``< max_difference``, taken greedily by increasing
            difference, each timestamp used at most once.
    Returns:
        ``(query_index, reference_index)``: int64 arrays of equal length, sorted by query index.
    """
    query = np.asarray(query, dtype=np.float64).reshape(-1)
    reference = np.asarray(reference, dtype=np.float64).reshape(-1)
    order = np.argsort(reference, kind="stable")
    ref_sorted = reference[order]
    if ref_sorted.size == 0 or query.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if not one_to_one:
        upper = np.clip(np.searchsorted(ref_sorted, query, side="right"), 0, ref_sorted.size - 1)
        lower = np.clip(upper - 1, 0, None)
        diff_up = np.abs(ref_sorted[upper] - query)
        diff_low = np.where(upper > 0, np.abs(query - ref_sorted[lower]), np.inf)
        best = np.where(diff_up < diff_low, upper, lower)
        best_diff = np.minimum(diff_up, diff_low)
        keep = best_diff <= max_difference
        return np.flatnonzero(keep).astype(np.int64), order[best[keep]].astype(np.int64)
    # Candidate windows: reference stamps within max_difference of each query.
    lo = np.searchsorted(ref_sorted, query - max_difference, side="left")
    hi = np.searchsorted(ref_sorted, query + max_difference, side="right")
    counts = hi - lo
    q_idx = np.repeat(np.arange(query.size), counts)
    r_pos = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi)]) if counts.sum() else np.zeros(0, int)
    diff = np.abs(query[q_idx] - ref_sorted[r_pos])
    inside = diff < max_difference
    q_idx, r_pos, diff = q_idx[inside], r_pos[inside], diff[inside]
    # Greedy by (difference, query stamp, reference stamp), as the tuple sort of associate.py.
    greedy = np.lexsort((ref_sorted[r_pos], query[q_idx], diff))
    used_q = np.zeros(query.size, bool)
    used_r = np.zeros(ref_sorted.size, bool)
    pairs = []
    for k in greedy:  # O(candidates); a few per query for camera-rate vs mocap-rate streams
        qi, ri = q_idx[k], r_pos[k]
        if not used_q[qi] and not used_r[ri]:
            used_q[qi] = used_r[ri] = True
            pairs.append((qi, ri))
    pairs.sort()
    if not pairs:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    qi, ri = np.asarray(pairs, dtype=np.int64).T
    return qi, order[ri].astype(np.int64)

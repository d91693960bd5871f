"""Camera outputs: the TUM trajectory and the per-frame intrinsics JSON.

TUM lines are ``timestamp tx ty tz qx qy qz qw`` (scalar-last quaternion, camera-to-world), the
standard order evo and the TUM tools read. The official code writes the quaternion scalar-first
under the same name; we do not.
"""

from __future__ import annotations

import json

import numpy as np
import roma
import torch

TUM_HEADER = ("# align3r camera trajectory, TUM format: timestamp tx ty tz qx qy qz qw\n"
              "# camera-to-world, OpenCV camera axes (x right, y down, z forward), "
              "reconstruction units (up to scale)\n")


def rotation_to_quaternion_xyzw(rotations: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices -> (N, 4) unit quaternions (x, y, z, w) with w >= 0.

    The matrices are projected onto SO(3) first (float32 optimiser output is only nearly
    orthonormal).
    """
    rot = roma.special_procrustes(torch.from_numpy(np.asarray(rotations, np.float64)))
    quat = roma.rotmat_to_unitquat(rot).numpy()  # roma's convention is already xyzw
    return np.where(quat[:, 3:4] < 0, -quat, quat)


def format_tum(timestamps: np.ndarray, cam2world: np.ndarray) -> str:
    """TUM trajectory text for N poses.

    Args:
        timestamps: (N,) seconds (or frame indices when the input has no time).
        cam2world: (N, 4, 4) camera-to-world poses.
    """
    cam2world = np.asarray(cam2world, np.float64)
    quat = rotation_to_quaternion_xyzw(cam2world[:, :3, :3])
    rows = np.column_stack([np.asarray(timestamps, np.float64), cam2world[:, :3, 3], quat]) + 0.0  # no "-0"
    # 9 significant digits reproduce float32 poses exactly; %.9f keeps microsecond stamps.
    lines = [f"{r[0]:.9f} " + " ".join(f"{v:.9g}" for v in r[1:]) for r in rows]
    return TUM_HEADER + "\n".join(lines) + "\n"


def intrinsics_json(intrinsics: np.ndarray, image_size_hw: tuple[int, int], stems: list[str],
                    original_intrinsics: np.ndarray | None = None,
                    original_size_hw: tuple[int, int] | None = None) -> str:
    """Per-frame pinhole parameters as JSON text (network and, if known, original resolution).

    Args:
        intrinsics: (N, 3, 3) K at network resolution, integer-pixel-grid convention.
        image_size_hw: network (H, W).
        stems: N frame stems (file names without extension).
        original_intrinsics: (N, 3, 3) K of the same cameras at the original resolution.
        original_size_hw: original (H0, W0).
    """

    def frames(k: np.ndarray) -> list[dict]:
        return [{"frame": s, "fx": float(m[0, 0]), "fy": float(m[1, 1]), "cx": float(m[0, 2]),
                 "cy": float(m[1, 2])} for s, m in zip(stems, k, strict=True)]

    h, w = image_size_hw
    doc = {
        "convention": "pinhole, pixels; u = fx*X/Z + cx with u the integer pixel index (pixel "
                      "centres at integers, principal point W/2, H/2 at network resolution). "
                      "Add 0.5 to cx, cy for the pixel-centre-at-0.5 convention (COLMAP, OpenGL).",
        "network": {"width": int(w), "height": int(h), "frames": frames(np.asarray(intrinsics))},
    }
    if original_intrinsics is not None and original_size_hw is not None:
        h0, w0 = original_size_hw
        doc["original"] = {"width": int(w0), "height": int(h0), "frames": frames(original_intrinsics)}
    return json.dumps(doc, indent=1)

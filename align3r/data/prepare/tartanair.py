"""TartanAir raw download → processed layout.

Raw: ``<root>/<env>/<Easy|Hard>/<Pxxx>/image_<cam>/*.png``, ``depth_<cam>/*.npy`` (metres),
``pose_<cam>.txt`` (one ``tx ty tz qx qy qz qw`` line per frame, camera-to-world in NED axes).
Fixed K: fx = fy = 320, (320, 240). Poses are moved to OpenCV axes by conjugation with the
NED→camera axis permutation, ``T · P · T⁻¹``. Only the ``Easy`` difficulty is prepared by default
(the training set excludes ``Hard`` scenes). Processed: ``<out>/<env>_<difficulty>_<Pxxx>_<cam>/``
with ``<id>`` the first six characters of the image stem.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

from align3r.data.prepare.common import RawFrame, RawSequence, check_same_length, pinhole, sorted_files
from align3r.errors import InputError

INTRINSICS = pinhole(320.0, 320.0, 320.0, 240.0)
#: NED (x forward, y right, z down) → camera (x right, y down, z forward).
NED_TO_CAMERA = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]], dtype=np.float64)


def ned_poses_to_opencv(poses: np.ndarray) -> np.ndarray:
    """(N, 7) ``tx ty tz qx qy qz qw`` NED camera-to-world → (N, 4, 4) OpenCV camera-to-world."""
    poses = np.asarray(poses, dtype=np.float64).reshape(-1, 7)
    mats = np.tile(np.eye(4), (len(poses), 1, 1))
    mats[:, :3, :3] = Rotation.from_quat(poses[:, 3:]).as_matrix()
    mats[:, :3, 3] = poses[:, :3]
    return NED_TO_CAMERA @ mats @ np.linalg.inv(NED_TO_CAMERA)


def raw_sequences(raw_root: str | os.PathLike, difficulties: tuple[str, ...] = ("Easy",),
                  cameras: tuple[str, ...] = ("left", "right")) -> list[RawSequence]:
    """Every ``<env>/<difficulty>/<traj>`` with the camera folders it has (of ``cameras``)."""
    raw_root = Path(raw_root)
    if not raw_root.is_dir():
        raise InputError(f"missing TartanAir root {raw_root}")
    sequences = []
    for env in sorted(p for p in raw_root.iterdir() if p.is_dir()):
        for difficulty in difficulties:
            level = env / difficulty
            if not level.is_dir():
                continue
            for traj in sorted(p for p in level.iterdir() if p.is_dir()):
                present = [cam for cam in cameras if (traj / f"image_{cam}").is_dir()]
                if not present:
                    raise InputError(f"{traj} has none of the image folders {[f'image_{c}' for c in cameras]}")
                for cam in present:  # downloads often hold the left camera only
                    sequences.append(_sequence(traj, cam, f"{env.name}_{difficulty}_{traj.name}_{cam}"))
    return sequences


def _sequence(traj: Path, cam: str, name: str) -> RawSequence:
    images = sorted_files(traj / f"image_{cam}", (".png",))
    depths = sorted_files(traj / f"depth_{cam}", (".npy",))
    pose_file = traj / f"pose_{cam}.txt"
    if not pose_file.is_file():
        raise InputError(f"missing {pose_file}")
    poses = ned_poses_to_opencv(np.loadtxt(pose_file, ndmin=2))
    check_same_length(str(traj), images, depths, poses)

    def loader(i: int):
        def load():
            depth = np.load(depths[i]).astype(np.float32)
            return Image.open(images[i]).convert("RGB"), depth, INTRINSICS, poses[i].astype(np.float32)
        return load

    return RawSequence(name=name, frames=[RawFrame(img.stem[:6], loader(i)) for i, img in enumerate(images)])

"""Camera poses the user already has: read from a file and matched to the frames of a run.

Files (:func:`read_poses`)
    - a TUM trajectory (``timestamp tx ty tz qx qy qz qw``, camera-to-world, ``#`` comments): any
      other text file, e.g. ``cameras/trajectory_tum.txt`` of an earlier run;
    - a COLMAP model's ``images.txt`` or ``images.bin`` (world-to-camera ``qvec``, ``tvec`` per
      image, turned into camera-to-world here): the text form is recognised by its 10-field
      image lines, the binary form by the ``.bin`` suffix (COLMAP's documented layout, read
      without pycolmap);
    - an ``(N, 4, 4)`` camera-to-world ``.npy``.
    Camera axes are OpenCV's (x right, y down, z forward) in every case; translations stay in the
    file's units.

Matching (:func:`match_poses`)
    COLMAP images by frame name (the name without folders and image extension, so
    ``images/frame-000000.color.jpg`` in the model is the frame ``frame-000000.color.png``); TUM rows by timestamp: the frames' own
    (a video, or a folder with ``folder_fps``; nearest within 20 ms), else frame names that are
    numbers (TUM RGB-D names frames by their timestamp), else source frame indices (what a run
    writes for a folder without timestamps); ``.npy`` row k is source frame k. A frame with no
    pose is an :class:`~align3r.errors.InputError` naming it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from align3r.errors import InputError
from align3r.io.folder import image_stem
from align3r.io.trajectory import associate_timestamps, read_tum_trajectory

#: Largest |frame time - pose time| (seconds) for a TUM row to be a frame's pose.
MAX_TIME_DIFFERENCE = 0.02


@dataclass
class PoseFile:
    """Poses read from a file, with what they can be matched by.

    - ``cam2world``: (M, 4, 4) float64 camera-to-world, the file's units.
    - ``names``: M image names (COLMAP), else None.
    - ``timestamps``: (M,) float64 (TUM), else None.
    - ``path``: the file; ``format``: ``"tum"``, ``"colmap"`` or ``"npy"``.
    """

    cam2world: np.ndarray
    names: list[str] | None
    timestamps: np.ndarray | None
    path: Path
    format: str


def _world_to_camera(qvec_wxyz: np.ndarray, tvec: np.ndarray) -> np.ndarray:
    """(M, 4) w-first quaternions and (M, 3) translations of world-to-camera -> (M, 4, 4) camera-to-world."""
    norms = np.linalg.norm(qvec_wxyz, axis=1)
    if not np.isfinite(qvec_wxyz).all() or not np.isfinite(tvec).all() or (norms < 1e-12).any():
        raise InputError("a COLMAP image has a non-finite pose or a zero quaternion")
    rot_w2c = Rotation.from_quat(qvec_wxyz[:, [1, 2, 3, 0]]).as_matrix()
    out = np.tile(np.eye(4), (len(tvec), 1, 1))
    out[:, :3, :3] = rot_w2c.transpose(0, 2, 1)
    out[:, :3, 3] = -np.einsum("nij,nj->ni", out[:, :3, :3], tvec)
    return out


def read_colmap_images_txt(path: Path) -> PoseFile:
    """COLMAP ``images.txt``: per image a line ``IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME`` and a
    line of 2-D points (possibly empty)."""
    lines = path.read_text().splitlines()
    names, values = [], []
    k = 0
    while k < len(lines):
        line = lines[k].strip()
        k += 1
        if not line or line.startswith("#"):
            continue
        fields = line.split(maxsplit=9)
        if len(fields) != 10:
            raise InputError(f"{path}:{k}: expected IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, got {line[:80]!r}")
        try:
            values.append([float(v) for v in fields[1:8]])
        except ValueError:
            raise InputError(f"{path}:{k}: not a number in {line[:80]!r}") from None
        names.append(fields[9])
        k += 1  # the image's 2-D points line (may be empty)
    if not names:
        raise InputError(f"{path} holds no images")
    values = np.asarray(values, dtype=np.float64)
    return PoseFile(_world_to_camera(values[:, :4], values[:, 4:7]), names, None, path, "colmap")


def read_colmap_images_bin(path: Path) -> PoseFile:
    """COLMAP ``images.bin`` (little endian): uint64 count, then per image int32 id, 4 + 3 doubles
    (qvec w-first, tvec), int32 camera id, a NUL-terminated name, uint64 point count and 24 bytes
    per 2-D point."""
    data = path.read_bytes()
    try:
        (count,), offset = struct.unpack_from("<Q", data, 0), 8
        names, values = [], []
        for _ in range(count):
            record = struct.unpack_from("<i7di", data, offset)
            offset += 64
            end = data.index(b"\x00", offset)
            names.append(data[offset:end].decode("utf-8"))
            (points,) = struct.unpack_from("<Q", data, end + 1)
            offset = end + 9 + 24 * points
            values.append(record[1:8])
    except (struct.error, ValueError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a COLMAP images.bin ({exc})") from None
    if offset != len(data):
        raise InputError(f"{path}: not a COLMAP images.bin ({len(data) - offset} bytes left after {count} images)")
    if not names:
        raise InputError(f"{path} holds no images")
    values = np.asarray(values, dtype=np.float64)
    return PoseFile(_world_to_camera(values[:, :4], values[:, 4:7]), names, None, path, "colmap")


def _looks_like_colmap(path: Path) -> bool:
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return len(line.split()) >= 10
    return False


def read_poses(path: str | Path) -> PoseFile:
    """Read a pose file (TUM text, COLMAP ``images.txt`` / ``images.bin``, or (N, 4, 4) ``.npy``).

    Raises:
        InputError: missing or unreadable file, a malformed line, poses that are not rigid.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(f"poses={path}: no such file (give a TUM trajectory, a COLMAP images.txt / images.bin or "
                         "an (N, 4, 4) camera-to-world .npy)")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            cam2world = np.load(path, allow_pickle=False).astype(np.float64)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read poses {path}: {exc}") from None
        if cam2world.ndim != 3 or cam2world.shape[1:] != (4, 4):
            raise InputError(f"{path}: expected an (N, 4, 4) camera-to-world array, got shape {cam2world.shape}")
        poses = PoseFile(cam2world, None, None, path, "npy")
    elif suffix == ".bin":
        poses = read_colmap_images_bin(path)
    elif _looks_like_colmap(path):
        poses = read_colmap_images_txt(path)
    else:
        trajectory = read_tum_trajectory(path)
        poses = PoseFile(trajectory.cam2world, None, trajectory.timestamps, path, "tum")
    check_rigid(poses.cam2world, path)
    return poses


def check_rigid(cam2world: np.ndarray, path: Path) -> None:
    """Raise unless every pose is finite with an orthonormal, right-handed rotation."""
    rot = cam2world[:, :3, :3]
    err = np.abs(rot.transpose(0, 2, 1) @ rot - np.eye(3)).max(axis=(1, 2))
    bad = ~np.isfinite(cam2world).all(axis=(1, 2)) | (err > 1e-3) | (np.linalg.det(rot) <= 0)
    bad |= np.abs(cam2world[:, 3] - [0, 0, 0, 1]).max(axis=1) > 1e-9
    if bad.any():
        raise InputError(f"{path}: pose {int(np.flatnonzero(bad)[0])} is not a rigid camera-to-world transform "
                         "(rotation orthonormal with det +1, last row 0 0 0 1)")


def _unmatched(poses: PoseFile, names: list[str], missing: np.ndarray, by: str) -> InputError:
    shown = ", ".join(names[i] for i in np.flatnonzero(missing)[:3])
    more = f" and {int(missing.sum()) - 3} more" if missing.sum() > 3 else ""
    return InputError(f"poses={poses.path}: no pose for frame(s) {shown}{more} (matched by {by}); give a pose for "
                      "every frame of the run, or select the frames that have one (start, stride, max_frames)")


def _numbers(names: list[str]) -> np.ndarray | None:
    try:
        return np.asarray([float(image_stem(n)) for n in names], dtype=np.float64)
    except ValueError:
        return None


def match_poses(poses: PoseFile, names: list[str], indices: np.ndarray,
                timestamps: np.ndarray | None = None) -> np.ndarray:
    """The pose of every frame of a run (see the module doc for the rules).

    Args:
        names: N frame names (file stems, ``frame_%06d`` for a video).
        indices: (N,) source frame indices.
        timestamps: (N,) seconds, or None.
    Returns:
        (N, 4, 4) float64 camera-to-world.
    Raises:
        InputError: a frame has no pose (or two COLMAP images share its name).
    """
    n = len(names)
    indices = np.asarray(indices, dtype=np.int64).reshape(-1)
    if poses.names is not None:
        by_stem: dict[str, int] = {}
        for k, name in enumerate(poses.names):
            stem = image_stem(name)
            if stem in by_stem:
                raise InputError(f"poses={poses.path}: images {poses.names[by_stem[stem]]} and {name} both match "
                                 f"frame {stem!r}")
            by_stem[stem] = k
        rows = np.asarray([by_stem.get(image_stem(name), -1) for name in names], dtype=np.int64)
        if (rows < 0).any():
            raise _unmatched(poses, names, rows < 0, "image name")
        return poses.cam2world[rows]
    if poses.timestamps is None:  # .npy: row k is source frame k
        missing = indices >= len(poses.cam2world)
        if missing.any():
            raise _unmatched(poses, names, missing, f"source frame index; the file has {len(poses.cam2world)} poses")
        return poses.cam2world[indices]
    numbered = _numbers(names)
    if timestamps is not None:
        query, tolerance, by = np.asarray(timestamps, dtype=np.float64), MAX_TIME_DIFFERENCE, "timestamp"
    elif numbered is not None:
        query, tolerance, by = numbered, MAX_TIME_DIFFERENCE, "frame name as timestamp"
    else:
        query, tolerance, by = indices.astype(np.float64), 1e-6, "source frame index as timestamp"
    frame_idx, rows = associate_timestamps(query, poses.timestamps, max_difference=tolerance)
    found = np.full(n, -1, dtype=np.int64)
    found[frame_idx] = rows
    if (found < 0).any():
        raise _unmatched(poses, names, found < 0, by)
    return poses.cam2world[found]

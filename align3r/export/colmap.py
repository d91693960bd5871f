"""COLMAP model, text (``cameras.txt``, ``images.txt``, ``points3D.txt``) or binary (``.bin``),
and a small text reader.

Conventions (https://colmap.github.io/format.html):

- ``PINHOLE`` cameras, params ``fx fy cx cy``. COLMAP's image coordinates put the centre of the
  top-left pixel at (0.5, 0.5); ours put it at (0, 0). Hence ``cx_colmap = cx + 0.5``.
- ``images.txt``: world-to-camera rotation as a quaternion ``QW QX QY QZ`` and translation
  ``TX TY TZ``, camera id, image name; the second line (2-D points) is left empty.
- ``points3D.txt``: the fused static scene with colours; reprojection error 0 and empty track
  lists (the reconstruction is dense, there are no feature tracks). Gaussian-splatting and NeRF
  loaders only read position and colour from it.

Frames with identical intrinsics share one camera.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import roma
import torch

from align3r.export.cameras import rotation_to_quaternion_xyzw


@dataclass(frozen=True)
class ColmapModel:
    """One COLMAP model in memory, in COLMAP's conventions (ids start at 1).

    - ``camera_params``: (C, 4) ``fx fy cx cy`` of the PINHOLE cameras (pixel centre at 0.5).
    - ``camera_ids``: (N,) camera id of every image; ``size_hw``: (H, W) of every image.
    - ``qvec``: (N, 4) world-to-camera rotations, scalar first; ``tvec``: (N, 3) world-to-camera.
    - ``names``: N image file names; ``points``: (P, 3) float64; ``colors``: (P, 3) uint8.
    """

    camera_params: np.ndarray
    camera_ids: np.ndarray
    size_hw: tuple[int, int]
    qvec: np.ndarray
    tvec: np.ndarray
    names: list[str]
    points: np.ndarray
    colors: np.ndarray


def colmap_model(cam2world: np.ndarray, intrinsics: np.ndarray, image_size_hw: tuple[int, int],
                 image_names: list[str], points: np.ndarray, colors: np.ndarray) -> ColmapModel:
    """Our cameras and static cloud in COLMAP's conventions.

    Args:
        cam2world: (N, 4, 4) camera-to-world, OpenCV axes (COLMAP's camera axes too).
        intrinsics: (N, 3, 3) K in our integer-pixel-grid convention at ``image_size_hw``.
        image_size_hw: (H, W) of the images the model refers to.
        image_names: N file names relative to the images folder.
        points: (P, 3) world points; colors: (P, 3) uint8.
    """
    k = np.asarray(intrinsics, np.float64)
    params = np.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2] + 0.5, k[:, 1, 2] + 0.5], axis=1)
    unique_params, camera_index = np.unique(params, axis=0, return_inverse=True)
    pose = np.asarray(cam2world, np.float64)
    rot_w2c = pose[:, :3, :3].transpose(0, 2, 1)
    t_w2c = -np.einsum("nij,nj->ni", rot_w2c, pose[:, :3, 3])
    q = rotation_to_quaternion_xyzw(rot_w2c)[:, [3, 0, 1, 2]]  # COLMAP: scalar first
    return ColmapModel(camera_params=unique_params, camera_ids=camera_index.reshape(-1) + 1,
                       size_hw=(int(image_size_hw[0]), int(image_size_hw[1])), qvec=q, tvec=t_w2c,
                       names=list(image_names), points=np.asarray(points, np.float64),
                       colors=np.asarray(colors, np.uint8))


def colmap_text_model(cam2world: np.ndarray, intrinsics: np.ndarray, image_size_hw: tuple[int, int],
                      image_names: list[str], points: np.ndarray, colors: np.ndarray) -> dict[str, str]:
    """The three text files of a COLMAP model (arguments of :func:`colmap_model`).

    Returns:
        ``{"cameras.txt": ..., "images.txt": ..., "points3D.txt": ...}``.
    """
    return text_files(colmap_model(cam2world, intrinsics, image_size_hw, image_names, points, colors))


def text_files(model: ColmapModel) -> dict[str, str]:
    """``cameras.txt``, ``images.txt``, ``points3D.txt`` of ``model``."""
    h, w = model.size_hw
    cam_lines = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(model.camera_params)}",
    ]
    cam_lines += [f"{i + 1} PINHOLE {w} {h} " + " ".join(f"{v:.17g}" for v in p)
                  for i, p in enumerate(model.camera_params)]
    img_lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {len(model.names)}, mean observations per image: 0",
    ]
    for i, name in enumerate(model.names):
        vals = " ".join(f"{v:.17g}" for v in (*model.qvec[i], *model.tvec[i]))
        img_lines += [f"{i + 1} {vals} {model.camera_ids[i]} {name}", ""]

    pts = model.points
    table = np.column_stack([np.arange(1, len(pts) + 1), pts, model.colors, np.zeros(len(pts))])
    header = ("# 3D point list with one line of data per point:\n"
              "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
              f"# Number of points: {len(pts)}, mean track length: 0\n")
    body = _format_table(table)
    return {
        "cameras.txt": "\n".join(cam_lines) + "\n",
        "images.txt": "\n".join(img_lines) + "\n",
        "points3D.txt": header + body + ("\n" if len(pts) else ""),
    }


# COLMAP's binary model, little-endian (colmap ``src/colmap/scene/reconstruction_io.cc``,
# ``WriteCamerasBinary`` / ``WriteImagesBinary`` / ``WritePoints3DBinary``).
_PINHOLE_MODEL_ID = 1
_CAMERA_BIN = np.dtype([("id", "<i4"), ("model", "<i4"), ("width", "<u8"), ("height", "<u8"), ("params", "<f8", 4)])
_POINT_BIN = np.dtype([("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3), ("error", "<f8"), ("track", "<u8")])


def binary_files(model: ColmapModel) -> dict[str, bytes]:
    """``cameras.bin``, ``images.bin``, ``points3D.bin`` of ``model`` (same content as the text)."""
    h, w = model.size_hw
    cams = np.zeros(len(model.camera_params), _CAMERA_BIN)
    cams["id"] = np.arange(1, len(cams) + 1)
    cams["model"], cams["width"], cams["height"] = _PINHOLE_MODEL_ID, w, h
    cams["params"] = model.camera_params
    images = [struct.pack("<Q", len(model.names))]
    for i, name in enumerate(model.names):
        images.append(struct.pack("<I7dI", i + 1, *model.qvec[i], *model.tvec[i], int(model.camera_ids[i])))
        images.append(name.encode() + b"\0" + struct.pack("<Q", 0))  # no 2-D points
    points = np.zeros(len(model.points), _POINT_BIN)
    points["id"] = np.arange(1, len(points) + 1)
    points["xyz"], points["rgb"] = model.points, model.colors  # error 0, empty tracks
    return {
        "cameras.bin": struct.pack("<Q", len(cams)) + cams.tobytes(),
        "images.bin": b"".join(images),
        "points3D.bin": struct.pack("<Q", len(points)) + points.tobytes(),
    }


def _format_table(table: np.ndarray, rows_per_block: int = 10_000) -> str:
    """points3D rows as text. One ``%`` over a whole block of rows formats in C, about twice
    as fast as ``np.savetxt``'s per-row Python loop, with identical output."""
    row = "%d %.9g %.9g %.9g %d %d %d %.1f\n"
    blocks = [(row * len(block)) % tuple(block.ravel().tolist())
              for block in np.array_split(table, max(1, -(-len(table) // rows_per_block)))]
    return "".join(blocks).rstrip("\n")


# --------------------------------------------------------------------------------- reading
def read_colmap_text_model(model_dir: Path) -> dict:
    """Parse a COLMAP text model (ours or COLMAP's).

    Returns:
        ``{"cameras": {id: (model, width, height, params ndarray)},
        "images": {id: {"qvec": (4,) wxyz, "tvec": (3,), "camera_id": int, "name": str}},
        "points": (P, 3) float64, "colors": (P, 3) uint8}``.
    """
    model_dir = Path(model_dir)
    cameras = {}
    for line in _data_lines(model_dir / "cameras.txt"):
        parts = line.split()
        cameras[int(parts[0])] = (parts[1], int(parts[2]), int(parts[3]), np.array(parts[4:], np.float64))
    images = {}
    lines = (model_dir / "images.txt").read_text().splitlines()
    lines = [ln for ln in lines if not ln.startswith("#")]
    for line in lines[0::2]:  # every image has a pose line followed by a 2-D points line
        parts = line.split()
        if not parts:
            continue
        images[int(parts[0])] = {"qvec": np.array(parts[1:5], np.float64), "tvec": np.array(parts[5:8], np.float64),
                                 "camera_id": int(parts[8]), "name": " ".join(parts[9:])}
    rows = [ln.split()[:7] for ln in _data_lines(model_dir / "points3D.txt")]
    table = np.array(rows, np.float64).reshape(-1, 7)
    return {"cameras": cameras, "images": images, "points": table[:, 1:4],
            "colors": table[:, 4:7].astype(np.uint8)}


def _data_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.startswith("#")]


def qvec_to_rotmat(qvec: np.ndarray) -> np.ndarray:
    """COLMAP (w, x, y, z) quaternion -> (3, 3) rotation matrix (normalised first)."""
    q = torch.as_tensor(np.asarray(qvec, np.float64)[[1, 2, 3, 0]])  # roma is scalar-last
    return roma.unitquat_to_rotmat(q / q.norm()).numpy()

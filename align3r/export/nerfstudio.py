"""nerfstudio ``transforms.json``: the cameras in the form nerfstudio's own data parser reads.

Conventions (nerfstudio ``nerfstudio/data/dataparsers/nerfstudio_dataparser.py``, ``Nerfstudio``,
and ``nerfstudio/process_data/colmap_utils.py``, ``colmap_to_json``):

- ``transform_matrix``: 4x4 camera-to-world with OpenGL camera axes (x right, y up, z back),
  so ours (OpenCV: y down, z forward) times ``diag(1, -1, -1, 1)``. The world frame is ours,
  unchanged: ``applied_transform`` (saved coordinates from the original ones) is the identity.
- ``fl_x fl_y cx cy w h`` in pixels of the images the frames name. nerfstudio casts rays through
  ``pixel index + 0.5`` (``Cameras.get_image_coords``), so ``cx = cx_ours + 0.5``. Shared
  intrinsics are written once at the top level, per-frame ones in every frame.
- ``depth_file_path``: float32 ``.npy`` holding depth x 1000: nerfstudio multiplies depth files
  by ``depth_unit_scale_factor`` (default 1e-3, "millimetres"), which gives back our units.
- ``ply_file_path``: the fused static cloud (splatfacto's initial points), world coordinates.
"""

from __future__ import annotations

import numpy as np

#: OpenCV camera axes -> OpenGL camera axes (right-multiplied onto camera-to-world).
OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
#: nerfstudio reads depth files in millimetres by default (``depth_unit_scale_factor`` 1e-3).
DEPTH_FILE_SCALE = 1000.0


def transforms_json(cam2world: np.ndarray, intrinsics: np.ndarray, image_size_hw: tuple[int, int],
                    image_paths: list[str], depth_paths: list[str] | None = None,
                    ply_path: str | None = None) -> dict:
    """The content of ``transforms.json``.

    Args:
        cam2world: (N, 4, 4) camera-to-world, OpenCV axes.
        intrinsics: (N, 3, 3) K in our integer-pixel-grid convention at ``image_size_hw``.
        image_size_hw: (H, W) of the images.
        image_paths: N image paths relative to the folder of ``transforms.json``.
        depth_paths: N depth file paths (same folder rule), or None.
        ply_path: the static point cloud, or None.
    Returns:
        A JSON-ready dict (``camera_model``, intrinsics, ``frames``, ``applied_transform``, ...).
    """
    pose = np.asarray(cam2world, np.float64) @ OPENCV_TO_OPENGL
    k = np.asarray(intrinsics, np.float64)
    params = np.stack([k[:, 0, 0], k[:, 1, 1], k[:, 0, 2] + 0.5, k[:, 1, 2] + 0.5], axis=1)
    keys = ("fl_x", "fl_y", "cx", "cy")
    shared = len(np.unique(params, axis=0)) == 1
    h, w = image_size_hw
    doc: dict = {"camera_model": "PINHOLE", "w": int(w), "h": int(h)}
    if shared:
        doc.update({key: float(v) for key, v in zip(keys, params[0], strict=True)})
    frames = []
    for i, path in enumerate(image_paths):
        frame: dict = {"file_path": path, "transform_matrix": pose[i].tolist()}
        if not shared:
            frame.update({key: float(v) for key, v in zip(keys, params[i], strict=True)})
        if depth_paths is not None:
            frame["depth_file_path"] = depth_paths[i]
        frames.append(frame)
    doc["frames"] = frames
    doc["applied_transform"] = np.eye(4)[:3].tolist()
    if ply_path is not None:
        doc["ply_file_path"] = ply_path
    return doc


def depth_file(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth in our units -> the float32 array nerfstudio reads (x 1000; 0 where invalid)."""
    d = np.asarray(depth, np.float32) * np.float32(DEPTH_FILE_SCALE)
    return np.where(np.isfinite(d) & (d > 0), d, np.float32(0))

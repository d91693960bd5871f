"""Virtual KITTI 2 raw download → processed layout.

Raw: ``<root>/vkitti_2.0.3_rgb/<Scene>/<variant>/frames/rgb/Camera_{0,1}/rgb_NNNNN.jpg``,
``vkitti_2.0.3_depth/<Scene>/<variant>/frames/depth/Camera_{0,1}/depth_NNNNN.png`` (uint16 cm),
``vkitti_2.0.3_textgt/<Scene>/<variant>/intrinsic.txt`` (``frame cameraID fx fy cx cy``) and
``extrinsic.txt`` (``frame cameraID`` + 16 numbers, world-to-camera, OpenCV axes).
Depth = value / 100 m; mask 0 < depth < 600 (sky is 655.35 m); pose stored camera-to-world
(the extrinsic inverted). Processed: ``<out>/scene{k:04d}_{left,right}/<NNNNN>_*`` with k the
index of (Scene, variant) in sorted order.
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from align3r.data.prepare.common import RawFrame, RawSequence, check_same_length, pinhole, sorted_files
from align3r.errors import InputError

MASK_MAX_DEPTH = 600.0
CAMERAS = {"Camera_0": "left", "Camera_1": "right"}


def read_camera_table(path: Path, values: int) -> dict[tuple[int, int], np.ndarray]:
    """{(frame, camera id): row of ``values`` numbers} from a VKITTI2 text file with a header."""
    if not path.is_file():
        raise InputError(f"missing {path}")
    table = {}
    with open(path) as f:
        next(f, None)  # header line
        for line in f:
            fields = line.split()
            if len(fields) != 2 + values:
                continue
            table[(int(fields[0]), int(fields[1]))] = np.array(fields[2:], dtype=np.float64)
    return table


def read_depth_png(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_ANYCOLOR | cv2.IMREAD_ANYDEPTH)
    if raw is None:
        raise InputError(f"cannot read depth {path}")
    return raw.astype(np.float32) / 100


def raw_sequences(raw_root: str | os.PathLike) -> list[RawSequence]:
    raw_root = Path(raw_root)
    rgb_root = raw_root / "vkitti_2.0.3_rgb"
    if not rgb_root.is_dir():
        raise InputError(f"missing {rgb_root}")
    variants = sorted(p for p in rgb_root.glob("*/*") if p.is_dir())
    sequences = []
    for label, variant in enumerate(variants):
        rel = variant.relative_to(rgb_root)
        text = raw_root / "vkitti_2.0.3_textgt" / rel
        intrinsics = read_camera_table(text / "intrinsic.txt", 4)
        extrinsics = read_camera_table(text / "extrinsic.txt", 16)
        for cam_folder, side in CAMERAS.items():
            cam_id = int(cam_folder[-1])
            images = sorted_files(variant / "frames" / "rgb" / cam_folder, (".jpg", ".png"))
            depths = sorted_files(raw_root / "vkitti_2.0.3_depth" / rel / "frames" / "depth" / cam_folder, (".png",))
            check_same_length(str(variant / cam_folder), images, depths)
            frames = [RawFrame(img.stem[4:], _loader(img, dep, intrinsics, extrinsics, cam_id))
                      for img, dep in zip(images, depths)]
            sequences.append(RawSequence(name=f"scene{label:04d}_{side}", frames=frames,
                                         mask_max_depth=MASK_MAX_DEPTH))
    return sequences


def _loader(image_path: Path, depth_path: Path, intrinsics, extrinsics, cam_id: int):
    key = (int(image_path.stem[4:]), cam_id)
    if key not in intrinsics or key not in extrinsics:
        raise InputError(f"no camera parameters for frame {key[0]} camera {cam_id} ({image_path})")

    def load():
        fx, fy, cx, cy = intrinsics[key]
        cam2world = np.linalg.inv(extrinsics[key].reshape(4, 4)).astype(np.float32)
        return Image.open(image_path).convert("RGB"), read_depth_png(depth_path), pinhole(fx, fy, cx, cy), cam2world
    return load

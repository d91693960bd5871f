"""Joint crop / rescale of an image, its per-pixel maps and its intrinsics.

The maps (depth, masks, prior point maps) follow the image with nearest-neighbour resampling,
so depth values are never blended across edges. Intrinsics use the OpenCV convention (pixel
centres on integers); rescaling is done in the COLMAP convention (pixel centres on
half-integers), where a resize is an exact scaling, then converted back (official
``dust3r/datasets/utils/cropping.py``, ``camera_matrix_of_crop``).

Sizes are ``(width, height)`` tuples, as PIL uses; arrays are ``(H, W, ...)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from PIL import Image

from align3r.errors import InputError

Maps = Sequence[np.ndarray]


def _check_maps(image: Image.Image, maps: Maps) -> None:
    for m in maps:
        if m.shape[:2] != (image.height, image.width):
            raise InputError(f"map of shape {m.shape[:2]} does not match the {image.width}x{image.height} image")


def crop(image: Image.Image, maps: Maps, intrinsics: np.ndarray, box: tuple[int, int, int, int]
         ) -> tuple[Image.Image, list[np.ndarray], np.ndarray]:
    """Crop the integer box ``(left, top, right, bottom)``; the principal point moves by (left, top)."""
    left, top, right, bottom = (int(v) for v in box)
    _check_maps(image, maps)
    intrinsics = np.array(intrinsics, copy=True)
    intrinsics[0, 2] -= left
    intrinsics[1, 2] -= top
    return (image.crop((left, top, right, bottom)), [m[top:bottom, left:right] for m in maps], intrinsics)


def crop_about_principal_point(image: Image.Image, maps: Maps, intrinsics: np.ndarray, *, round_pp: bool
                               ) -> tuple[Image.Image, list[np.ndarray], np.ndarray]:
    """Largest window centred on the principal point.

    ``round_pp=True`` (training views) rounds (cx, cy) to integers first; ``round_pp=False``
    (preparation scripts) keeps them fractional and truncates the box bounds, so FlyingThings3D's
    960x540 with (479.5, 269.5) becomes 959x539.
    """
    width, height = image.size
    cx, cy = intrinsics[0, 2], intrinsics[1, 2]
    if round_pp:
        cx, cy = int(np.round(cx)), int(np.round(cy))
    half_w = min(cx, width - cx)
    half_h = min(cy, height - cy)
    if half_w <= 0 or half_h <= 0:
        raise InputError(f"principal point ({cx}, {cy}) lies outside the {width}x{height} image")
    box = (int(cx - half_w), int(cy - half_h), int(cx + half_w), int(cy + half_h))
    return crop(image, maps, intrinsics, box)


def opencv_to_colmap(intrinsics: np.ndarray) -> np.ndarray:
    k = np.array(intrinsics, copy=True)
    k[:2, 2] += 0.5
    return k


def colmap_to_opencv(intrinsics: np.ndarray) -> np.ndarray:
    k = np.array(intrinsics, copy=True)
    k[:2, 2] -= 0.5
    return k


def intrinsics_after_crop(intrinsics: np.ndarray, input_size: Sequence[float], output_size: Sequence[int],
                          scaling: float = 1.0) -> np.ndarray:
    """K of a centred window ``output_size`` of the image ``input_size`` scaled by ``scaling``.

    The window is centred on the scaled image: the origin shifts by half the margin
    ``input_size * scaling - output_size`` (which must be >= 0).
    """
    margins = np.asarray(input_size, dtype=np.float64) * scaling - np.asarray(output_size, dtype=np.float64)
    if np.any(margins < 0):
        raise InputError(f"cannot take a {tuple(output_size)} window from a {tuple(input_size)} image x{scaling}")
    k = opencv_to_colmap(intrinsics)
    k[:2, :] *= scaling
    k[:2, 2] -= 0.5 * margins
    return colmap_to_opencv(k)


def rescale(image: Image.Image, maps: Maps, intrinsics: np.ndarray, target_size: Sequence[int]
            ) -> tuple[Image.Image, list[np.ndarray], np.ndarray]:
    """Uniformly rescale so the image covers ``target_size`` (W, H), sides floored.

    Image: LANCZOS when shrinking, BICUBIC when enlarging; maps: nearest neighbour.
    """
    _check_maps(image, maps)
    input_size = np.array(image.size)
    scale = float(np.max(np.asarray(target_size) / input_size)) + 1e-8
    output_size = np.floor(input_size * scale).astype(int)
    width, height = int(output_size[0]), int(output_size[1])
    resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.BICUBIC
    image = image.resize((width, height), resample=resample)
    maps = [cv2.resize(m, (width, height), interpolation=cv2.INTER_NEAREST) for m in maps]
    intrinsics = intrinsics_after_crop(intrinsics, input_size, output_size, scaling=scale)
    return image, maps, intrinsics


def centre_crop_fraction(image: Image.Image, maps: Maps, intrinsics: np.ndarray, fraction: float
                         ) -> tuple[Image.Image, list[np.ndarray], np.ndarray]:
    """Keep the centred ``floor(size * fraction)`` window; the focal is unchanged (a zoom-in)."""
    if not 0 < fraction <= 1:
        raise InputError(f"crop fraction must be in (0, 1], got {fraction}")
    input_size = np.array(image.size)
    output_size = np.floor(input_size * fraction).astype(int)
    left, top = ((input_size - output_size) / 2).astype(int)
    box = (left, top, left + output_size[0], top + output_size[1])
    return crop(image, maps, intrinsics, box)


def crop_to_resolution(image: Image.Image, maps: Maps, intrinsics: np.ndarray, resolution: Sequence[int]
                       ) -> tuple[Image.Image, list[np.ndarray], np.ndarray]:
    """Centred crop to exactly ``resolution`` (W, H) of an image at least that large."""
    target = intrinsics_after_crop(intrinsics, image.size, resolution)
    left, top = np.round(intrinsics[:2, 2] - target[:2, 2]).astype(np.int32)
    box = (left, top, left + int(resolution[0]), top + int(resolution[1]))
    return crop(image, maps, intrinsics, box)

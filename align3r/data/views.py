"""The per-view training pipeline (official
``dust3r/datasets/base/base_stereo_view_dataset.py``, ``BaseStereoViewDataset.__getitem__`` and
``_crop_resize_if_necessary``): one loaded frame → one network-ready view.

Steps, in order, all driven by the sample's numpy generator:

1. crop the largest window centred on the (rounded) principal point;
2. orientation: a portrait image (H > 1.1·W) uses the transposed resolution; a near-square one
   (0.9 < H/W < 1.1) takes it with probability ½;
3. ``aug_focal``: keep a centred ``floor(size·s)`` window, s ∈ {0.8, 0.9, 1.0} (a zoom: focal kept);
4. ``aug_crop``: enlarge the target by one integer in [0, aug_crop) on both sides;
5. rescale so the image covers the target (LANCZOS shrinking, BICUBIC enlarging; depth and prior
   nearest; intrinsics scaled exactly), then
6. crop the exact resolution centred on the image;
7. colour jitter (training), normalisation to [-1, 1]; GT points = depth unprojected with K and
   mapped to the world by the camera-to-world pose; validity masks (0 < depth < 400, depth > 0);
8. portrait views are transposed to landscape storage (``true_shape`` keeps the true (H, W)).

The returned view is a dict of tensors and strings (see :func:`make_view`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from align3r.data import cropping
from align3r.data.augment import color_jitter, normalize_image

MAX_VALID_DEPTH = 400.0
FOCAL_AUG_FRACTIONS = (0.8, 0.9, 1.0)


@dataclass(frozen=True)
class ViewAugmentation:
    """Which random augmentations a dataset applies (all off for test sets).

    - ``aug_crop``: >1 enlarges the rescale target by an integer in [0, aug_crop) (a random
      zoom of up to ``aug_crop`` pixels before the final crop).
    - ``aug_focal``: random centred crop keeping 80, 90 or 100 % of the image.
    - ``color_jitter``: ColorJitter(0.5, 0.5, 0.5, 0.1).
    """

    aug_crop: int = 0
    aug_focal: bool = False
    color_jitter: bool = False


def crop_resize_view(image: Image.Image, depth: np.ndarray, prior: np.ndarray, intrinsics: np.ndarray,
                     resolution: tuple[int, int], rng: np.random.Generator, aug: ViewAugmentation
                     ) -> tuple[Image.Image, np.ndarray, np.ndarray, np.ndarray]:
    """Steps 1-6. ``resolution`` is (W, H) landscape; returns the cropped image, depth (H, W),
    prior (H, W, 3) and K (3, 3) — in portrait orientation if the view was turned."""
    image, (depth, prior), k = cropping.crop_about_principal_point(image, [depth, prior], intrinsics,
                                                                   round_pp=True)
    width, height = image.size
    target = tuple(resolution)
    if height > 1.1 * width:
        target = target[::-1]
    elif 0.9 < height / width < 1.1 and target[0] != target[1] and rng.integers(2):
        target = target[::-1]

    if aug.aug_focal:
        fraction = float(rng.choice(FOCAL_AUG_FRACTIONS))
        image, (depth, prior), k = cropping.centre_crop_fraction(image, [depth, prior], k, fraction)

    cover = np.array(target)
    if aug.aug_crop > 1:
        cover = cover + int(rng.integers(0, aug.aug_crop))
    image, (depth, prior), k = cropping.rescale(image, [depth, prior], k, cover)
    image, (depth, prior), k = cropping.crop_to_resolution(image, [depth, prior], k, target)
    return image, depth, prior, k


def depth_to_world_points(depth: np.ndarray, intrinsics: np.ndarray, cam2world: np.ndarray) -> np.ndarray:
    """(H, W) z-depth, (3, 3) K, (4, 4) camera-to-world → (H, W, 3) float32 world points.

    Numpy on purpose: it runs in data-loader workers, where torch's thread pool only adds
    overhead for maps this small (same formula as ``align3r.geometry.depth_to_world_points``).
    """
    h, w = depth.shape
    u = np.arange(w, dtype=np.float32)[None, :]
    v = np.arange(h, dtype=np.float32)[:, None]
    cam = np.empty((h, w, 3), dtype=np.float32)
    cam[..., 0] = (u - intrinsics[0, 2]) * depth / intrinsics[0, 0]
    cam[..., 1] = (v - intrinsics[1, 2]) * depth / intrinsics[1, 1]
    cam[..., 2] = depth
    return (cam @ cam2world[:3, :3].T + cam2world[:3, 3]).astype(np.float32)


def valid_depth_mask(depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: 0 < depth < 400. If nothing qualifies, the pixels at the smallest positive
    depth are kept so a far-only view still has a scale (the reference's fallback)."""
    valid = (depth > 0) & (depth < MAX_VALID_DEPTH)
    if not valid.any() and (depth > 0).any():
        valid = depth == depth[depth > 0].min()
    return valid


def make_view(image: Image.Image, depth: np.ndarray, prior: np.ndarray, intrinsics: np.ndarray,
              cam2world: np.ndarray, resolution: tuple[int, int], rng: np.random.Generator,
              aug: ViewAugmentation, *, instance: str = "", dataset: str = "") -> dict[str, Any]:
    """One frame → one view.

    Args:
        image: RGB frame. depth: (H, W) float32 GT z-depth (0 where unknown). prior: (H, W, 3)
        normalised prior point map at the frame's resolution. intrinsics: (3, 3) K in pixels.
        cam2world: (4, 4) camera-to-world pose (OpenCV axes). resolution: (W, H) landscape.
    Returns:
        dict with, for a view of true size (H, W) stored landscape as (h, w) = sorted:
        ``img`` (3, h, w) float32 in [-1, 1]; ``true_shape`` (2,) int32 = (H, W);
        ``prior_pts3d`` (h, w, 3) float32; ``pts3d`` (h, w, 3) float32 GT world points;
        ``valid_mask`` (h, w, 2) bool, channel 0 = 0 < depth < 400 (:func:`valid_depth_mask`, what
        the losses use), channel 1 = depth > 0, both only where the GT point is finite (the
        reference's layout); ``depthmap`` (h, w) float32; ``camera_pose`` (4, 4) and
        ``camera_intrinsics`` (3, 3) float32; ``instance`` and ``dataset`` str.
    """
    image, depth, prior, k = crop_resize_view(image, depth, prior, intrinsics, resolution, rng, aug)
    if aug.color_jitter:
        image = color_jitter(image, rng)
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    k = np.asarray(k, dtype=np.float32)
    cam2world = np.asarray(cam2world, dtype=np.float32)
    pts3d = depth_to_world_points(depth, k, cam2world)
    valid = np.stack((valid_depth_mask(depth), depth > 0), axis=-1) & np.isfinite(pts3d).all(axis=-1, keepdims=True)
    view = {
        "img": normalize_image(image),
        "true_shape": torch.tensor([image.height, image.width], dtype=torch.int32),
        "prior_pts3d": torch.from_numpy(np.ascontiguousarray(prior, dtype=np.float32)),
        "pts3d": torch.from_numpy(pts3d),
        "valid_mask": torch.from_numpy(valid),
        "depthmap": torch.from_numpy(depth),
        "camera_pose": torch.from_numpy(cam2world),
        "camera_intrinsics": torch.from_numpy(k),
        "instance": instance,
        "dataset": dataset,
    }
    if image.height > image.width:
        view = transpose_to_landscape(view)
    return view


def transpose_to_landscape(view: dict[str, Any]) -> dict[str, Any]:
    """Store a portrait view transposed (rows ↔ columns); ``true_shape`` is left as (H, W).

    The 3-D values are untouched (still in the true camera frame); the intrinsics become those
    of the transposed image (fx ↔ fy, cx ↔ cy).
    """
    out = dict(view)
    out["img"] = view["img"].transpose(1, 2).contiguous()
    for key in ("prior_pts3d", "pts3d", "valid_mask", "depthmap"):
        out[key] = view[key].transpose(0, 1).contiguous()
    swap = torch.tensor([1, 0, 2])
    out["camera_intrinsics"] = view["camera_intrinsics"][swap][:, swap].contiguous()
    return out

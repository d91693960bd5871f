"""Dynamic masks the user already has (e.g. SAM 2's): one image per frame, non-zero = moving.

Files are matched to frames by name: the mask's stem equals the frame's stem, after removing
one trailing frame tag (``.color``, ``_rgb``, ...) from either, as depth files are matched
(``align3r.io.folder.match_key``); ``00012.png`` is frame ``00012.jpg``'s mask. A mask
must have the frame's size or its aspect ratio (then it is resized, nearest); it is then resized
and cropped to the network view exactly as the image (:class:`~align3r.io.view_geometry.ViewGeometry`),
with nearest-neighbour sampling so it stays binary. A frame without a mask, or a mask that cannot
be read, is an :class:`~align3r.errors.InputError`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from align3r.errors import InputError
from align3r.io.folder import image_stem, match_key
from align3r.io.view_geometry import ViewGeometry, same_aspect

MASK_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def mask_to_view(mask: np.ndarray, geometry: ViewGeometry) -> np.ndarray:
    """(H0, W0) bool at the original resolution -> (H, W) bool at the network view (nearest, same crop)."""
    h1, w1 = geometry.resized_hw
    out = cv2.resize(mask.astype(np.uint8), (w1, h1), interpolation=cv2.INTER_NEAREST)
    left, top, right, bottom = geometry.crop_box
    out = out[top:bottom, left:right]
    if not geometry.crop:
        h, w = geometry.output_hw
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_NEAREST)
    return np.ascontiguousarray(out > 0)


def read_mask(path: Path, original_hw: tuple[int, int]) -> np.ndarray:
    """One mask image -> (H0, W0) bool (any non-zero channel = moving), resized (nearest) to the frame."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"cannot read mask {path}: not an image OpenCV reads")
    mask = raw.any(axis=2) if raw.ndim == 3 else raw != 0
    h0, w0 = original_hw
    if mask.shape != (h0, w0):
        if not same_aspect(mask.shape, (h0, w0)):
            raise InputError(f"mask {path} is {mask.shape[1]}x{mask.shape[0]} but the frame is {w0}x{h0}; the aspect "
                             "ratios differ, so it is not this frame's mask")
        mask = cv2.resize(mask.astype(np.uint8), (w0, h0), interpolation=cv2.INTER_NEAREST) > 0
    return mask


def mask_files(folder: str | Path, names: list[str]) -> list[Path]:
    """The mask file of every frame, by name (see the module doc)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise InputError(f"masks={folder}: no such folder (give a folder of per-frame mask images, non-zero = moving)")
    by_key: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in MASK_SUFFIXES:
            key = match_key(path.stem)
            if key in by_key:
                raise InputError(f"masks {by_key[key].name} and {path.name} in {folder} both match frame {key!r}")
            by_key[key] = path
    files = [by_key.get(match_key(image_stem(name))) for name in names]
    missing = [name for name, f in zip(names, files) if f is None]
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        raise InputError(f"masks={folder}: no mask for frame(s) {', '.join(missing[:3])}{more}; name each mask after "
                         f"its frame ({image_stem(missing[0])}.png)")
    return files  # type: ignore[return-value]


def read_masks(folder: str | Path, names: list[str], geometry: ViewGeometry) -> tuple[np.ndarray, list[Path]]:
    """Every frame's mask at network resolution: ((N, H, W) bool, the files read)."""
    files = mask_files(folder, names)
    masks = np.stack([mask_to_view(read_mask(f, geometry.original_hw), geometry) for f in files])
    return masks, files

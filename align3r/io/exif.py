"""The camera focal length recorded in a photo's EXIF, in pixels (what Depth Pro uses)."""

from __future__ import annotations

import math

import PIL.Image

_EXIF_IFD = 0x8769
_FOCAL_35MM = 0xA405  # FocalLengthIn35mmFilm
_FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)


def focal_px_from_35mm(focal_35mm: float, width: int, height: int) -> float:
    """35 mm-equivalent focal (mm) → focal in pixels for a W×H image.

    The 35 mm equivalent is defined on the diagonal, so f_px = f35·√(W²+H²)/√(36²+24²) (as
    Depth Pro); it does not depend on the orientation.
    """
    return float(focal_35mm) * math.hypot(width, height) / _FULL_FRAME_DIAGONAL_MM


def exif_focal_35mm(image: PIL.Image.Image) -> float | None:
    """FocalLengthIn35mmFilm from the Exif sub-IFD (or, non-standard, the main IFD); None if
    absent or not positive."""
    exif = image.getexif()
    value = exif.get_ifd(_EXIF_IFD).get(_FOCAL_35MM, exif.get(_FOCAL_35MM))
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 and math.isfinite(value) else None


def exif_focal_px(image: PIL.Image.Image, width: int, height: int) -> float | None:
    """Focal in pixels for the (upright) W×H image from its EXIF 35 mm focal, or None."""
    f35 = exif_focal_35mm(image)
    return None if f35 is None else focal_px_from_35mm(f35, width, height)

"""Image folders: listing in natural order, cheap size checks, decoding upright RGB."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import PIL.Image
from natsort import natsorted
from PIL.ImageOps import exif_transpose

from align3r.errors import InputError
from align3r.io.exif import exif_focal_px

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
_ORIENTATION = 0x0112
_TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def image_stem(name: str) -> str:
    """A frame's name as the run names it (the file stem): folders and an image extension removed
    (``images/frame-000000.color.jpg`` -> ``frame-000000.color``; ``1305031102.175304`` stays whole)."""
    name = Path(name).name
    return name[: -len(Path(name).suffix)] if Path(name).suffix.lower() in IMAGE_EXTENSIONS else name


#: The official caches' suffix of a depth file named after its frame (``0012_rgb_pred_depth_depthpro.npz``).
OFFICIAL_CACHE_SUFFIX = re.compile(r"_pred_depth_(?P<name>[A-Za-z0-9]+)$")
_FRAME_TAGS = (".color", "_color", "-color", ".rgb", "_rgb", "-rgb")
_DEPTH_TAGS = (".depth", "_depth", "-depth")


def match_key(stem: str) -> str:
    """The name under which a frame and its companion files (depth maps, masks) are matched: the
    stem without the official cache suffix and one trailing tag (``.depth _depth -depth`` or
    ``.color _color -color .rgb _rgb -rgb``), so ``frame-000000.depth`` matches
    ``frame-000000.color`` and ``0012_rgb_pred_depth_depthpro`` matches ``0012_rgb``."""
    stem = OFFICIAL_CACHE_SUFFIX.sub("", stem)
    for tag in (*_DEPTH_TAGS, *_FRAME_TAGS):
        if stem.endswith(tag) and len(stem) > len(tag):
            return stem[: -len(tag)]
    return stem


def list_images(folder: Path) -> list[Path]:
    """The image files of ``folder`` in natural order (``2.png`` before ``10.png``).

    Raises:
        InputError: no image file in the folder.
    """
    entries = [p for p in folder.iterdir() if p.is_file()]
    images = natsorted((p for p in entries if is_image_file(p)), key=lambda p: p.name)
    if not images:
        others = sorted({p.suffix.lower() or p.name for p in entries})
        found = f"it holds {len(entries)} other files ({', '.join(others[:8])})" if entries else "it is empty"
        raise InputError(f"no images in folder {folder}: {found}. Put the frames there as "
                         f"{'/'.join(e.lstrip('.') for e in IMAGE_EXTENSIONS)} files, or pass a video file")
    return images


def upright_size(path: Path) -> tuple[int, int]:
    """(H, W) of the image as displayed (after EXIF orientation), read from the header only."""
    try:
        with PIL.Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(_ORIENTATION, 1) in _TRANSPOSED_ORIENTATIONS:
                w, h = h, w
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for unreadable files
        raise InputError(f"cannot read image {path}: {exc}. Replace or remove the file") from exc
    return h, w


def check_same_size(paths: Sequence[Path]) -> tuple[int, int]:
    """The common (H, W) of ``paths``.

    Raises:
        InputError: the images differ in size; the message names the files that differ.
    """
    sizes = [upright_size(p) for p in paths]
    ref = sizes[0]
    odd = [(p, s) for p, s in zip(paths, sizes) if s != ref]
    if odd:
        listed = ", ".join(f"{p.name} is {s[1]}x{s[0]}" for p, s in odd[:5])
        more = f" and {len(odd) - 5} more" if len(odd) > 5 else ""
        raise InputError(f"images in {paths[0].parent} have different sizes: {paths[0].name} is "
                         f"{ref[1]}x{ref[0]} but {listed}{more}. All frames must share one resolution: "
                         "resize them or split the folder")
    return ref


def read_image(path: Path) -> tuple[np.ndarray, float | None]:
    """Decode one image upright (EXIF transpose, as the official loader) as RGB.

    Returns:
        (H, W, 3) uint8 RGB and the EXIF 35 mm focal converted to pixels (None if absent).
    """
    try:
        with PIL.Image.open(path) as im:
            upright = exif_transpose(im)
            rgb = upright.convert("RGB")
            focal = exif_focal_px(im, *rgb.size)
            return np.asarray(rgb), focal
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"cannot decode image {path}: {exc}. Replace or remove the file") from exc

"""Where a frame lands in the network view: the official resize / crop rule, as plain integers.

The official loader (``dust3r/utils/image_pose.py``, ``load_images`` and ``crop_img``) resizes a W0×H0
frame so its long side is ``size``
(512 mode) or its short side is 224 (224 mode), then takes a centred crop: sides that are
multiples of 16 at 512, a centred square at 224. The depth-evaluation variant (``crop=False``)
resizes once more, to the multiple-of-16 size, instead of cropping, so the whole field of view is
kept. ``ViewGeometry`` records the sizes and the crop box; the image (``align3r.io.views``) and
the prior point map (``align3r.priors.pointmap``) both follow it, and it maps network pixels back
to the original frame.

Coordinates: ``x`` is the column, ``y`` the row. The affine maps use *corner* coordinates
(pixel k covers [k, k+1)), which is how PIL and OpenCV resample; pixel-centre indices u convert
as x = u + 0.5.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from align3r.errors import InputError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewGeometry:
    """How one original frame becomes a network view.

    - ``original_hw``: (H0, W0) of the frame.
    - ``resized_hw``: (H1, W1) after the first resize (long side ``size``, or short side 224).
    - ``crop_box``: (left, top, right, bottom) in resized pixels: the part of the resized image
      kept; the whole resized image when ``crop`` is False.
    - ``output_hw``: (H, W) of the network view (multiples of 16; 224×224 in 224 mode).
    - ``shrink``: the first resize shrinks the frame (PIL LANCZOS / OpenCV Lanczos4), else it
      enlarges (BICUBIC / cubic).
    - ``crop``: True for the centred crop, False for the resize-without-crop variant.
    """

    original_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    crop_box: tuple[int, int, int, int]
    output_hw: tuple[int, int]
    shrink: bool
    crop: bool

    @property
    def scale_xy(self) -> tuple[float, float]:
        """Network pixels per original pixel along x and y."""
        (h0, w0), (h1, w1) = self.original_hw, self.resized_hw
        left, top, right, bottom = self.crop_box
        h, w = self.output_hw
        return (w1 / w0) * (w / (right - left)), (h1 / h0) * (h / (bottom - top))

    @property
    def offset_xy(self) -> tuple[float, float]:
        """Network corner coordinate of the original frame's corner (0, 0) (≤ 0 when cropped)."""
        left, top, right, bottom = self.crop_box
        h, w = self.output_hw
        return -left * (w / (right - left)), -top * (h / (bottom - top))


#: How far a per-frame map's aspect ratio (a depth prior, a mask) may be from its frame's and the
#: map still belong to that frame (resolution differences round the sides).
ASPECT_TOLERANCE = 0.01


def same_aspect(hw: tuple[int, int], frame_hw: tuple[int, int]) -> bool:
    """Whether an (h, w) map has the (H, W) frame's aspect ratio within :data:`ASPECT_TOLERANCE`."""
    (h, w), (fh, fw) = hw, frame_hw
    return abs((w / h) / (fw / fh) - 1) <= ASPECT_TOLERANCE


def compute_view_geometry(height: int, width: int, size: int = 512, *, crop: bool = True,
                          square_ok: bool = False) -> ViewGeometry:
    """The official resize/crop of an H×W frame for network size ``size`` (224, 512, …).

    - ``size == 224``: the short side becomes 224 (long side ``round(224·max(W/H, H/W))``), then
      the centred square of side ``2·min(W1//2, H1//2)`` (= 224). ``crop=False`` is ignored, as
      upstream (224 is a training/test size only).
    - otherwise: the long side becomes ``size`` (each side ``round(x·size/S)``); with
      ``cx, cy = W1//2, H1//2`` the half sizes are ``((2cx)//16)·8`` and ``((2cy)//16)·8``. A
      square frame (W1 == H1) gets a 4:3 landscape crop unless ``square_ok``; upstream's
      ``3·halfw/4`` is kept but rounded down to a multiple of 8 so the sides stay multiples of 16
      for sizes other than 512 (identical at 512). ``crop=True`` keeps the box
      (cx−halfw, cy−halfh, cx+halfw, cy+halfh); ``crop=False`` resizes to (2·halfw, 2·halfh).

    Raises:
        InputError: the frame is so elongated that a side of the view would be empty.
    """
    if size < 16:
        raise InputError(f"network size must be at least 16 pixels, got {size}")
    h0, w0 = int(height), int(width)
    if h0 <= 0 or w0 <= 0:
        raise InputError(f"frame has no pixels ({w0}x{h0})")
    s = max(w0, h0)
    target = round(size * max(w0 / h0, h0 / w0)) if size == 224 else size
    w1, h1 = (round(x * target / s) for x in (w0, h0))
    shrink = s > target
    cx, cy = w1 // 2, h1 // 2
    if size == 224:
        half = min(cx, cy)
        box = (cx - half, cy - half, cx + half, cy + half)
        return ViewGeometry((h0, w0), (h1, w1), box, (2 * half, 2 * half), shrink, True)
    halfw, halfh = ((2 * cx) // 16) * 8, ((2 * cy) // 16) * 8
    if not square_ok and w1 == h1:
        halfh = (3 * halfw // 4) // 8 * 8
    if halfw == 0 or halfh == 0:
        raise InputError(f"a {w0}x{h0} frame is too elongated for network size {size}: a side of the "
                         "view would be empty; crop the frames to a less extreme aspect ratio")
    if crop:
        box = (cx - halfw, cy - halfh, cx + halfw, cy + halfh)
        return ViewGeometry((h0, w0), (h1, w1), box, (2 * halfh, 2 * halfw), shrink, True)
    return ViewGeometry((h0, w0), (h1, w1), (0, 0, w1, h1), (2 * halfh, 2 * halfw), shrink, False)


def check_network_size(height: int, width: int, size: int, *, crop: bool = True) -> ViewGeometry:
    """:func:`compute_view_geometry` for an H×W frame (``InputError`` for a size the frame cannot
    take), logging a warning with the view size when ``size`` is neither 512 nor 224 (the
    resolutions the released networks were trained at)."""
    geometry = compute_view_geometry(height, width, size, crop=crop)
    if size not in (224, 512):
        h, w = geometry.output_hw
        log.warning("size=%s is not a resolution the released networks were trained at (512: long side 512, "
                    "224: square): %dx%d frames become %dx%d views (long side %s, sides rounded down to "
                    "multiples of 16)", size, width, height, w, h, size)
    return geometry

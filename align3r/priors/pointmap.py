"""Depth prior → the 3-channel prior point map the network reads (``pred_depth`` upstream).

The official recipe (``dust3r/utils/image_pose.py``, ``pixel_to_pointcloud`` and
``normalize_pointcloud``; fixtures ``prior/``), reproduced bit for bit:

1. back-project the depth at its own resolution with principal point (W/2, H/2) on integer
   pixels, in float64, then cast to float32: ``X = (u − W/2)·Z/f``, ``Y = (v − H/2)·Z/f``, ``Z``;
2. min–max normalise each channel over the whole image to [0, 1] (float32);
3. resize like the image (OpenCV Lanczos4 when shrinking, cubic otherwise) and crop with the
   image's box; the resize-without-crop variant resizes once more with cubic.

The focal and any positive depth scale cancel in step 2, so a missing focal (Depth Anything V2,
whose *disparity* is back-projected as if it were depth) uses upstream's 200 px.

Prior representation (``prior_input``, the ablation of the supplementary's Table 2):

- ``"pointmap"`` (default, the released networks): the back-projected, normalised (X, Y, Z) above;
- ``"depthmap"``: the depth map alone, min–max normalised over the image to [0, 1] and repeated on
  the three channels the prior patch embedding reads — channel-wise it equals the point map's Z
  channel copied into X and Y, so the only information removed is the camera geometry (the
  back-projection through the focal and principal point). Networks trained with one
  representation must be evaluated with the same one.

A prior at another resolution than the frame (``prior_resize``, :data:`PRIOR_RESIZES`):

- ``"official"``: the point map is built at the prior's own resolution and resized/cropped by the
  image's rule applied to the prior's own size (official ``dust3r/utils/image_pose.py``,
  ``load_images`` / ``crop_img``). Well-defined only when that lands exactly on the image's view
  (a Depth Pro cache at half resolution: 427×240 → 512×288, as the image); the released
  checkpoints' numbers were produced this way;
- ``"frame"``: the depth is first resampled to the frame (bilinear, antialiased when shrinking:
  ``align3r.priors.resample.resize_map``), then treated as a frame-sized prior. Where the official
  rule does not land on the view (a 924×518 Depth Anything V2 output gives a 287-row prior for a
  288-row 854×480 view, silently) this is the only sound choice;
- ``"auto"`` (default): ``"official"`` where it is well-defined, else ``"frame"`` with a one-line
  note (logged at INFO once per prior/frame size). A prior at the frame's resolution takes the
  same path under every setting. ``docs/priors.md`` gives the measured effect of the choice.

Where upstream is fragile we are strict or repair, never silent:

- a prior whose aspect ratio differs from the frame's by more than 1 % raises ``InputError``;
  ``prior_resize="official"`` where the official rule does not land on the view raises too;
- invalid values (NaN, ±inf, and ≤ 0 for depth / < 0 for disparity) are filled with the value of
  the nearest valid pixel when they are at most ``max_invalid_fraction`` of the map (default
  5 %, :data:`DEFAULT_MAX_INVALID_FRACTION`), otherwise ``InputError``; depth *files* are filled
  when they are read, up to :data:`FILE_MAX_INVALID_FRACTION` (50 %: sensor depth has holes),
  so this check then sees a repaired map;
- a (nearly) constant channel, which upstream turns into NaN, raises ``InputError``.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import torch
from scipy import ndimage

from align3r.errors import InputError
from align3r.geometry import depth_to_camera_points, intrinsics_from_focal
from align3r.io.view_geometry import ViewGeometry, compute_view_geometry, same_aspect
from align3r.priors.resample import resize_array
from align3r.priors.types import DepthPrior

log = logging.getLogger(__name__)

PRIOR_INPUTS = ("pointmap", "depthmap")
"""The prior representations the network's prior branch can be given (module docstring)."""
PRIOR_RESIZES = ("auto", "official", "frame")
"""How a prior at another resolution than the frame reaches the view (module docstring)."""
DISPARITY_FOCAL_PX = 200.0
"""Focal used when a prior has none (upstream's constant for Depth Anything V2; it cancels)."""
DEFAULT_MAX_INVALID_FRACTION = 0.05
"""Invalid pixels a prior may have and still be repaired here: more in a model's output means the
prediction is broken."""
FILE_MAX_INVALID_FRACTION = 0.5
"""Invalid pixels a depth file (``align3r.priors.external``) may have and still be filled when read:
sensor depth has holes (7-Scenes 7–10 %); more than half means the map is mostly made up."""
_MIN_RELATIVE_RANGE = 1e-6


def valid_prior_mask(depth: np.ndarray, kind: str = "depth") -> np.ndarray:
    """(H, W) bool: finite and > 0 for depth (sensor holes are 0), finite and >= 0 for disparity
    (zero disparity is the far sky)."""
    return np.isfinite(depth) & ((depth >= 0) if kind == "disparity" else (depth > 0))


def repair_depth(depth: np.ndarray, *, kind: str = "depth",
                 max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION,
                 what: str = "depth prior") -> tuple[np.ndarray, int]:
    """Fill invalid prior values from their nearest valid pixel.

    Args:
        depth: (H, W) depth (``kind="depth"``, valid if finite and > 0) or relative disparity
            (``kind="disparity"``, valid if finite and ≥ 0: zero disparity is the far sky).
        max_invalid_fraction: above this fraction of invalid pixels the prior is rejected.
        what: how to name the map in error messages (e.g. "depth prior of frame 3").

    Returns:
        (H, W) float32 copy with every invalid pixel replaced by the value of its nearest valid
        pixel (Euclidean distance transform), and the number of pixels replaced.

    Raises:
        InputError: too many invalid pixels.
    """
    depth = np.asarray(depth, dtype=np.float32)
    valid = valid_prior_mask(depth, kind)
    n_bad = int(depth.size - np.count_nonzero(valid))
    if n_bad == 0:
        return depth, 0
    fraction = n_bad / depth.size
    rule = "finite and >= 0" if kind == "disparity" else "finite and > 0"
    if fraction > max_invalid_fraction or n_bad == depth.size:
        raise InputError(f"{what}: {fraction:.1%} of its {kind} pixels are invalid (NaN, inf or out of range; "
                         f"values must be {rule}); at most {max_invalid_fraction:.0%} can be repaired. "
                         "Recompute the prior, or mask the bad pixels with valid values")
    _, (rows, cols) = ndimage.distance_transform_edt(~valid, return_indices=True)
    repaired = depth[rows, cols]
    log.warning("%s: filled %d invalid pixels (%.2f%%) from their nearest valid neighbour",
                what, n_bad, 100 * fraction)
    return repaired, n_bad


def match_prior_to_frame(depth: np.ndarray, focal_px: float | None, frame_hw: tuple[int, int], *,
                         what: str = "depth prior") -> tuple[np.ndarray, float | None]:
    """Bring a prior to the frame's resolution.

    A prior of another size but the same aspect ratio (within 1 %) is resampled to (H, W)
    (``align3r.priors.resample.resize_array``: bilinear, antialiased when shrinking) and its focal
    scaled with the width; a different aspect ratio raises ``InputError``.

    Args:
        depth: (h, w) prior. focal_px: its focal in pixels at (h, w), or None.
        frame_hw: (H, W) of the frame.
    Returns:
        (H, W) float32 prior and the focal at (H, W) (None stays None).
    """
    h, w = depth.shape
    fh, fw = frame_hw
    if (h, w) == (fh, fw):
        return depth, focal_px
    check_aspect((h, w), (fh, fw), what=what)
    # Bilinear weights are convex: a positive depth stays positive (Lanczos would ring below zero
    # at depth edges, and a disparity below zero next to the sky).
    return resize_array(depth, (fh, fw)), (None if focal_px is None else float(focal_px) * fw / w)


def check_aspect(prior_hw: tuple[int, int], frame_hw: tuple[int, int], *, what: str = "depth prior") -> None:
    """``InputError`` unless a (h, w) prior has the (H, W) frame's aspect ratio within 1 %."""
    (h, w), (fh, fw) = prior_hw, frame_hw
    if not same_aspect((h, w), (fh, fw)):
        raise InputError(f"{what} is {w}x{h} but the frame is {fw}x{fh}: the aspect ratios differ, so "
                         "it cannot belong to this frame (rotated or cropped?). Recompute the prior on "
                         "the frames as given")


def official_prior_geometry(prior_hw: tuple[int, int], geometry: ViewGeometry, size: int, *,
                            square_ok: bool = False) -> ViewGeometry | None:
    """Where the official loader puts a prior of another size than the frame, if that is the view.

    The official loader resizes the prior by the image's rule applied to the prior's *own* size
    and crops it about its own centre with the image's crop size (official
    ``dust3r/utils/image_pose.py``, ``load_images`` / ``crop_img``). That is well-defined when the
    prior's resize and crop box equal the image's (same aspect ratio, e.g. 427×240 for 854×480);
    otherwise the map is cut short or misaligned (924×518 → 287 rows for a 288-row view).

    Args:
        prior_hw: (h, w) of the prior. geometry: the image's view. size, square_ok: as given to
            ``compute_view_geometry`` for the image.
    Returns:
        the prior's own ``ViewGeometry`` (``pointmap_to_view`` then follows the official path), or
        None where the official rule does not land on the image's view.
    """
    try:
        own = compute_view_geometry(*prior_hw, size, crop=geometry.crop, square_ok=square_ok)
    except InputError:
        return None
    same = (own.resized_hw, own.crop_box, own.output_hw) == (geometry.resized_hw, geometry.crop_box,
                                                              geometry.output_hw)
    return own if same else None


def check_prior_resize(prior_resize: str) -> str:
    """``prior_resize`` if it is one of :data:`PRIOR_RESIZES`, else ``InputError``."""
    if prior_resize not in PRIOR_RESIZES:
        raise InputError(f"unknown prior_resize {prior_resize!r}; choose one of {', '.join(PRIOR_RESIZES)}")
    return prior_resize


_NOTED: set[tuple] = set()  # (prior, frame, view) sizes already explained in the log


def resolve_prior_resize(prior_resize: str, prior_hw: tuple[int, int], geometry: ViewGeometry, size: int, *,
                         square_ok: bool = False, what: str = "depth prior") -> ViewGeometry | None:
    """The geometry to resize a prior's point map with: its own (``"official"``) or None (``"frame"``:
    resample the depth to the frame first). See :data:`PRIOR_RESIZES` and the module docstring.

    Raises:
        InputError: an unknown setting; another aspect ratio; ``"official"`` where the official
            rule does not land on the view.
    """
    check_prior_resize(prior_resize)
    if tuple(prior_hw) == geometry.original_hw:
        return geometry  # the same path under every setting
    check_aspect(prior_hw, geometry.original_hw, what=what)
    if prior_resize == "frame":
        return None
    own = official_prior_geometry(prior_hw, geometry, size, square_ok=square_ok)
    (h, w), (fh, fw), (vh, vw) = prior_hw, geometry.original_hw, geometry.output_hw
    if own is None and prior_resize == "official":
        rh, rw = compute_view_geometry(h, w, size, crop=geometry.crop, square_ok=square_ok).resized_hw
        ih, iw = geometry.resized_hw
        raise InputError(f"{what}: prior_resize=official is not defined for a {w}x{h} prior of a {fw}x{fh} frame "
                         f"(the official rule resizes it to {rw}x{rh}, the image to {iw}x{ih}, so it would not fit "
                         f"the {vw}x{vh} view); use prior_resize=frame or auto")
    key = (tuple(prior_hw), geometry.original_hw, geometry.output_hw)
    if own is None and key not in _NOTED:
        _NOTED.add(key)
        log.info("%dx%d priors for %dx%d frames: resampled to the frame first (prior_resize=frame), as the official "
                 "resize would not land on the %dx%d view", w, h, fw, fh, vw, vh)
    return own


def prior_pointmap(depth: np.ndarray, focal_px: float | None, *, what: str = "depth prior") -> np.ndarray:
    """Back-project and min–max normalise a prior, as upstream.

    Args:
        depth: (h, w) depth (or disparity) without invalid values (see ``repair_depth``).
        focal_px: focal in pixels at (h, w); None → ``DISPARITY_FOCAL_PX``. Any positive value
            gives the same map up to float rounding.
    Returns:
        (h, w, 3) float32, each channel scaled to [0, 1] over the image.

    Raises:
        InputError: a channel is (nearly) constant — a constant depth cannot be normalised.
    """
    f = DISPARITY_FOCAL_PX if focal_px is None else float(focal_px)
    if not np.isfinite(f) or f <= 0:
        raise InputError(f"{what}: focal length must be a positive number of pixels, got {focal_px}")
    h, w = depth.shape
    z = torch.from_numpy(np.ascontiguousarray(depth)).to(torch.float64)
    k = intrinsics_from_focal(torch.tensor(f, dtype=torch.float64), h, w)
    pts = depth_to_camera_points(z, k).to(torch.float32)  # float64 maths, float32 storage (upstream)
    lo = pts.amin(dim=(0, 1))
    hi = pts.amax(dim=(0, 1))
    span = hi - lo
    scale = torch.maximum(hi.abs(), lo.abs())
    flat = span <= _MIN_RELATIVE_RANGE * scale
    if bool(flat.any()):
        raise InputError(f"{what} is constant (channel {'XYZ'[int(flat.nonzero()[0])]} has no range): "
                         "a flat prior carries no shape and cannot be normalised. Check the depth model's "
                         "output for this frame")
    return ((pts - lo) / span).numpy()


def check_prior_input(prior_input: str) -> str:
    """``prior_input`` if it is one of :data:`PRIOR_INPUTS`, else ``InputError``."""
    if prior_input not in PRIOR_INPUTS:
        raise InputError(f"unknown prior representation {prior_input!r}; choose one of {', '.join(PRIOR_INPUTS)}")
    return prior_input


def prior_depthmap(depth: np.ndarray, *, what: str = "depth prior") -> np.ndarray:
    """The depth-map prior input: min–max normalised depth repeated on three channels.

    Args:
        depth: (h, w) depth (or disparity) without invalid values (see ``repair_depth``).
    Returns:
        (h, w, 3) float32, three equal channels scaled to [0, 1] over the image; equal (bit for
        bit) to the Z channel of ``prior_pointmap`` for any focal.

    Raises:
        InputError: the map is (nearly) constant.
    """
    # float64 -> float32 as the point map's Z channel, then the same float32 normalisation.
    z = torch.from_numpy(np.ascontiguousarray(depth)).to(torch.float64).to(torch.float32)
    lo, hi = z.amin(), z.amax()
    if bool(hi - lo <= _MIN_RELATIVE_RANGE * torch.maximum(hi.abs(), lo.abs())):
        raise InputError(f"{what} is constant: a flat prior carries no shape and cannot be normalised. "
                         "Check the depth model's output for this frame")
    return ((z - lo) / (hi - lo))[..., None].expand(*z.shape, 3).contiguous().numpy()


def prior_input_map(depth: np.ndarray, focal_px: float | None, prior_input: str = "pointmap", *,
                    what: str = "depth prior") -> np.ndarray:
    """The (h, w, 3) float32 prior input in the representation ``prior_input`` (:data:`PRIOR_INPUTS`):
    ``prior_pointmap`` for ``"pointmap"``, ``prior_depthmap`` (focal unused) for ``"depthmap"``."""
    if check_prior_input(prior_input) == "depthmap":
        return prior_depthmap(depth, what=what)
    return prior_pointmap(depth, focal_px, what=what)


def pointmap_to_view(pointmap: np.ndarray, geometry: ViewGeometry) -> np.ndarray:
    """Resize and crop a full-resolution point map exactly as the image of that view.

    Args:
        pointmap: (H0, W0, 3) float32 at the frame's original resolution.
        geometry: the view's ``ViewGeometry``.
    Returns:
        (H, W, 3) float32 at the network resolution (Lanczos may overshoot [0, 1] by ~1e-4).
    """
    if pointmap.shape[:2] != geometry.original_hw:
        raise ValueError(f"point map is {pointmap.shape[:2]}, geometry expects {geometry.original_hw}")
    h1, w1 = geometry.resized_hw
    interp = cv2.INTER_LANCZOS4 if geometry.shrink else cv2.INTER_CUBIC
    out = cv2.resize(pointmap, (w1, h1), interpolation=interp)
    left, top, right, bottom = geometry.crop_box
    out = out[top:bottom, left:right]
    if not geometry.crop:
        h, w = geometry.output_hw
        out = cv2.resize(out, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(out)


def prior_to_view(prior: DepthPrior, geometry: ViewGeometry, *,
                  max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION,
                  what: str = "depth prior", prior_input: str = "pointmap", prior_resize: str = "auto",
                  size: int = 512, square_ok: bool = False) -> tuple[np.ndarray, int]:
    """A ``DepthPrior`` → its network-ready input: repair, bring to the view's size
    (``prior_resize``, see :func:`resolve_prior_resize`), back-project (or keep the depth,
    ``prior_input="depthmap"``), normalise, resize/crop.

    ``size``, ``square_ok``: as the view was made with (they decide where the official rule puts a
    prior at another resolution).

    Returns:
        (H, W, 3) float32 prior input and the number of prior pixels repaired.
    """
    check_prior_input(prior_input)
    own = resolve_prior_resize(prior_resize, prior.depth.shape, geometry, size, square_ok=square_ok, what=what)
    # Repair first, at the prior's own resolution: resampling would smear NaNs into neighbours.
    depth, n_repaired = repair_depth(prior.depth, kind=prior.kind, max_invalid_fraction=max_invalid_fraction,
                                     what=what)
    focal = prior.focal_px
    if own is None:
        depth, focal = match_prior_to_frame(depth, focal, geometry.original_hw, what=what)
        own = geometry
    view = pointmap_to_view(prior_input_map(depth, focal, prior_input, what=what), own)
    if not np.isfinite(view).all():  # cannot happen for finite input; never feed NaN to the network
        raise InputError(f"{what}: the resized point map is not finite")
    return view, n_repaired

"""Frames (+ depth priors) → network-ready views: image tensor, ``true_shape``, prior point map.

The image follows the official loader exactly (PIL resize, LANCZOS when shrinking and BICUBIC
otherwise, then the centred crop of ``ViewGeometry``), so ``rgb``, ``img`` and ``true_shape``
equal the fixtures bit for bit; the prior point map follows the same geometry
(``align3r.priors.pointmap``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import PIL.Image
import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from align3r.errors import InputError
from align3r.geometry import map_intrinsics
from align3r.io.view_geometry import ViewGeometry, compute_view_geometry
from align3r.priors.pointmap import (
    DEFAULT_MAX_INVALID_FRACTION,
    check_prior_input,
    check_prior_resize,
    prior_to_view,
)
from align3r.priors.types import DepthPrior


@dataclass
class Views:
    """N frames prepared for the network, all at one resolution H×W.

    - ``rgb``: (N, H, W, 3) uint8, the resized/cropped image the normaliser sees.
    - ``img`` (property): (N, 3, H, W) float32 in [−1, 1], ``(rgb/255 − 0.5)/0.5`` — computed on
      access from ``rgb`` (4× less memory held); ``image_tensor(idx)`` builds a subset.
    - ``true_shape``: (N, 2) int32, (H, W) of every view.
    - ``prior_pts3d``: (N, H, W, 3) float32, the prior point map in [0, 1] (up to Lanczos
      overshoot ~1e-4), or None without priors. With ``make_views(prior_input="depthmap")`` it
      holds the normalised depth map repeated on the three channels instead.
    - ``prior_repaired``: (N,) int64, prior pixels filled by the repair, or None without priors.
    - ``geometry``: the ``ViewGeometry`` shared by all frames (sizes, crop box, mapping back to the
      original frame).

    Memory: 3·H·W bytes per view for ``rgb`` plus 12·H·W for ``prior_pts3d`` (512×288: 0.44 MB +
    1.77 MB); ``img`` allocates 12·H·W per view each time it is read.
    """

    rgb: Tensor
    true_shape: Tensor
    prior_pts3d: Tensor | None
    prior_repaired: Tensor | None
    geometry: ViewGeometry

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every view."""
        return self.geometry.output_hw

    @property
    def img(self) -> Tensor:
        """(N, 3, H, W) float32 in [−1, 1] (ToTensor + Normalize(0.5, 0.5), bit-exact)."""
        return self.image_tensor()

    def image_tensor(self, index: Tensor | Sequence[int] | slice | None = None) -> Tensor:
        """(n, 3, H, W) float32 network input for the views ``index`` (all when None)."""
        rgb = self.rgb if index is None else self.rgb[index]
        return (rgb.permute(0, 3, 1, 2).to(torch.float32) / 255 - 0.5) / 0.5

    def select(self, index: Tensor | Sequence[int]) -> Views:
        """The views ``index`` (e.g. the keyframes or one clip), as a new ``Views``."""
        index = torch.as_tensor(index, dtype=torch.int64)
        return replace(
            self,
            rgb=self.rgb[index],
            true_shape=self.true_shape[index],
            prior_pts3d=None if self.prior_pts3d is None else self.prior_pts3d[index],
            prior_repaired=None if self.prior_repaired is None else self.prior_repaired[index],
        )

    @classmethod
    def concat(cls, parts: Sequence[Views]) -> Views:
        """The views of ``parts`` one after the other (e.g. the chunks of a long video); all share
        the first part's geometry and have priors or not as it does."""
        first = parts[0]
        return cls(
            rgb=torch.cat([p.rgb for p in parts]),
            true_shape=torch.cat([p.true_shape for p in parts]),
            prior_pts3d=None if first.prior_pts3d is None else torch.cat([p.prior_pts3d for p in parts]),
            prior_repaired=None if first.prior_repaired is None else torch.cat([p.prior_repaired for p in parts]),
            geometry=first.geometry,
        )

    # ---- mapping between network pixels and the original frame --------------------------------

    def to_original_intrinsics(self, intrinsics: Tensor) -> Tensor:
        """Network-resolution intrinsics → the original frame's.

        Args:
            intrinsics: (..., 3, 3) pinhole K at network resolution (u = column index of a pixel
                centre).
        Returns:
            (..., 3, 3) K for the original frame: fx/sx, fy/sy and the principal point moved
            through the resize and crop with exact pixel-centre bookkeeping:
            c_orig = (c_net + 0.5 − offset)/scale − 0.5.
        """
        (sx, sy), (bx, by) = self.geometry.scale_xy, self.geometry.offset_xy  # x_net = s·x_orig + b
        return map_intrinsics(intrinsics, (1 / sx, 1 / sy), (-bx / sx, -by / sy))

    def to_network_intrinsics(self, intrinsics: Tensor) -> Tensor:
        """The inverse of ``to_original_intrinsics``: (..., 3, 3) original K → network K."""
        return map_intrinsics(intrinsics, self.geometry.scale_xy, self.geometry.offset_xy)

    def original_coverage(self, device: torch.device | str | None = None) -> Tensor:
        """(H0, W0) bool: original pixels whose centre lies inside the network view (all True
        without crop)."""
        x, y = self._original_centres_in_network(device, torch.float32)
        h, w = self.geometry.output_hw
        inside_x = (x >= 0) & (x <= w)
        inside_y = (y >= 0) & (y <= h)
        return inside_y[:, None] & inside_x[None, :]

    def resize_to_original(self, maps: Tensor, mode: str = "bilinear") -> Tensor:
        """Resample network-resolution maps (depth, confidence, masks) to the original frame.

        Each original pixel centre is mapped into the view and sampled (``"bilinear"`` or
        ``"nearest"``); pixels outside a crop take the nearest border value (see
        ``original_coverage``). Without crop this equals OpenCV's bilinear resize.

        Args:
            maps: (N, H, W) or (N, H, W, C) on any device; bool/int maps need ``mode="nearest"``.
                The output holds N original-size maps: pass long videos in chunks.
        Returns:
            (N, H0, W0) or (N, H0, W0, C), same dtype and device.
        """
        h, w = self.geometry.output_hw
        if maps.dim() not in (3, 4) or tuple(maps.shape[1:3]) != (h, w):
            raise ValueError(f"maps must be (N, {h}, {w}[, C]), got {tuple(maps.shape)}")
        channels_last = maps.dim() == 4
        x = maps.permute(0, 3, 1, 2) if channels_last else maps[:, None]
        dtype = maps.dtype
        work_dtype = dtype if dtype.is_floating_point else torch.float32
        gx, gy = self._original_centres_in_network(maps.device, work_dtype)
        # grid_sample with align_corners=False: normalised -1..1 spans the corner coordinates 0..W.
        gx, gy = 2 * gx / w - 1, 2 * gy / h - 1
        grid = torch.stack(torch.broadcast_tensors(gx[None, :], gy[:, None]), dim=-1)
        grid = grid.expand(x.shape[0], *grid.shape)
        out = F.grid_sample(x.to(work_dtype), grid, mode=mode, padding_mode="border", align_corners=False)
        out = out.to(dtype)
        return out.permute(0, 2, 3, 1) if channels_last else out[:, 0]

    def _original_centres_in_network(self, device, dtype) -> tuple[Tensor, Tensor]:
        """Network corner coordinates (x (W0,), y (H0,)) of the original pixel centres."""
        h0, w0 = self.geometry.original_hw
        (sx, sy), (bx, by) = self.geometry.scale_xy, self.geometry.offset_xy
        # float64 on the CPU (MPS has no float64), then the caller's device and dtype
        xs = (torch.arange(w0, dtype=torch.float64) + 0.5) * sx + bx
        ys = (torch.arange(h0, dtype=torch.float64) + 0.5) * sy + by
        return xs.to(device=device, dtype=dtype), ys.to(device=device, dtype=dtype)


def _as_image_list(images) -> list[np.ndarray]:
    frames = getattr(images, "images", images)  # a FrameSequence or anything holding frames
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise InputError(f"images must be (N, H, W, 3) uint8, got an array of shape {frames.shape}")
        frames = list(frames)
    frames = [np.asarray(f) for f in frames]
    for k, f in enumerate(frames):
        if f.dtype != np.uint8 or f.ndim != 3 or f.shape[2] != 3:
            raise InputError(f"frame {k} must be (H, W, 3) uint8 RGB, got {f.dtype} {f.shape}")
    return frames


def _resize_image(image: np.ndarray, geometry: ViewGeometry) -> np.ndarray:
    """PIL resize + crop (or second resize), exactly as the official loader."""
    pil = PIL.Image.fromarray(image)
    h1, w1 = geometry.resized_hw
    pil = pil.resize((w1, h1), PIL.Image.LANCZOS if geometry.shrink else PIL.Image.BICUBIC)
    if geometry.crop:
        pil = pil.crop(geometry.crop_box)
    else:
        h, w = geometry.output_hw
        pil = pil.resize((w, h), PIL.Image.LANCZOS)
    return np.array(pil)  # a writable copy, as torch.from_numpy wants


def make_views(images, size: int = 512, *, crop: bool = True, priors: Sequence[DepthPrior] | None = None,
               square_ok: bool = False, max_invalid_fraction: float = DEFAULT_MAX_INVALID_FRACTION,
               progress: bool | None = None, prior_input: str = "pointmap", prior_resize: str = "auto") -> Views:
    """Resize/crop frames (and their depth priors) to the network resolution.

    Args:
        images: a ``FrameSequence``, a list of (H, W, 3) uint8 RGB arrays or an (N, H, W, 3)
            array; all frames must share one size.
        size: 512 (long side 512, sides multiples of 16, centred crop) or 224 (centred square);
            other sizes follow the 512 rule with that long side.
        crop: False gives the depth-evaluation variant: resize to the multiple-of-16 size
            without cropping (whole field of view).
        priors: one ``DepthPrior`` per frame (depth at the frame's resolution, or another of the
            same aspect ratio: see ``prior_resize``), or None. A prior without focal uses 200 px (it cancels).
        square_ok: keep square frames square at 512 (upstream crops them to 4:3).
        max_invalid_fraction: invalid prior pixels up to this fraction are repaired (nearest
            valid value), above it ``InputError``.
        progress: tqdm progress bar (None: only on a terminal).
        prior_input: how the prior reaches the network (``align3r.priors.pointmap.PRIOR_INPUTS``):
            ``"pointmap"`` (the released networks) or ``"depthmap"`` (normalised depth repeated on
            three channels, the supplementary's Table 2 ablation).
        prior_resize: how a prior at another resolution than the frame reaches the view
            (``align3r.priors.pointmap.PRIOR_RESIZES``): ``"official"`` (point map built at the
            prior's resolution, resized with it as the official loader does), ``"frame"`` (depth
            resampled to the frame first) or ``"auto"`` (official where well-defined, else frame,
            with a note). Frame-sized priors take the same path under every setting.

    Returns:
        ``Views``.

    Raises:
        InputError: frames of different sizes, bad priors (see ``align3r.priors.pointmap``),
            a prior count that does not match the frames.
    """
    check_prior_input(prior_input)
    check_prior_resize(prior_resize)
    frames = _as_image_list(images)
    names = getattr(images, "names", None)  # a FrameSequence names its frames in error messages
    if not frames:
        raise InputError("no frames to prepare")
    sizes = {f.shape[:2] for f in frames}
    if len(sizes) > 1:
        raise InputError(f"frames have different sizes {sorted(sizes)}; all frames of a video must share one "
                         "resolution")
    if priors is not None and len(priors) != len(frames):
        raise InputError(f"got {len(priors)} depth priors for {len(frames)} frames; give one per frame")
    h0, w0 = frames[0].shape[:2]
    geometry = compute_view_geometry(h0, w0, size, crop=crop, square_ok=square_ok)
    h, w = geometry.output_hw
    n = len(frames)
    rgb = torch.empty((n, h, w, 3), dtype=torch.uint8)
    prior_pts3d = None if priors is None else torch.empty((n, h, w, 3), dtype=torch.float32)
    repaired = None if priors is None else torch.zeros(n, dtype=torch.int64)
    disable = None if progress is None else not progress
    for k in tqdm(range(n), desc="views", unit="frame", disable=disable, leave=False):
        rgb[k] = torch.from_numpy(_resize_image(frames[k], geometry))
        if priors is not None:
            view, n_fixed = prior_to_view(priors[k], geometry, max_invalid_fraction=max_invalid_fraction,
                                          what=f"depth prior of frame {k}" + (f" ({names[k]})" if names else ""),
                                          prior_input=prior_input, prior_resize=prior_resize, size=size,
                                          square_ok=square_ok)
            prior_pts3d[k] = torch.from_numpy(view)
            repaired[k] = n_fixed
    true_shape = torch.tensor([[h, w]], dtype=torch.int32).repeat(n, 1)
    return Views(rgb=rgb, true_shape=true_shape, prior_pts3d=prior_pts3d, prior_repaired=repaired,
                 geometry=geometry)

"""The input's original resolution: how network pixels map back to the original frames.

Preprocessing resizes each frame (possibly anisotropically) and crops it to a multiple of 16.
Both steps are an axis-aligned affine map between *continuous* image coordinates, where pixel
index ``i`` covers ``[i, i + 1)`` and its centre is ``i + 0.5``:

    x_orig = scale_x * x_net + offset_x,    y_orig = scale_y * y_net + offset_y

That continuous convention is COLMAP's / OpenCV resize's. Our intrinsics use the integer pixel
grid (a pixel's index is its coordinate, principal point ``W/2``), so
``u = x - 0.5`` converts between them (:meth:`OriginalResolution.intrinsics`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from align3r.geometry import map_intrinsics


@dataclass(frozen=True)
class OriginalResolution:
    """Mapping from network resolution (H, W) to the original frames (H0, W0).

    - ``size``: (H0, W0) of the original frames, pixels.
    - ``scale``: (sx, sy), original pixels per network pixel.
    - ``offset``: (ox, oy), original coordinate of the network image's top-left corner.
    - ``frames``: optional (N, H0, W0, 3) uint8 original RGB frames (used for the COLMAP model,
      so splatting / NeRF tools train on full-resolution images). Not saved by the writer.
    - ``depth``: optional (N, H0, W0) float32 depth at original resolution computed by the caller
      (e.g. a refined depth); when absent the writer resamples the network depth bilinearly.
    """

    size: tuple[int, int]
    scale: tuple[float, float]
    offset: tuple[float, float] = (0.0, 0.0)
    frames: np.ndarray | None = None
    depth: np.ndarray | None = None

    @classmethod
    def from_resize_crop(cls, original_size: tuple[int, int], resized_size: tuple[int, int],
                         crop_box: tuple[int, int, int, int] | None = None, **kwargs) -> OriginalResolution:
        """Frames resized from ``original_size`` (H0, W0) to ``resized_size`` (Hr, Wr), then
        cropped to ``crop_box`` = (left, top, right, bottom) in resized pixels (None: no crop)."""
        (h0, w0), (hr, wr) = original_size, resized_size
        sx, sy = w0 / wr, h0 / hr
        left, top = (crop_box[0], crop_box[1]) if crop_box is not None else (0, 0)
        return cls(size=(int(h0), int(w0)), scale=(sx, sy), offset=(left * sx, top * sy), **kwargs)

    @classmethod
    def from_view_geometry(cls, geometry, **kwargs) -> OriginalResolution:
        """From ``align3r.io.ViewGeometry`` (its ``original_hw``, and ``scale_xy`` / ``offset_xy``
        of the inverse map ``x_net = scale_xy * x_orig + offset_xy``)."""
        (sx, sy), (bx, by) = geometry.scale_xy, geometry.offset_xy
        h0, w0 = geometry.original_hw
        return cls(size=(int(h0), int(w0)), scale=(1 / sx, 1 / sy), offset=(-bx / sx, -by / sy), **kwargs)

    def intrinsics(self, intrinsics: np.ndarray) -> np.ndarray:
        """Network-resolution K (..., 3, 3) -> the same cameras' K at original resolution.

        Both in our integer-grid convention (u = fx X/Z + cx with u a pixel index).
        """
        k = torch.as_tensor(np.asarray(intrinsics, dtype=np.float64))
        return map_intrinsics(k, self.scale, self.offset).numpy()

    def to_json(self) -> dict:
        """The mapping (without frames / depth) for the manifest."""
        return {"size_hw": list(self.size), "scale_xy": list(self.scale), "offset_xy": list(self.offset),
                "convention": "x_orig = scale_x * x_net + offset_x in continuous pixel coordinates "
                              "(pixel i spans [i, i+1))"}

    @classmethod
    def from_json(cls, data: dict) -> OriginalResolution:
        return cls(size=tuple(data["size_hw"]), scale=tuple(data["scale_xy"]), offset=tuple(data["offset_xy"]))

    def resample_depth(self, depth: np.ndarray) -> np.ndarray:
        """Bilinearly resample network depth (N, H, W) to (N, H0, W0) float32.

        Original pixels the network image does not cover (cropped away) are NaN. Invalid network
        depth (NaN) stays NaN where it contributes.
        """
        n, h, w = depth.shape
        h0, w0 = self.size
        (sx, sy), (ox, oy) = self.scale, self.offset
        # Continuous network coordinates of every original pixel centre.
        x_net = (np.arange(w0) + 0.5 - ox) / sx
        y_net = (np.arange(h0) + 0.5 - oy) / sy
        gx = torch.from_numpy(2 * x_net / w - 1).float()  # grid_sample, align_corners=False
        gy = torch.from_numpy(2 * y_net / h - 1).float()
        grid = torch.stack(torch.meshgrid(gx, gy, indexing="xy"), dim=-1)  # (H0, W0, 2)
        outside = torch.from_numpy(((x_net < 0) | (x_net > w))[None, :] | ((y_net < 0) | (y_net > h))[:, None])
        out = np.empty((n, h0, w0), np.float32)
        chunk = max(1, 16_000_000 // max(1, h0 * w0))  # bound temporary memory on long videos
        for start in range(0, n, chunk):
            src = torch.from_numpy(np.ascontiguousarray(depth[start:start + chunk], dtype=np.float32))
            res = F.grid_sample(src[:, None], grid.expand(src.shape[0], -1, -1, -1), mode="bilinear",
                                padding_mode="border", align_corners=False)[:, 0]
            res[:, outside] = float("nan")
            out[start:start + chunk] = res.numpy()
        return out

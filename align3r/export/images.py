"""Per-frame images: 16-bit depth PNGs, colourised previews, confidence and mask PNGs.

All encoders are pure (array in, PNG bytes out) so the writer decides where and how atomically
the bytes land. Ranges that make previews comparable across frames (depth colour range, 16-bit
scale) are chosen once per sequence and recorded in the manifest.
"""

from __future__ import annotations

import cv2
import numpy as np

UINT16_MAX = 65535
DEPTH_COLORMAP = "inferno"
# OpenCV ships matplotlib's perceptual colormaps (same 256-entry tables, within 1/255), so the
# core writer needs no plotting library.
_CV_COLORMAPS = {"inferno": cv2.COLORMAP_INFERNO, "viridis": cv2.COLORMAP_VIRIDIS, "turbo": cv2.COLORMAP_TURBO,
                 "magma": cv2.COLORMAP_MAGMA, "plasma": cv2.COLORMAP_PLASMA}


def apply_colormap(values: np.ndarray, cmap: str) -> np.ndarray:
    """(...,) values in [0, 1] -> (..., 3) uint8 RGB through a perceptual colormap."""
    levels = np.rint(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)
    flat = levels.reshape(1, -1)
    rgb = cv2.applyColorMap(flat, _CV_COLORMAPS[cmap])[0, :, ::-1]
    return rgb.reshape(*values.shape, 3).copy()


# ------------------------------------------------------------------------------------- PNG I/O
def encode_png(image: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) uint8/uint16 or (H, W, 3) uint8 RGB image."""
    if image.ndim == 3:
        image = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", image)
    if not ok:
        raise ValueError(f"PNG encoding failed for an array of shape {image.shape}, dtype {image.dtype}")
    return buf.tobytes()


def read_png(path) -> np.ndarray:
    """Read a PNG written by :func:`encode_png`: (H, W) uint8/uint16 or (H, W, 3) RGB uint8."""
    with open(path, "rb") as f:
        return read_png_bytes(f.read())


def read_png_bytes(data: bytes) -> np.ndarray:
    """Decode PNG bytes like :func:`read_png`."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ValueError("not a readable PNG")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if image.ndim == 3 else image


# ------------------------------------------------------------------------------ 16-bit depth
def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Bool mask of usable depth values (finite and > 0)."""
    return np.isfinite(depth) & (depth > 0)


def depth_png_scale(depth: np.ndarray) -> float:
    """Sequence-wide factor for 16-bit depth PNGs: ``png = round(depth * scale)``.

    Chosen so the largest valid depth of the whole sequence maps to 65535: no value is clipped
    and the resolution is ``max_depth / 65535``. 1.0 if nothing is valid.

    Args:
        depth: (N, H, W) or any shape, reconstruction units.
    """
    valid = valid_depth(depth)
    if not valid.any():
        return 1.0
    return float(UINT16_MAX / float(depth[valid].max()))


def encode_depth_png16(depth: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) float depth -> (H, W) uint16 with ``depth ~= png / scale``; 0 marks invalid.

    Saturates at 65535 instead of wrapping (the official code's uint8 cast overflows), and a
    tiny positive depth becomes 1, never 0, so it is not mistaken for "invalid".
    """
    valid = valid_depth(depth)
    scaled = np.where(valid, depth, 0.0).astype(np.float64) * scale
    out = np.clip(np.rint(scaled), 1, UINT16_MAX).astype(np.uint16)
    out[~valid] = 0
    return out


def decode_depth_png16(png: np.ndarray, scale: float) -> np.ndarray:
    """(H, W) uint16 -> float32 depth; invalid (0) pixels become NaN."""
    depth = png.astype(np.float32) / np.float32(scale)
    depth[png == 0] = np.nan
    return depth


# ---------------------------------------------------------------------------------- previews
def inverse_depth_range(depth: np.ndarray, low_pct: float = 2.0, high_pct: float = 98.0) -> tuple[float, float]:
    """Robust (low, high) inverse-depth range over a whole sequence for the colour previews.

    Percentiles of a strided sample keep this cheap for long videos. (0, 1) if nothing is valid.
    """
    flat = depth.reshape(-1)
    step = max(1, flat.size // 2_000_000)
    sample = flat[::step]
    sample = sample[valid_depth(sample)]
    if sample.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(1.0 / sample, [low_pct, high_pct])
    if not hi > lo:
        hi = lo + max(abs(lo) * 1e-3, 1e-12)
    return float(lo), float(hi)


def colorize_depth(depth: np.ndarray, inv_range: tuple[float, float], cmap: str = DEPTH_COLORMAP) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) uint8 RGB: inverse depth through a perceptual colormap.

    Near is bright, far is dark; the range is the sequence's, so colours mean the same depth in
    every frame. Invalid pixels are black.
    """
    lo, hi = inv_range
    valid = valid_depth(depth)
    inv = np.divide(1.0, depth, out=np.zeros(depth.shape, np.float64), where=valid)
    rgb = apply_colormap((inv - lo) / (hi - lo), cmap)
    rgb[~valid] = 0
    return rgb


def log_confidence_range(conf: np.ndarray, high_pct: float = 99.0) -> tuple[float, float]:
    """(0, p99 of log conf) over the sequence: raw conf is ``1 + exp(c)`` > 1, unbounded."""
    flat = conf.reshape(-1)
    sample = flat[:: max(1, flat.size // 2_000_000)]
    sample = sample[np.isfinite(sample) & (sample > 0)]
    hi = float(np.percentile(np.log(sample), high_pct)) if sample.size else 1.0
    return 0.0, hi if hi > 0 else 1.0


def confidence_preview(conf: np.ndarray, log_range: tuple[float, float]) -> np.ndarray:
    """(H, W) raw confidence -> (H, W) uint8 greyscale of log confidence (white = confident)."""
    lo, hi = log_range
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (np.log(conf.astype(np.float64)) - lo) / (hi - lo)
    return np.rint(255 * np.clip(np.nan_to_num(t, nan=0.0), 0, 1)).astype(np.uint8)


def mask_png(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool -> (H, W) uint8, 255 on dynamic pixels."""
    return mask.astype(np.uint8) * 255


def mask_overlay(rgb: np.ndarray, mask: np.ndarray, color=(255, 40, 40), alpha: float = 0.6) -> np.ndarray:
    """RGB frame darkened, with dynamic pixels tinted: (H, W, 3) uint8."""
    out = rgb.astype(np.float32) * 0.45
    tint = (1 - alpha) * rgb.astype(np.float32) + alpha * np.asarray(color, np.float32)
    out[mask] = tint[mask]
    return np.rint(out).astype(np.uint8)

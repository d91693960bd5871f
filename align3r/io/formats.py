"""Readers and writers for the on-disk formats of the evaluation benchmarks.

- MPI Sintel ``.dpt`` depth, ``.cam`` cameras and ``.flo`` optical flow: a float32 tag
  ``202021.25`` followed by little-endian binary payloads.
- PFM (``Pf`` one channel / ``PF`` three channels): text header, float32 rows stored **bottom row
  first**; a negative scale line means little-endian data, a positive one big-endian.
- 16-bit PNG depth (Bonn, TUM: value / 5000 = metres; 7-Scenes: value / 1000; PointOdyssey:
  value / 65535 * 1000). 0 means "no reading".

Every reader checks what it reads and raises :class:`align3r.errors.InputError` naming the file
and what is wrong with it. Arrays are returned as ``(H, W)`` (or ``(H, W, C)``) row-major, first
row = top of the image.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from align3r.errors import InputError

SINTEL_TAG = 202021.25
"""The float32 magic number that opens Sintel ``.dpt``, ``.cam`` and ``.flo`` files."""

_MAX_PIXELS = 100_000_000


def _read_bytes(path: str | Path, what: str) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{what} file not found: {path}. Check the dataset root and its layout "
                         "(docs/reproducing.md).")
    return path.read_bytes()


def _check_sintel_tag(data: bytes, path: str | Path, what: str) -> None:
    if len(data) < 4 or np.frombuffer(data[:4], dtype="<f4")[0] != np.float32(SINTEL_TAG):
        raise InputError(f"{path} is not a Sintel {what} file (missing the {SINTEL_TAG} tag); "
                         "re-download or re-extract it.")


def _read_tagged_grid(path: str | Path, kind: str, what: str, *, channels: int, advice: str = "") -> np.ndarray:
    """(H, W, channels) float32 of a Sintel-tagged file: tag, int32 width and height, then float32
    values row by row (``.dpt`` and ``.flo`` share this layout). ``kind`` / ``what`` name the file
    in errors; ``advice`` ends the message of a file without its size header."""
    data = _read_bytes(path, kind)
    _check_sintel_tag(data, path, what)
    if len(data) < 12:
        raise InputError(f"{path} is truncated (no size header){advice}.")
    width, height = (int(v) for v in np.frombuffer(data[4:12], dtype="<i4"))
    if width <= 0 or height <= 0 or width * height > _MAX_PIXELS:
        raise InputError(f"{path} has an invalid size {width}x{height}; the file is corrupt.")
    payload = np.frombuffer(data[12:], dtype="<f4")
    if payload.size != channels * width * height:
        expected = f"{width}x{height}" if channels == 1 else f"{channels}x{width}x{height}"
        raise InputError(f"{path} holds {payload.size} {what.split()[0]} values, expected {expected}; "
                         "the file is truncated or corrupt.")
    return payload.reshape(height, width, channels).astype(np.float32)


# --------------------------------------------------------------------------------------------
# Sintel .dpt depth


def read_dpt(path: str | Path) -> np.ndarray:
    """Read a Sintel ``.dpt`` depth map.

    Returns:
        (H, W) float32 depth in the scene's units (metres for the benchmark).
    """
    return _read_tagged_grid(path, "Sintel depth (.dpt)", "depth (.dpt)", channels=1,
                             advice="; re-extract the Sintel depth archive")[..., 0]


def write_dpt(path: str | Path, depth: np.ndarray) -> None:
    """Write an (H, W) depth map as a Sintel ``.dpt`` file (float32, little-endian)."""
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {depth.shape}")
    height, width = depth.shape
    with open(path, "wb") as f:
        f.write(np.array([SINTEL_TAG], dtype="<f4").tobytes())
        f.write(np.array([width, height], dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(depth, dtype="<f4").tobytes())


# --------------------------------------------------------------------------------------------
# Sintel .cam cameras


def read_sintel_cam(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read a Sintel ``.cam`` file.

    Returns:
        ``(K, world_to_cam)``: (3, 3) float64 intrinsics in pixels and the (3, 4) float64
        world-to-camera extrinsics ``[R | t]``, such that ``x ~ K [R | t] X``.
    """
    data = _read_bytes(path, "Sintel camera (.cam)")
    _check_sintel_tag(data, path, "camera (.cam)")
    values = np.frombuffer(data[4:], dtype="<f8")
    if values.size < 21:
        raise InputError(f"{path} holds {values.size} float64 values, expected 21 (3x3 K + 3x4 "
                         "extrinsics); the file is truncated.")
    return values[:9].reshape(3, 3).copy(), values[9:21].reshape(3, 4).copy()


def write_sintel_cam(path: str | Path, intrinsics: np.ndarray, world_to_cam: np.ndarray) -> None:
    """Write a Sintel ``.cam`` file from (3, 3) K and (3, 4) or (4, 4) world-to-camera."""
    k = np.asarray(intrinsics, dtype="<f8")
    ext = np.asarray(world_to_cam, dtype="<f8")[:3, :4]
    if k.shape != (3, 3) or ext.shape != (3, 4):
        raise ValueError(f"expected K (3, 3) and extrinsics (3, 4), got {k.shape} and {ext.shape}")
    with open(path, "wb") as f:
        f.write(np.array([SINTEL_TAG], dtype="<f4").tobytes())
        f.write(k.tobytes())
        f.write(ext.tobytes())


# --------------------------------------------------------------------------------------------
# Sintel / Middlebury .flo optical flow


def read_flo(path: str | Path) -> np.ndarray:
    """Read a ``.flo`` optical-flow file.

    Returns:
        (H, W, 2) float32 flow ``(du, dv)`` in pixels (column, row displacement).
    """
    return _read_tagged_grid(path, "optical flow (.flo)", "flow (.flo)", channels=2)


def write_flo(path: str | Path, flow: np.ndarray) -> None:
    """Write an (H, W, 2) flow field as a ``.flo`` file (interleaved u, v; little-endian)."""
    flow = np.asarray(flow)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be (H, W, 2), got {flow.shape}")
    height, width = flow.shape[:2]
    with open(path, "wb") as f:
        f.write(np.array([SINTEL_TAG], dtype="<f4").tobytes())
        f.write(np.array([width, height], dtype="<i4").tobytes())
        f.write(np.ascontiguousarray(flow, dtype="<f4").tobytes())


# --------------------------------------------------------------------------------------------
# PFM

_PFM_SIZE = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")


def read_pfm(path: str | Path) -> np.ndarray:
    """Read a PFM file.

    Returns:
        (H, W) float32 for ``Pf`` files, (H, W, 3) float32 for ``PF`` files, top row first (the
        file stores the bottom row first).
    """
    data = _read_bytes(path, "PFM")
    lines = data.split(b"\n", 3)
    if len(lines) < 4 or lines[0].strip() not in (b"Pf", b"PF"):
        raise InputError(f"{path} is not a PFM file (first line must be 'Pf' or 'PF').")
    channels = 3 if lines[0].strip() == b"PF" else 1
    size = _PFM_SIZE.match(lines[1])
    if size is None:
        raise InputError(f"{path} has a malformed PFM size line {lines[1][:40]!r}.")
    width, height = int(size.group(1)), int(size.group(2))
    try:
        scale = float(lines[2].strip())
    except ValueError:
        raise InputError(f"{path} has a malformed PFM scale line {lines[2][:40]!r}.") from None
    if scale == 0:
        raise InputError(f"{path} has a PFM scale of 0 (its sign must give the byte order).")
    dtype = "<f4" if scale < 0 else ">f4"
    count = width * height * channels
    payload = np.frombuffer(lines[3], dtype=dtype, count=-1)
    if payload.size < count:
        raise InputError(f"{path} holds {payload.size} values, expected {count} "
                         f"({width}x{height}x{channels}); the file is truncated.")
    shape = (height, width, 3) if channels == 3 else (height, width)
    return np.flipud(payload[:count].reshape(shape)).astype(np.float32)


def write_pfm(path: str | Path, array: np.ndarray, little_endian: bool = True) -> None:
    """Write an (H, W) or (H, W, 3) float array as PFM (bottom row first, scale -1 / 1)."""
    array = np.asarray(array)
    if array.ndim == 2:
        kind = b"Pf"
    elif array.ndim == 3 and array.shape[2] == 3:
        kind = b"PF"
    else:
        raise ValueError(f"PFM holds (H, W) or (H, W, 3) arrays, got {array.shape}")
    height, width = array.shape[:2]
    dtype = "<f4" if little_endian else ">f4"
    with open(path, "wb") as f:
        f.write(kind + b"\n" + f"{width} {height}\n".encode() + (b"-1\n" if little_endian else b"1\n"))
        f.write(np.ascontiguousarray(np.flipud(array), dtype=dtype).tobytes())


# --------------------------------------------------------------------------------------------
# 16-bit PNG depth


def read_png_depth(path: str | Path, scale: float) -> np.ndarray:
    """Read a 16-bit PNG depth map.

    Args:
        scale: stored units per metre (5000 for TUM/Bonn, 1000 for 7-Scenes).
    Returns:
        (H, W) float64 depth in metres (float64 as the official Bonn/TUM reader); 0 where the
        sensor gave no reading.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"depth PNG not found: {path}. Check the dataset root and its layout "
                         "(docs/reproducing.md).")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"cannot decode {path} as an image; re-download it.")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise InputError(f"{path} is {raw.dtype} with shape {raw.shape}, expected a single-channel "
                         "16-bit PNG depth map (an 8-bit file is a preview, not depth).")
    return raw.astype(np.float64) / scale


def write_png_depth(path: str | Path, depth: np.ndarray, scale: float) -> None:
    """Write (H, W) metres as a 16-bit PNG (value = round(depth * scale); <= 0 or NaN -> 0)."""
    depth = np.asarray(depth, dtype=np.float64)
    if depth.ndim != 2:
        raise ValueError(f"depth must be (H, W), got {depth.shape}")
    stored = np.where(np.isfinite(depth) & (depth > 0), np.rint(depth * scale), 0)
    if stored.max(initial=0) > np.iinfo(np.uint16).max:
        raise ValueError(f"depth up to {depth.max():.3f} m does not fit a uint16 PNG at scale {scale}")
    if not cv2.imwrite(str(path), stored.astype(np.uint16)):
        raise OSError(f"could not write {path}")


def read_mask_png(path: str | Path, threshold: float = 0.99) -> np.ndarray:
    """Read an 8-bit mask PNG as bool (H, W): ``value / 255 > threshold``.

    The official Sintel dynamic labels are 0/255 and are read with threshold 0.99.
    """
    path = Path(path)
    raw = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if raw is None:
        raise InputError(f"cannot read the mask image {path}.")
    return raw.astype(np.float32) / 255.0 > threshold

"""The preview video: RGB | colourised depth | dynamic mask, side by side, encoded with PyAV."""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Preferred encoders, best first; the first one present in the installed FFmpeg build is used.
ENCODERS = ("libx264", "h264", "libopenh264", "mpeg4")


def pick_encoder(candidates: Iterable[str] = ENCODERS) -> str:
    """Name of the first encoder in ``candidates`` that PyAV's FFmpeg build can encode with."""
    for name in candidates:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # unknown codec / no encoder: FFmpeg raises various errors
            continue
        return name
    raise RuntimeError(f"none of the video encoders {list(candidates)} exists in this PyAV build")


def fps_from_timestamps(timestamps: np.ndarray, default: float = 10.0) -> float:
    """Frame rate from the median frame interval, or ``default`` without usable timestamps."""
    ts = np.asarray(timestamps, np.float64)
    if ts.size < 2:
        return default
    step = float(np.median(np.diff(ts)))
    return 1.0 / step if np.isfinite(step) and 1e-3 < step < 1e3 else default


def side_by_side(*panels: np.ndarray) -> np.ndarray:
    """Concatenate (H, W_i, 3) uint8 panels horizontally, padded to even width and height
    (4:2:0 chroma subsampling needs both even)."""
    frame = np.concatenate(panels, axis=1)
    h, w = frame.shape[:2]
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_video(path: Path, frames: Iterable[np.ndarray], fps: float, *, encoder: str | None = None,
                crf: int = 20) -> str:
    """Encode (H, W, 3) uint8 RGB frames (even H, W) to an mp4 file; returns the encoder used."""
    encoder = encoder or pick_encoder()
    rate = Fraction(fps).limit_denominator(1001)  # 29.97 -> 30000/1001
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = None
        for frame in frames:
            if stream is None:
                # A preview, not an archive: x264's "veryfast" preset is ~3x faster than its default.
                options = {"crf": str(crf), "preset": "veryfast"} if encoder in ("libx264", "h264") else {}
                stream = container.add_stream(encoder, rate=rate, options=options)
                stream.height, stream.width = frame.shape[:2]
                stream.pix_fmt = "yuv420p"
                if encoder == "mpeg4":
                    stream.bit_rate = 8_000_000
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                container.mux(packet)
    return encoder


"""Streaming video decoding with PyAV (FFmpeg): one frame in memory at a time.

Frames are numbered by their presentation time, ``index = round(t · average_rate)`` with t the
time since the stream start, which is exact for constant-frame-rate videos, lets us seek, and is
the nominal frame number for variable-rate ones (kept strictly increasing). Only frames the caller
keeps are converted to RGB; the others are decoded (codecs need them) and dropped.
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from align3r.errors import InputError

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".webm", ".mkv", ".m4v")
_TRUNCATED_FRACTION = 0.9  # fewer decodable frames than this share of the declared count → error
_ESTIMATE_SLACK = 0.02  # shortfall below an estimated count (duration × rate) that is not warned about
_FIX = ("re-download it, or re-encode it (e.g. `ffmpeg -i in.mp4 -c:v libx264 out.mp4`), or extract "
        "its frames to a folder")


@dataclass(frozen=True)
class VideoInfo:
    """What a video header says.

    - ``num_frames``: declared frame count, or an estimate from duration × rate (None if unknown).
    - ``fps``: average frame rate (None if unknown). ``duration``: seconds (None if unknown).
    - ``height``, ``width``: frame size as displayed (after the rotation below).
    - ``rotation``: counter-clockwise degrees the frames are rotated for display (0, 90, 180, 270).
    - ``codec``: decoder name.
    """

    path: Path
    num_frames: int | None
    fps: float | None
    duration: float | None
    height: int
    width: int
    rotation: int
    codec: str


@dataclass
class DecodedFrame:
    """A decoded frame not yet converted to RGB (``rgb()`` does that)."""

    index: int
    timestamp: float
    _frame: av.VideoFrame
    _rotation: int

    def rgb(self) -> np.ndarray:
        """(H, W, 3) uint8 RGB, upright."""
        image = self._frame.to_ndarray(format="rgb24", src_color_range=self._frame.color_range)
        return upright(image, self._rotation)


def upright(image: np.ndarray, rotation: int) -> np.ndarray:
    """Rotate a decoded (H, W, C) frame counter-clockwise by ``rotation`` degrees (a multiple of
    90), as players do with the container's display matrix."""
    k = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(image, k)) if k else image


def _open(path: Path):
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except av.error.FFmpegError as exc:
        size = path.stat().st_size if path.exists() else 0
        what = "is empty (0 bytes)" if size == 0 else f"cannot be read as a video ({exc.strerror or exc})"
        raise InputError(f"video {path} {what}; it is corrupt, truncated or not a video: {_FIX}") from exc
    if not container.streams.video:
        container.close()
        raise InputError(f"{path} has no video stream (audio only or another kind of file); pass a video "
                         "file or a folder of images")
    return container


def check_video_readable(path: Path) -> None:
    """Open the container and close it: raises the same ``InputError`` as decoding would for an
    empty, non-video or unreadable file."""
    _open(path).close()


def _duration(container, stream) -> float | None:
    """Seconds of the video stream: its own duration, else its ``DURATION`` tag (Matroska / WebM
    write one per stream, ``HH:MM:SS.nnnnnnnnn``), else the container's when the video is its only
    stream (an audio track may outlast the video)."""
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    try:
        hours, minutes, seconds = stream.metadata.get("DURATION", "").split(":")
        return 3600 * int(hours) + 60 * int(minutes) + float(seconds)
    except ValueError:  # no tag, or not in that form
        pass
    if container.duration and len(container.streams) == 1:
        return container.duration / av.time_base
    return None


def _frame_count(container, stream) -> tuple[int | None, bool]:
    """(frame count, whether the header states it exactly). Containers without a count (Matroska,
    WebM) get an estimate from the duration × average rate; None if neither is known."""
    if stream.frames:
        return int(stream.frames), True
    duration, rate = _duration(container, stream), stream.average_rate
    if duration and rate:
        return round(duration * float(rate)), False
    return None, False


def probe_video(path: Path) -> VideoInfo:
    """Read the header (and decode the first frame, for the display rotation)."""
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        duration = _duration(container, stream)
        rotation = 0
        try:
            first = next(container.decode(stream), None)
        except av.error.FFmpegError as exc:
            raise InputError(f"video {path} cannot be decoded ({exc}); {_FIX}") from exc
        if first is None:
            raise InputError(f"video {path} contains no decodable frame; {_FIX}")
        rotation = round((first.rotation or 0) / 90) * 90 % 360
        h, w = first.height, first.width
        if rotation in (90, 270):
            h, w = w, h
        return VideoInfo(path, _frame_count(container, stream)[0], float(rate) if rate else None, duration, h, w,
                         rotation, stream.codec_context.name)
    finally:
        container.close()


class _Clock:
    """Frame numbers and times from presentation timestamps (frame counting as a fallback)."""

    def __init__(self, stream):
        self.rate = stream.average_rate or stream.guessed_rate
        self.time_base, self.origin = stream.time_base, stream.start_time
        self.from_pts = bool(self.rate) and self.time_base is not None and self.origin is not None

    def index_and_time(self, frame, previous: int) -> tuple[int, float]:
        if self.from_pts and frame.pts is not None:
            offset = (frame.pts - self.origin) * self.time_base
            return max(round(offset * self.rate), previous + 1), float(offset)
        index = previous + 1
        return index, (float(index / self.rate) if self.rate else float("nan"))

    def seek_target(self, start: int) -> int:
        """Stream timestamp half a frame before source frame ``start``."""
        seconds = (Fraction(start) - Fraction(1, 2)) / Fraction(self.rate)
        return max(self.origin + int(seconds / self.time_base), self.origin)


def _frames_from(container, stream, clock: _Clock, start: int) -> Iterator:
    """Raw decoded frames, after seeking near ``start`` when possible; rewinds when the seek
    overshoots (broken index) or fails (unseekable stream)."""
    if start > 0 and clock.from_pts:
        try:
            container.seek(clock.seek_target(start), stream=stream, backward=True, any_frame=False)
            frames = container.decode(stream)
            first = next(frames, None)
            if first is None or clock.index_and_time(first, -1)[0] <= start:
                return itertools.chain([first] if first is not None else [], frames)
        except av.error.FFmpegError:
            pass
        container.seek(0)  # decode from the beginning instead
    return container.decode(stream)


def iter_video(path: Path, *, start: int = 0, threads: bool = True) -> Iterator[DecodedFrame]:
    """Decode ``path`` lazily from source frame ``start`` on.

    Seeks to the key frame before ``start`` when the stream allows it (then decodes forward), so
    a late start does not decode the whole prefix. Closing the generator closes the file.

    Raises:
        InputError: unreadable/empty/non-video file, decoding error, a resolution change inside
            the stream, or a stream that ends well before its declared length (truncated file).
    """
    container = _open(path)
    stream = container.streams.video[0]
    if threads:
        stream.thread_type = "AUTO"  # frame + slice threads: several times faster on H.264/HEVC
    clock = _Clock(stream)
    declared, exact = _frame_count(container, stream)
    previous, shape, rotation = -1, None, 0
    try:
        for frame in _frames_from(container, stream, clock, start):
            index, timestamp = clock.index_and_time(frame, previous)
            if shape is None:
                shape = (frame.height, frame.width)
                rotation = round((frame.rotation or 0) / 90) * 90 % 360
            elif (frame.height, frame.width) != shape:
                raise InputError(f"video {path} changes resolution at frame {index} ({shape[1]}x{shape[0]} -> "
                                 f"{frame.width}x{frame.height}); re-encode it at one size")
            previous = index
            if index >= start:
                yield DecodedFrame(index, timestamp, frame, rotation)
    except av.error.FFmpegError as exc:
        raise InputError(f"video {path} is corrupt: decoding failed after frame {previous} ({exc}); {_FIX}") from exc
    finally:
        container.close()
    if previous < 0 and start == 0:
        raise InputError(f"video {path} contains no decodable frame; {_FIX}")
    if declared and previous >= 0:
        # an estimate from the duration may be a frame or two off (rounding, variable rates)
        slack = 0 if exact else max(2, math.ceil(_ESTIMATE_SLACK * declared))
        if previous + 1 < declared - slack:
            what = "frames its header declares" if exact else "frames its duration implies (an estimate)"
            message = f"video {path} ended after {previous + 1} of the {declared} {what}"
            if previous + 1 < _TRUNCATED_FRACTION * declared:
                raise InputError(f"{message}: the file is truncated or corrupt; {_FIX}")
            log.warning("%s (some frames could not be decoded)", message)

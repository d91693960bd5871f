"""``align3r bench decode``: frames/s reading videos and image folders, and streaming memory.

Targets: the DAVIS lady-running mp4 and its JPEG folder (shared sample data), and a synthetic
1080p H.264 video written to a temporary folder, read through ``iter_frames`` while recording the
peak resident memory (flat when streaming) and through ``read_frames`` with a stride.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from align3r.bench._common import machine_description, peak_rss_gib, positive_int, time_call
from align3r.errors import InputError

HELP = "frames/s decoding videos and image folders; streaming memory on a long 1080p video"
_SHARED = Path(os.environ.get("ALIGN3R_SHARED", Path(__file__).resolve().parents[2].parent / "shared"))
DEFAULT_DATA = _SHARED / "data" / "davis_lady_running" / "demo_data"


def _texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(2H, 2W, 3) uint8 smooth random texture (noise at 1/8 resolution, bicubic upsampled)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(height // 4, 2), max(width // 4, 2), 3), dtype=np.uint8)
    return cv2.resize(small, (2 * width, 2 * height), interpolation=cv2.INTER_CUBIC)


def synthetic_frame(index: int, height: int, width: int, texture: np.ndarray | None = None) -> np.ndarray:
    """(H, W, 3) uint8 test frame: a textured background panning with ``index`` (so a codec has
    real work), a bright square moving faster, and the frame number written as 8 binary blocks
    along the top, so frames are distinguishable."""
    if texture is None:
        texture = _texture(height, width)
    dx, dy = (3 * index) % width, index % height
    image = texture[dy:dy + height, dx:dx + width].copy()
    side = max(height // 6, 2)
    x0 = (index * max(width // 40, 1)) % max(width - side, 1)
    image[height // 2 - side // 2: height // 2 + side // 2, x0:x0 + side] = 255
    block = max(width // 16, 1)
    for bit in range(8):
        image[: max(height // 10, 1), bit * block:(bit + 1) * block] = 255 if (index >> bit) & 1 else 0
    return image


def write_synthetic_video(path: Path, num_frames: int, height: int, width: int, *, fps: int = 30,
                          gop: int = 30, codec: str = "libx264", rotation: int = 0,
                          bit_rate: int | None = None) -> Path:
    """Encode ``num_frames`` synthetic frames with PyAV (one frame in memory at a time).

    ``gop``: key-frame interval (seeking granularity). ``rotation``: display rotation written to the
    container (counter-clockwise degrees, as players apply it). ``bit_rate``: bits/s for codecs
    without ``crf`` (e.g. mpeg4, whose default is coarse).
    """
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = gop
        if codec == "libx264":
            stream.options = {"preset": "ultrafast", "crf": "18"}
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        if rotation:
            stream.set_display_rotation(rotation)
        texture = _texture(height, width)
        for index in range(num_frames):
            frame = av.VideoFrame.from_ndarray(synthetic_frame(index, height, width, texture), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _nonneg_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of seconds") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must be 0 or more")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder holding lady-running.mp4 and/or lady-running/ (a video and its frames)")
    parser.add_argument("--long-seconds", type=_nonneg_float, default=60.0,
                        help="length of the synthetic 1080p video in seconds (0 skips it)")
    parser.add_argument("--repeat", type=positive_int, default=5,
                        help="timed runs per small target (median, after one warm-up)")


def _measure(rows: list, label: str, reader: str, fn) -> None:
    """Append ``(label, reader, frames, seconds)``, or an error row: one failing reader does not
    lose the rows measured before it."""
    try:
        frames, seconds = fn()
    except Exception as exc:  # reported in the table, and by the exit status
        rows.append((label, reader, None, f"{type(exc).__name__}: {exc}"))
        return
    rows.append((label, reader, frames, seconds))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def run(args: argparse.Namespace) -> int:
    from align3r.io import iter_frames, probe, read_frames

    if not args.data.is_dir():
        raise InputError(f"--data {args.data}: not a folder (it should hold lady-running.mp4 and/or lady-running/)")
    rows = []
    video, folder = args.data / "lady-running.mp4", args.data / "lady-running"
    default = args.data.resolve() == DEFAULT_DATA.resolve()
    for label, source in (("lady-running.mp4 (MPEG-4 Part 2, 854x480)", video),
                          ("lady-running/ (65 JPEG, 854x480)", folder)):
        if not source.exists():
            print(f"skipping {source}: not found")
            continue
        try:
            info = probe(source)
        except Exception as exc:
            rows.append((source.name, "probe", None, f"{type(exc).__name__}: {exc}"))
            continue
        n = info.num_frames
        if not default:  # the labels above describe the shared clip only
            height, width = info.image_size
            label = f"{source.name}{'/' if source.is_dir() else ''} ({n} frames, {width}x{height})"
        _measure(rows, label, "read_frames", lambda s=source, n=n: (
            n, time_call(lambda: read_frames(s, progress=False), repeat=args.repeat)))
        if source == video:
            _measure(rows, label, "iter_frames, 1 decoder thread", lambda s=source, n=n: (
                n, time_call(lambda: sum(1 for _ in iter_frames(s, threads=False)), repeat=args.repeat)))

    long_rss = None
    count = 0
    if args.long_seconds > 0:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "synthetic_1080p.mp4"
            num = max(1, round(args.long_seconds * 30))
            t0 = time.perf_counter()
            write_synthetic_video(path, num, 1080, 1920, gop=60)
            encode_s = time.perf_counter() - t0
            print(f"wrote {num} synthetic 1920x1080 H.264 frames in {encode_s:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)")
            label = f"synthetic {args.long_seconds:g} s 1920x1080 H.264"
            rss_before = peak_rss_gib()

            def stream():
                nonlocal count
                (count, seconds) = _timed(lambda: sum(1 for _ in iter_frames(path)))
                return count, seconds

            _measure(rows, label, "iter_frames (stream)", stream)
            if count:
                long_rss = (rss_before, peak_rss_gib())
            _measure(rows, label, "read_frames stride 30", lambda: (
                lambda seq, s: (len(seq), s))(*_timed(lambda: read_frames(path, stride=30, progress=False))))
            start = max(num - 60, 0)
            reader = f"read_frames start {start} (seek)" if start else "read_frames first 30 (no seek)"
            _measure(rows, label, reader, lambda: (
                lambda seq, s: (len(seq), s))(*_timed(lambda: read_frames(path, start=start, max_frames=30,
                                                                         progress=False))))

    if not rows:
        raise InputError(f"nothing to measure: {args.data} holds neither lady-running.mp4 nor lady-running/, "
                         "and --long-seconds is 0")
    print(f"\nmachine: {machine_description('cpu')}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})\n")
    print("| source | reader | frames | seconds | frames/s |")
    print("|---|---|---:|---:|---:|")
    failed = 0
    for label, reader, n, seconds in rows:
        if n is None:
            failed += 1
            print(f"| {label} | {reader} | error | {seconds} | |")
        else:
            print(f"| {label} | {reader} | {n} | {seconds:.3f} | {n / seconds:.1f} |")
    if long_rss is not None:
        print(f"\npeak RSS before streaming the long video: {long_rss[0]:.2f} GiB, after: {long_rss[1]:.2f} GiB "
              f"(its {count} RGB frames would take {count * 1080 * 1920 * 3 / 2**30:.1f} GiB)")
    if failed:
        print(f"\nalign3r bench decode: {failed} row(s) failed", file=sys.stderr)
        return 1
    return 0

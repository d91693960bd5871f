"""``align3r bench decode``: frames/s reading videos and image folders, and streaming memory.

Targets: the DAVIS lady-running mp4 and its JPEG folder (shared sample data), and a synthetic
1080p H.264 video written to a temporary folder, read through ``iter_frames`` while recording the
peak resident memory (flat when streaming) and through ``read_frames`` with a stride.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np

from align3r.bench._common import machine_description, peak_rss_gib, time_call

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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA,
                        help="folder holding lady-running.mp4 and lady-running/ (default: shared data)")
    parser.add_argument("--long-seconds", type=float, default=60.0,
                        help="length of the synthetic 1080p video (default 60 s; 0 skips it)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per small target (median, after one warm-up)")


def run(args: argparse.Namespace) -> int:
    from align3r.io import iter_frames, probe, read_frames

    rows = []
    video, folder = args.data / "lady-running.mp4", args.data / "lady-running"
    for label, source in (("lady-running.mp4 (MPEG-4 Part 2, 854x480)", video),
                          ("lady-running/ (65 JPEG, 854x480)", folder)):
        if not source.exists():
            print(f"skipping {source}: not found")
            continue
        n = probe(source).num_frames
        rows.append((label, "read_frames", n, time_call(lambda s=source: read_frames(s, progress=False),
                                                        repeat=args.repeat)))
        if source == video:
            rows.append((label, "iter_frames, 1 decoder thread", n,
                         time_call(lambda s=source: sum(1 for _ in iter_frames(s, threads=False)),
                                   repeat=args.repeat)))

    long_rss = None
    if args.long_seconds > 0:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "synthetic_1080p.mp4"
            num = round(args.long_seconds * 30)
            t0 = time.perf_counter()
            write_synthetic_video(path, num, 1080, 1920, gop=60)
            encode_s = time.perf_counter() - t0
            print(f"wrote {num} synthetic 1920x1080 H.264 frames in {encode_s:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)")
            rss_before = peak_rss_gib()
            t0 = time.perf_counter()
            count = sum(1 for _ in iter_frames(path))
            seconds = time.perf_counter() - t0
            long_rss = (rss_before, peak_rss_gib())
            rows.append((f"synthetic {args.long_seconds:.0f} s 1920x1080 H.264", "iter_frames (stream)", count, seconds))
            t0 = time.perf_counter()
            seq = read_frames(path, stride=30, progress=False)
            rows.append((f"synthetic {args.long_seconds:.0f} s 1920x1080 H.264", "read_frames stride 30",
                         len(seq), time.perf_counter() - t0))
            t0 = time.perf_counter()
            seq = read_frames(path, start=num - 60, max_frames=30, progress=False)
            rows.append((f"synthetic {args.long_seconds:.0f} s 1920x1080 H.264", f"read_frames start {num - 60} (seek)",
                         len(seq), time.perf_counter() - t0))
            del seq

    print(f"\nmachine: {machine_description('cpu')}, PyAV {av.__version__} (FFmpeg {av.ffmpeg_version_info})\n")
    print("| source | reader | frames | seconds | frames/s |")
    print("|---|---|---:|---:|---:|")
    for label, reader, n, seconds in rows:
        print(f"| {label} | {reader} | {n} | {seconds:.3f} | {n / seconds:.1f} |")
    if long_rss is not None:
        print(f"\npeak RSS before streaming the long video: {long_rss[0]:.2f} GiB, after: {long_rss[1]:.2f} GiB "
              f"(its {count} RGB frames would take {count * 1080 * 1920 * 3 / 2**30:.1f} GiB)")
    return 0

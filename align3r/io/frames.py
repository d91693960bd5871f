"""Frames from a video file or an image folder, sampled by stride / fps / start / count.

``iter_frames`` streams (one decoded frame at a time, whatever the video length);
``read_frames`` collects the sampled frames into a ``FrameSequence``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from align3r.errors import InputError
from align3r.io.folder import check_same_size, is_image_file, list_images, read_image, upright_size
from align3r.io.video import check_video_readable, iter_video, probe_video

DEFAULT_MAX_MEMORY_GIB = 8.0


@dataclass(frozen=True)
class Frame:
    """One decoded frame.

    - ``image``: (H, W, 3) uint8 RGB, upright (EXIF orientation / video rotation applied).
    - ``index``: position in the source (0-based frame number in the video or the sorted folder).
    - ``timestamp``: seconds since the start of the video, or ``index / folder_fps`` for a folder
      with a known rate; None for a folder without one.
    - ``name``: file stem for images, ``frame_%06d`` (source index) for videos.
    - ``focal_px``: focal in pixels from the EXIF 35 mm focal, or None (always None for videos).
    - ``path``: the image file (None for video frames); files kept beside the frames, such as the
      official prior caches, are found from it.
    """

    image: np.ndarray
    index: int
    timestamp: float | None
    name: str
    focal_px: float | None = None
    path: Path | None = None


@dataclass
class FrameSequence:
    """Sampled frames of one source, all of one size.

    - ``images``: N arrays (H, W, 3) uint8 RGB.
    - ``names``: N frame names; ``indices``: (N,) int64 source indices (ascending).
    - ``timestamps``: (N,) float64 seconds, or None (image folder without a frame rate).
    - ``focal_px``: N EXIF-derived focals in pixels (None where absent).
    - ``source``: the video file or folder; ``original_size``: (H, W); ``fps``: the source's
      frame rate (None for a folder without ``folder_fps``).

    Memory: 3·H·W bytes per frame (854×480: 1.2 MB, 65 frames 80 MB; 1920×1080: 6.2 MB, so 1,000
    frames ≈ 6.2 GB). Sample with ``stride``/``fps``/``max_frames``, or stream with ``iter_frames``.
    """

    images: list[np.ndarray]
    names: list[str]
    indices: np.ndarray
    timestamps: np.ndarray | None
    focal_px: list[float | None]
    source: Path
    original_size: tuple[int, int]
    fps: float | None = None

    def __len__(self) -> int:
        return len(self.images)

    @property
    def nbytes(self) -> int:
        return sum(im.nbytes for im in self.images)

    def as_array(self) -> np.ndarray:
        """(N, H, W, 3) uint8 copy of all frames."""
        return np.stack(self.images)


@dataclass(frozen=True)
class SourceInfo:
    """What a source holds before decoding: ``kind`` "video" or "images", ``num_frames`` (None if
    the video header does not say), ``fps`` (None for a folder without ``folder_fps``),
    ``size`` (H, W) upright."""

    path: Path
    kind: str
    num_frames: int | None
    fps: float | None
    size: tuple[int, int]


def _resolve(source) -> tuple[str, Path, list[Path] | None]:
    """("video" | "images", path, image list or None)."""
    if isinstance(source, (list, tuple)):
        paths = [Path(p) for p in source]
        if not paths:
            raise InputError("the list of image files is empty")
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise InputError(f"image file not found: {missing[0]}" + (f" (and {len(missing) - 1} more)" if
                                                                       len(missing) > 1 else ""))
        return "images", paths[0].parent, paths
    path = Path(source).expanduser()
    if path.is_dir():
        return "images", path, list_images(path)
    if not path.exists():
        raise InputError(f"no such file or folder: {path}")
    if is_image_file(path):
        return "images", path, [path]
    return "video", path, None


def probe(source, *, folder_fps: float | None = None) -> SourceInfo:
    """Frame count, rate and size of a video file, image folder or list of images, without
    decoding it (a video's first frame is decoded for its rotation)."""
    kind, path, images = _resolve(source)
    if kind == "video":
        info = probe_video(path)
        return SourceInfo(path, kind, info.num_frames, info.fps, (info.height, info.width))
    return SourceInfo(path, kind, len(images), folder_fps, upright_size(images[0]))


def check_folder_fps(folder_fps: float | None) -> None:
    """``InputError`` unless ``folder_fps`` (an image folder's frame rate) is positive or None."""
    if folder_fps is not None and not folder_fps > 0:
        raise InputError(f"folder_fps={folder_fps}: expected a positive frame rate (or null)")


def _check_sampling(stride: int, fps: float | None, start: int, max_frames: int | None,
                    min_frames: int) -> None:
    if int(stride) != stride or stride < 1:
        raise InputError(f"stride must be a positive integer, got {stride}")
    if fps is not None and not (fps > 0 and math.isfinite(fps)):
        raise InputError(f"fps must be a positive number, got {fps}")
    if fps is not None and stride != 1:
        raise InputError("give either stride or fps, not both")
    if int(start) != start or start < 0:
        raise InputError(f"start must be a frame index >= 0, got {start}")
    if max_frames is not None and (int(max_frames) != max_frames or max_frames < 1):
        raise InputError(f"max_frames must be a positive integer, got {max_frames}")
    if max_frames is not None and max_frames < min_frames:
        raise InputError(f"max_frames={max_frames} is below the {min_frames} frames needed")


class _Sampler:
    """Keeps source frames from ``start`` on, every ``stride``-th, or the first frame of every
    1/fps interval (timestamp-based, so variable frame rates are handled)."""

    def __init__(self, start: int, stride: int, fps: float | None):
        self.start, self.stride, self.fps = start, stride, fps
        self.origin: float | None = None
        self.last_slot = -1

    def keep(self, index: int, timestamp: float | None) -> bool:
        if index < self.start:
            return False
        if self.fps is None:
            return (index - self.start) % self.stride == 0
        if timestamp is None or math.isnan(timestamp):
            raise InputError("this source has no timestamps, so it cannot be sampled by fps; use stride")
        if self.origin is None:
            self.origin = timestamp
        slot = math.floor((timestamp - self.origin) * self.fps + 1e-6)
        if slot <= self.last_slot:
            return False
        self.last_slot = slot
        return True


def _too_few(path: Path, count: int, min_frames: int, start: int) -> InputError:
    if count == 0:
        return InputError(f"{path}: no frame at or after start={start}; lower start")
    return InputError(f"{path}: only {count} frame(s) selected, at least {min_frames} are needed (one frame "
                      "cannot be aligned); give a longer video/more images, or a smaller stride/fps/start")


def iter_frames(source, *, stride: int = 1, fps: float | None = None, start: int = 0,
                max_frames: int | None = None, min_frames: int = 2, folder_fps: float | None = None,
                threads: bool = True) -> Iterator[Frame]:
    """Stream sampled frames from a video file (mp4, mov, avi, webm, mkv, …), an image folder
    (jpg, png, webp, …; natural sort) or a list of image paths.

    Args:
        stride: keep every ``stride``-th source frame from ``start`` on.
        fps: instead of a stride, keep the first frame of every 1/fps-second interval (needs
            timestamps: a video, or a folder with ``folder_fps``).
        start: first source frame index considered (videos seek to it).
        max_frames: stop after this many frames (decoding stops too).
        min_frames: fewer selected frames raise ``InputError`` (2: one frame cannot be aligned);
            for a video this is only known at its end.
        folder_fps: frame rate of an image folder (for timestamps and ``fps`` sampling).
        threads: let FFmpeg decode with several threads.

    Returns:
        An iterator of ``Frame`` values in source order; one decoded frame is held at a time.

    Raises:
        InputError: missing/unreadable/corrupt/empty/non-video source, a folder without images or
            with images of different sizes, too few frames, bad sampling arguments.
    """
    # Arguments and folders are checked now, not at the first next(): errors surface at the call.
    _check_sampling(stride, fps, start, max_frames, min_frames)
    kind, path, images = _resolve(source)
    if kind == "video":
        check_video_readable(path)
        return _iter_video_frames(path, stride, fps, start, max_frames, min_frames, threads)
    chosen = _select_images(images, stride, fps, start, max_frames, folder_fps)
    if len(chosen) < min_frames:
        raise _too_few(path, len(chosen), min_frames, start)
    selected = [images[i] for i in chosen]
    check_same_size(selected)  # header scan: fail before decoding anything
    return _iter_image_frames(chosen, selected, folder_fps)


def _iter_video_frames(path, stride, fps, start, max_frames, min_frames, threads) -> Iterator[Frame]:
    sampler = _Sampler(start, stride, fps)
    count = 0
    decoded = iter_video(path, start=start, threads=threads)
    try:
        for frame in decoded:
            if not sampler.keep(frame.index, frame.timestamp):
                continue
            yield Frame(frame.rgb(), frame.index, frame.timestamp, f"frame_{frame.index:06d}")
            count += 1
            if max_frames is not None and count >= max_frames:
                return
    finally:
        decoded.close()
    if count < min_frames:
        raise _too_few(path, count, min_frames, start)


def _select_images(images: list[Path], stride, fps, start, max_frames, folder_fps) -> list[int]:
    if fps is not None and folder_fps is None:
        raise InputError("an image folder has no frame rate: pass folder_fps to sample it by fps, or use stride")
    sampler = _Sampler(start, stride, fps)
    chosen = []
    for index in range(start, len(images)):
        if sampler.keep(index, None if folder_fps is None else index / folder_fps):
            chosen.append(index)
            if max_frames is not None and len(chosen) >= max_frames:
                break
    return chosen


def _iter_image_frames(chosen: list[int], paths: list[Path], folder_fps: float | None) -> Iterator[Frame]:
    for index, path in zip(chosen, paths):
        image, focal = read_image(path)
        timestamp = None if folder_fps is None else index / folder_fps
        yield Frame(image, index, timestamp, path.stem, focal, path)


def read_frames(source, *, stride: int = 1, fps: float | None = None, start: int = 0,
                max_frames: int | None = None, min_frames: int = 2, folder_fps: float | None = None,
                max_memory_gib: float | None = DEFAULT_MAX_MEMORY_GIB, progress: bool | None = None) -> FrameSequence:
    """Decode the sampled frames of ``source`` into a ``FrameSequence`` (arguments as
    ``iter_frames``).

    Args:
        max_memory_gib: refuse (``InputError``, before decoding when the header tells the length)
            a selection whose frames would take more memory than this; None disables the check.
        progress: tqdm progress bar (None: only on a terminal).
    """
    _check_sampling(stride, fps, start, max_frames, min_frames)
    info = probe(source, folder_fps=folder_fps)
    h, w = info.size
    frame_bytes = 3 * h * w
    limit = None if max_memory_gib is None else max_memory_gib * 2**30
    expected = expected_count(info, stride, fps, start, max_frames)
    if limit is not None and expected is not None and expected * frame_bytes > limit:
        raise InputError(f"{info.path}: {expected} frames of {w}x{h} would take "
                         f"{expected * frame_bytes / 2**30:.1f} GiB, over max_memory_gib={max_memory_gib}; "
                         "sample fewer frames (stride, fps, max_frames), stream them with iter_frames, "
                         "or raise max_memory_gib")
    frames: list[Frame] = []
    disable = None if progress is None else not progress
    stream = iter_frames(source, stride=stride, fps=fps, start=start, max_frames=max_frames,
                         min_frames=min_frames, folder_fps=folder_fps)
    for frame in tqdm(stream, total=expected, desc="frames", unit="frame", disable=disable, leave=False):
        frames.append(frame)
        if limit is not None and len(frames) * frame_bytes > limit:
            stream.close()
            raise InputError(f"{info.path}: the selected frames exceed max_memory_gib={max_memory_gib} "
                             f"after {len(frames)} frames; sample fewer frames (stride, fps, max_frames) or "
                             "stream them with iter_frames")
    timestamps = None if frames[0].timestamp is None else np.array([f.timestamp for f in frames], dtype=np.float64)
    return FrameSequence(
        images=[f.image for f in frames],
        names=[f.name for f in frames],
        indices=np.array([f.index for f in frames], dtype=np.int64),
        timestamps=timestamps,
        focal_px=[f.focal_px for f in frames],
        source=info.path,
        original_size=(h, w),
        fps=info.fps,
    )


def expected_count(info: SourceInfo, stride: int, fps: float | None, start: int,
                   max_frames: int | None) -> int | None:
    """How many frames the sampling selects from ``info`` (estimated when sampling a video by fps;
    ``max_frames`` or None when the header does not give the length): for progress bars and
    memory checks."""
    if info.num_frames is None:
        return max_frames
    remaining = max(info.num_frames - start, 0)
    if fps is not None and info.fps:
        count = math.ceil(remaining * min(1.0, fps / info.fps))
    else:
        count = math.ceil(remaining / stride)
    return count if max_frames is None else min(count, max_frames)


def frames_from_arrays(images: Sequence[np.ndarray], names: Sequence[str] | None = None,
                       source: str = "<arrays>") -> FrameSequence:
    """Wrap in-memory (H, W, 3) uint8 RGB frames (e.g. from another reader) as a ``FrameSequence``."""
    images = [np.asarray(im) for im in images]
    if len(images) < 1:
        raise InputError("no frames given")
    sizes = {im.shape for im in images}
    if len(sizes) > 1 or images[0].ndim != 3 or images[0].shape[2] != 3 or images[0].dtype != np.uint8:
        raise InputError(f"frames must be (H, W, 3) uint8 RGB of one size, got shapes {sorted(sizes)} "
                         f"{images[0].dtype}")
    n = len(images)
    return FrameSequence(images=images, names=list(names) if names is not None else [f"frame_{i:06d}" for i in range(n)],
                         indices=np.arange(n, dtype=np.int64), timestamps=None, focal_px=[None] * n,
                         source=Path(source), original_size=images[0].shape[:2])

"""Depth the user already has: a folder of depth maps, or the official ``_pred_depth_<name>.npz`` caches.

Files
    ``.npy``: an (H, W) or (1, H, W) array. ``.npz``: key ``depth`` (same shapes), optionally a
    focal length under ``focallength_px`` (the official key) or ``focal_px``. ``.png``: 16-bit
    single-channel; a ``scale`` is required (metres per unit: 1/1000 for 7-Scenes and ScanNet
    millimetres, 1/5000 for TUM RGB-D and Bonn). ``scale`` also multiplies ``.npy``/``.npz`` values
    (default 1).

Matching files to frames (:class:`FolderPrior`)
    By name: a file belongs to the frame whose stem it shares, after removing the official
    ``_pred_depth_<name>`` suffix and one trailing tag ``.depth _depth -depth`` from the file's
    stem and ``.color _color -color .rgb _rgb -rgb`` from either (so ``frame-000000.depth.png``
    matches ``frame-000000.color.jpg`` and ``0012_rgb_pred_depth_depthpro.npz`` matches
    ``0012_rgb.jpg``). Without frame names, or if no name matches at all, files are taken in
    natural sort order (``frame_2`` before ``frame_10``): file k for source frame k when the caller
    gives ``frame_indices`` (the pipeline does), so a stride, a start or chunked calls pick each
    frame's own file; otherwise one per frame, and their count must equal the number of frames.
    A partial name match is an error, never a silent reordering.

Invalid pixels (0, negative, NaN, inf; for disparity only negative and non-finite) are filled
with the nearest valid value by default (``invalid="fill"``, logged as a warning; sensor depth
such as 7-Scenes has 7-10 % holes); a map with more than half its pixels invalid
(:data:`~align3r.priors.pointmap.FILE_MAX_INVALID_FRACTION`; a model's prior may have at most
5 %), or a constant one, is an :class:`~align3r.errors.InputError`. A map whose size differs from
the frame's but whose aspect ratio matches (within 1 %, e.g. the official Depth Anything caches at
518 x 924 for 854 x 480 frames) is returned at its own size, a focal given for the frame scaled to
it; ``make_views(prior_resize=...)`` brings it to the view. Any other size is an error naming the
file.
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from natsort import natsorted

from align3r.errors import InputError
from align3r.io.folder import OFFICIAL_CACHE_SUFFIX, match_key
from align3r.io.view_geometry import same_aspect
from align3r.priors.base import PriorSource, check_focals, check_image, check_indices, check_names
from align3r.priors.official_cache import OFFICIAL_KINDS, frame_stem, official_cache_path
from align3r.priors.pointmap import FILE_MAX_INVALID_FRACTION, repair_depth, valid_prior_mask
from align3r.priors.types import DepthPrior

DEPTH_FILE_SUFFIXES = (".npy", ".npz", ".png")
_FOCAL_KEYS = ("focallength_px", "focal_px")

Kind = Literal["depth", "disparity"]


def read_depth_file(path: str | Path, scale: float | None = None) -> tuple[np.ndarray, float | None]:
    """Read one depth map → ((H, W) float32 values × scale, focal in px stored in the file or None).

    Raises:
        InputError: unreadable file, wrong shape, a PNG that is not 16-bit or given without ``scale``.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    focal = None
    try:
        if suffix == ".npy":
            depth = np.load(path, allow_pickle=False)
        elif suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if "depth" not in data.files:
                    raise InputError(f"{path}: no array named 'depth' (it has {', '.join(data.files) or 'none'})")
                depth = data["depth"]
                focal = _focal_from_npz(data, path)
        elif suffix == ".png":
            depth = _read_png16(path, scale)
        else:
            raise InputError(f"{path}: unsupported depth file type {suffix!r} (use .npy, .npz or 16-bit .png)")
    except InputError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # missing, truncated, not numpy
        raise InputError(f"cannot read depth file {path}: {exc}") from exc
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[0] == 1:  # the official Depth Anything cache stores (1, h, w)
        depth = depth[0]
    if depth.ndim != 2 or min(depth.shape) < 2:
        raise InputError(f"{path}: expected an (H, W) or (1, H, W) depth map, got shape {depth.shape}")
    if not (np.issubdtype(depth.dtype, np.floating) or np.issubdtype(depth.dtype, np.integer)):
        raise InputError(f"{path}: depth must be numeric, got dtype {depth.dtype}")
    depth = depth.astype(np.float32)
    if scale is not None and suffix != ".png":
        depth *= np.float32(scale)
    return depth, focal


def _focal_from_npz(data, path: Path) -> float | None:
    for key in _FOCAL_KEYS:
        if key in data.files:
            value = np.asarray(data[key], dtype=np.float64)
            if value.size != 1 or not np.isfinite(value).all() or float(value.reshape(())) <= 0:
                raise InputError(f"{path}: '{key}' must be one positive number (px), got {value.tolist()}")
            return float(value.reshape(()))
    return None


def _read_png16(path: Path, scale: float | None) -> np.ndarray:
    import cv2

    if scale is None:
        raise InputError(f"{path}: a 16-bit PNG needs a scale (metres per unit), e.g. 1/1000 for millimetres "
                         "(7-Scenes, ScanNet) or 1/5000 (TUM RGB-D, Bonn)")
    if not path.is_file():
        raise InputError(f"cannot read depth file {path}: no such file")
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(f"cannot read depth file {path}: not a valid PNG image")
    if raw.dtype != np.uint16 or raw.ndim != 2:
        raise InputError(f"{path}: expected a single-channel 16-bit PNG depth map, got {raw.dtype} "
                         f"with shape {raw.shape}")
    return raw.astype(np.float32) * np.float32(scale)


def fill_invalid(depth: np.ndarray, kind: Kind, path: str | Path, policy: Literal["fill", "error"] = "fill",
                 max_invalid_fraction: float = FILE_MAX_INVALID_FRACTION) -> np.ndarray:
    """Replace invalid pixels by the nearest valid one (``policy="fill"``, logged as a warning) or
    raise (``"error"``).

    Invalid: non-finite, and ``<= 0`` for depth (sensor holes are 0) or ``< 0`` for disparity
    (0 disparity is a legitimate point at infinity). More than ``max_invalid_fraction`` invalid
    pixels (default 50 %, :data:`~align3r.priors.pointmap.FILE_MAX_INVALID_FRACTION`) is an
    error: such a map is mostly made up. So is a constant map."""
    if policy == "error":
        n_bad = int(np.count_nonzero(~valid_prior_mask(depth, kind)))
        if n_bad:
            raise InputError(f"{path}: {n_bad} invalid {kind} pixels (zero, negative or NaN)")
    depth, _ = repair_depth(depth, kind=kind, max_invalid_fraction=max_invalid_fraction, what=str(path))
    if float(depth.max()) == float(depth.min()):
        raise InputError(f"{path}: the {kind} map is constant ({float(depth.min())}); it carries no geometry")
    return depth


def check_fits(depth_shape: tuple[int, int], frame_size: tuple[int, int], path: str | Path) -> None:
    """Raise unless a map of ``depth_shape`` (h, w) has the frame's aspect ratio (within 1 %)."""
    height, width = frame_size
    if not same_aspect(depth_shape, frame_size):
        raise InputError(f"{path}: depth map is {depth_shape[1]}x{depth_shape[0]} (WxH) but the frame is "
                         f"{width}x{height}; the aspect ratios differ, so it is not this frame's map")





class _FileSource(PriorSource):
    """Shared reading logic; subclasses decide which file belongs to which frame."""

    cacheable = False  # already on disk: caching would only copy the files

    def __init__(self, *, kind: Kind | None, scale: float | None, focal_px: float | None,
                 invalid: Literal["fill", "error"], progress: bool = True, **compute_settings) -> None:
        # device / dtype / batch_size are accepted so every source takes the same settings;
        # reading files needs none of them.
        unknown = set(compute_settings) - {"device", "dtype", "batch_size", "cache_dir", "local_files_only"}
        if unknown:
            raise TypeError(f"unexpected arguments {sorted(unknown)}")
        if kind not in (None, "depth", "disparity"):
            raise InputError(f"kind must be 'depth' or 'disparity', got {kind!r}")
        if scale is not None and not (np.isfinite(scale) and scale > 0):
            raise InputError(f"scale must be a positive number (metres per stored unit), got {scale}")
        if invalid not in ("fill", "error"):
            raise InputError(f"invalid must be 'fill' or 'error', got {invalid!r}")
        self.kind = kind
        self.scale = scale
        if focal_px is not None and not (np.isfinite(focal_px) and focal_px > 0):
            raise InputError(f"focal_px must be a positive number of pixels, got {focal_px}")
        self.focal_px = None if focal_px is None else float(focal_px)
        self.invalid = invalid
        self.progress = progress

    @property
    def identity(self) -> str:
        return f"{self.name}|{self._where()}|kind={self.kind}|scale={self.scale}|focal={self.focal_px}"

    def _where(self) -> str:
        raise NotImplementedError

    def _files_for(self, count: int, frame_names: list[str] | None, frame_indices: list[int] | None) -> list[Path]:
        raise NotImplementedError

    def _kind_of(self, path: Path) -> Kind:
        if self.kind is not None:
            return self.kind
        official = OFFICIAL_CACHE_SUFFIX.search(path.stem)
        return OFFICIAL_KINDS.get(official["name"], "depth") if official else "depth"

    def load(self, path: Path, frame_size: tuple[int, int], fallback_focal: float | None) -> DepthPrior:
        """One file → a :class:`DepthPrior` at the file's own resolution, which must have the
        frame's (H, W) aspect ratio: the views decide how it is brought to the frame
        (``make_views(prior_resize=...)``). Focals given for the frame are scaled to that resolution."""
        kind = self._kind_of(path)
        depth, file_focal = read_depth_file(path, self.scale)
        check_fits(depth.shape, frame_size, path)
        depth = fill_invalid(depth, kind, path, self.invalid)
        focal = self.focal_px if self.focal_px is not None else fallback_focal
        if focal is not None:  # a focal of the frame, in the map's pixels
            focal *= depth.shape[1] / frame_size[1]
        if self.focal_px is None and file_focal is not None:
            focal = file_focal
        return DepthPrior(depth=depth, focal_px=focal, kind=kind, source=str(path))

    def predict_iter(self, images, focal_px=None, frame_names=None, frame_indices=None) -> Iterator[DepthPrior]:
        focals = check_focals(focal_px, len(images))
        files = self._files_for(len(images), check_names(frame_names, len(images)),
                                check_indices(frame_indices, len(images)))
        for i, path in enumerate(files):
            frame = check_image(images[i], i)
            yield self.load(path, frame.shape[:2], focals[i])


class FolderPrior(_FileSource):
    """Depth maps from a folder, one per frame (see the module doc for formats and matching).

    Args:
        folder: the folder (not searched recursively).
        kind: "depth" (metric, m) or "disparity"; None → from the official file suffix
            (``depthpro`` → depth, ``depthanything`` → disparity), else "depth".
        scale: metres per stored unit (required for 16-bit PNG; default 1 for .npy/.npz).
        focal_px: focal length in px for every frame; None → the file's own, else the focal the
            caller passes to ``predict`` (e.g. EXIF), else None.
        pattern: glob selecting the files (default: every .npy/.npz/.png, or only the official
            ``*_pred_depth_*.npz`` caches when the folder holds some).
        cache_name: with official caches of several models in the folder, which one
            (``"depthpro"`` or ``"depthanything"``).
        match: "auto", "name" or "order".
        invalid: "fill" (nearest valid value) or "error".
        metric: the maps are metric depth in metres (after ``scale``), e.g. sensor depth, so
            ``scale=metric`` may put the reconstruction in metres (never for disparity).
    """

    name = "external"

    def __init__(self, folder: str | Path, *, kind: Kind | None = None, scale: float | None = None,
                 focal_px: float | None = None, pattern: str | None = None, cache_name: str | None = None,
                 match: Literal["auto", "name", "order"] = "auto", invalid: Literal["fill", "error"] = "fill",
                 metric: bool = False, **settings) -> None:
        super().__init__(kind=kind, scale=scale, focal_px=focal_px, invalid=invalid, **settings)
        if metric and kind == "disparity":
            raise InputError("a disparity prior cannot be metric (metric=True needs kind='depth', in metres)")
        self.metric = bool(metric)
        self.folder = Path(folder).expanduser()
        if not self.folder.is_dir():
            raise InputError(f"depth folder {self.folder} does not exist or is not a folder")
        if match not in ("auto", "name", "order"):
            raise InputError(f"match must be 'auto', 'name' or 'order', got {match!r}")
        self.match = match
        self.files = self._discover(pattern, cache_name)

    def _where(self) -> str:
        return str(self.folder)

    def _discover(self, pattern: str | None, cache_name: str | None) -> list[Path]:
        if pattern is not None:
            files = [p for p in self.folder.glob(pattern) if p.is_file()]
        else:
            files = [p for p in self.folder.iterdir() if p.is_file() and p.suffix.lower() in DEPTH_FILE_SUFFIXES]
            official = [p for p in files if p.suffix == ".npz" and OFFICIAL_CACHE_SUFFIX.search(p.stem)]
            if official:
                names = sorted({OFFICIAL_CACHE_SUFFIX.search(p.stem)["name"] for p in official})
                if cache_name is None and len(names) > 1:
                    raise InputError(f"{self.folder} holds official caches of several models ({', '.join(names)}); "
                                     "choose one with cache_name")
                wanted = cache_name or names[0]
                files = [p for p in official if OFFICIAL_CACHE_SUFFIX.search(p.stem)["name"] == wanted]
        if not files:
            raise InputError(f"no depth files (.npy, .npz, 16-bit .png{', ' + pattern if pattern else ''}) "
                             f"in {self.folder}")
        return natsorted(files, key=lambda p: p.name)

    def _files_for(self, count: int, frame_names: list[str] | None, frame_indices: list[int] | None) -> list[Path]:
        by_key: dict[str, Path] = {}
        for path in self.files:
            key = match_key(path.stem)
            if key in by_key:
                raise InputError(f"{by_key[key].name} and {path.name} in {self.folder} both match frame {key!r}; "
                                 "remove one or select files with pattern")
            by_key[key] = path
        if frame_names is not None and self.match != "order":
            keys = [match_key(frame_stem(n)) for n in frame_names]
            found = [k in by_key for k in keys]
            if all(found):
                return [by_key[k] for k in keys]
            if any(found) or self.match == "name":
                missing = frame_names[found.index(False)]
                raise InputError(f"no depth file for frame {missing!r} in {self.folder} (looked for a file named "
                                 f"{match_key(frame_stem(missing))!r} + .npy/.npz/.png)")
        elif self.match == "name":
            raise InputError("matching depth files by name needs the frame names")
        return self._files_in_order(count, frame_indices)

    def _files_in_order(self, count: int, frame_indices: list[int] | None) -> list[Path]:
        """The k-th file (natural order) for source frame k, so a stride, a start or the caller's
        chunking picks the same file as frame; without indices, one file per frame given."""
        if frame_indices is None:
            if len(self.files) != count:
                raise InputError(f"{self.folder} has {len(self.files)} depth files for {count} frames and their names "
                                 "do not match the frames'; name each file after its frame or give exactly one per "
                                 "frame")
            return list(self.files)
        last = max(frame_indices, default=-1)
        if last >= len(self.files):
            raise InputError(f"{self.folder} has {len(self.files)} depth files, taken in name order for source frames "
                             f"0..{len(self.files) - 1} as their names do not match the frames', but source frame "
                             f"{last} was asked for; give one file per frame of the video or folder (not only the "
                             "sampled ones), or name each file after its frame")
        return [self.files[i] for i in frame_indices]


class OfficialCachePrior(_FileSource):
    """The official per-frame caches ``<stem>_pred_depth_<name>.npz``, beside each frame or in ``folder``.

    Depth Pro caches give metric depth and ``focallength_px``; Depth Anything caches give
    disparity at the processor's resolution, resized here to the frame's. ``predict`` needs
    ``frame_names`` (the frame file paths) to find the files.
    """

    name = "official-cache"

    def __init__(self, model: str = "depthpro", folder: str | Path | None = None, *,
                 invalid: Literal["fill", "error"] = "fill", **settings) -> None:
        if model not in OFFICIAL_KINDS:
            raise InputError(f"official caches exist for {', '.join(OFFICIAL_KINDS)}, not {model!r}")
        super().__init__(kind=OFFICIAL_KINDS[model], scale=None, focal_px=None, invalid=invalid, **settings)
        self.model = model
        self.metric = OFFICIAL_KINDS[model] == "depth"  # Depth Pro's caches hold its metric depth
        self.folder = None if folder is None else Path(folder).expanduser()

    def _where(self) -> str:
        return f"{self.model}@{self.folder or 'beside the frames'}"

    def _files_for(self, count: int, frame_names: list[str] | None, frame_indices: list[int] | None) -> list[Path]:
        if frame_names is None:
            raise InputError("the official caches are found by frame file name; pass frame_names (the frame paths)")
        files = [official_cache_path(name, self.model, self.folder) for name in frame_names]
        for name, path in zip(frame_names, files):
            if not path.is_file():
                bare = self.folder is None and Path(name).parent == Path(".")
                hint = (f"; a bare frame name is looked up in the current folder: pass the frame paths, or name the "
                        f"folder, official-cache:{self.model}:<folder> (a video's frames always need one)"
                        if bare else "")
                raise InputError(f"missing official prior cache {path}; compute it with "
                                 f"`align3r prior <frames> --model {self.model}`{hint}")
        return files

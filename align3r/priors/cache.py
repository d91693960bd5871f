"""A disk cache of depth priors keyed by frame content, model and settings.

Each frame's prior is one ``.npz`` file under ``root/<k[:2]>/<k>.npz`` where ``k`` is a BLAKE2b
hash of: the prior's :attr:`~align3r.priors.base.PriorSource.identity` (model id + commit or
weight fingerprint, dtype, processor and formula settings), the focal length handed in (e.g.
EXIF), and the frame's exact pixels and shape. So a changed frame, model, revision, dtype or focal
is a different key and is recomputed, and an unchanged one is read back. Only the misses are
computed, batched, by the wrapped prior (which loads its weights only then).

Files are written to a temporary name in the same folder and renamed over the target
(``align3r.atomic.atomic_path``, as every cache), so a reader never sees a half-written file; a file that is unreadable anyway
(truncated by a crash, bad CRC, wrong shape or identity) counts as a miss and is rewritten.
Values are stored uncompressed (float32 depth compresses poorly; reading stays fast).
"""

from __future__ import annotations

import logging
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from align3r.atomic import atomic_path
from align3r.fingerprint import digest
from align3r.priors.base import PriorSource, check_focals, check_image, check_names
from align3r.priors.types import DepthPrior

logger = logging.getLogger(__name__)

CACHE_FORMAT = "align3r-prior-cache-v1"


def user_prior_cache_dir() -> Path:
    """``$ALIGN3R_CACHE_DIR/priors`` or ``~/.cache/align3r/priors``."""
    base = os.environ.get("ALIGN3R_CACHE_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".cache" / "align3r") / "priors"


@dataclass
class CacheStats:
    """Counts since the cache object was made: frames read back, computed, and found corrupt."""

    hits: int = 0
    misses: int = 0
    corrupt: int = 0


def cache_key(identity: str, image: np.ndarray, focal_px: float | None) -> str:
    """Hex key of one frame's prior: the source identity, the given focal and the pixels."""
    return digest(f"{CACHE_FORMAT}\0{identity}\0{'none' if focal_px is None else float(focal_px).hex()}\0"
                  f"{image.shape}\0{image.dtype}\0", np.ascontiguousarray(image).data)


class PriorCache(PriorSource):
    """Wrap ``prior`` so its results are stored under ``root`` and reused.

    Itself a prior source (same ``predict`` / ``predict_iter``). Sources that read files
    (``cacheable = False``) are passed through untouched.

    Args:
        prior: the source to cache.
        root: cache folder (created when needed); see :func:`user_prior_cache_dir`.
        chunk_size: frames looked up and computed together; bounds memory on long videos.
    """

    cacheable = False  # never wrap a cache in a cache

    def __init__(self, prior: PriorSource, root: str | Path | None = None, *, chunk_size: int = 32) -> None:
        self.prior = prior
        self.root = Path(root).expanduser() if root is not None else user_prior_cache_dir()
        self.chunk_size = max(1, int(chunk_size))
        self.name = prior.name
        self.metric = prior.metric
        self.stats = CacheStats()

    @property
    def identity(self) -> str:
        return self.prior.identity

    def path_for(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.npz"

    def predict_iter(self, images, focal_px=None, frame_names=None, frame_indices=None) -> Iterator[DepthPrior]:
        if not self.prior.cacheable:
            yield from self.prior.predict_iter(images, focal_px, frame_names, frame_indices)
            return
        focals = check_focals(focal_px, len(images))
        names = check_names(frame_names, len(images))
        identity = self.prior.identity
        for start in range(0, len(images), self.chunk_size):
            indices = range(start, min(start + self.chunk_size, len(images)))
            frames = [check_image(images[i], i) for i in indices]
            keys = [cache_key(identity, frame, focals[i]) for frame, i in zip(frames, indices)]
            found = {key: self._read(key, identity, frame.shape[:2]) for key, frame in zip(keys, frames)}
            todo, pending = [], set()  # identical frames in a chunk are computed once
            for j, key in enumerate(keys):
                if found[key] is None and key not in pending:
                    pending.add(key)
                    todo.append(j)
            self.stats.hits += len(keys) - len(todo)
            self.stats.misses += len(todo)
            if todo:
                computed = self.prior.predict_iter([frames[j] for j in todo], [focals[indices[j]] for j in todo],
                                                   None if names is None else [names[indices[j]] for j in todo])
                for j, prior in zip(todo, computed):
                    self._write(keys[j], identity, prior)
                    found[keys[j]] = prior
            for key in keys:
                yield found[key]

    def _read(self, key: str, identity: str, size: tuple[int, int]) -> DepthPrior | None:
        path = self.path_for(key)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["identity"]) != identity:
                    raise ValueError("written by a different prior")
                depth = data["depth"]
                focal = float(data["focal_px"])
                kind = str(data["kind"])
                source = str(data["source"])
            if depth.shape != tuple(size) or depth.dtype != np.float32:
                raise ValueError(f"holds a {depth.dtype} map of shape {depth.shape}, expected float32 {size}")
            return DepthPrior(depth=depth, focal_px=None if np.isnan(focal) else focal, kind=kind, source=source)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            logger.warning("prior cache file %s is unreadable (%s); recomputing it", path, exc)
            self.stats.corrupt += 1
            return None

    def _write(self, key: str, identity: str, prior: DepthPrior) -> None:
        path = self.path_for(key)
        hint = "free some disk space or choose another cache folder; the files already cached are intact"
        with atomic_path(path, durable=True, hint=hint) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, depth=np.ascontiguousarray(prior.depth, dtype=np.float32),
                     focal_px=np.float64(np.nan if prior.focal_px is None else prior.focal_px),
                     kind=np.str_(prior.kind), source=np.str_(prior.source), identity=np.str_(identity))

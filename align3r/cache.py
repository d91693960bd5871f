"""Run caches: what a run computed, stored on disk so an interrupted run resumes where it stopped.

- :class:`RunCache`: a run's cache folder (``<out>.cache`` by default) and its layout — depth
  priors (``priors/``, ``align3r.priors.cache.PriorCache``), network predictions (``pairs/``) and
  optical flow (``flow/``), the last two :class:`ChunkCache` stores.
- :class:`ChunkCache`: chunks of tensors over the edges of a pair graph. Each chunk is one
  safetensors file named by a content key (a hash of everything the chunk depends on: model or
  backend fingerprint, settings, frame contents). Files are written to a temporary name and
  renamed (``align3r.atomic``), so a kill -9 leaves either the whole file or none; a damaged file
  is a miss.

Every key is built from the fingerprints of :mod:`align3r.fingerprint`.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import Tensor

from align3r.atomic import atomic_path
from align3r.fingerprint import digest

log = logging.getLogger(__name__)


#: Edges per cached chunk, independent of any batch size so caches survive a batch-size change.
CHUNK_EDGES = 64


def edge_chunks(edges: Tensor) -> list[Tensor]:
    """(E, 2) edges split into consecutive (<= CHUNK_EDGES, 2) chunks, the unit of caching."""
    return [edges[s:s + CHUNK_EDGES] for s in range(0, edges.shape[0], CHUNK_EDGES)]


class ChunkCache:
    """``root/<prefix>-<key>.safetensors`` files of named tensors."""

    def __init__(self, root: str | os.PathLike, prefix: str) -> None:
        self.root = Path(root)
        self.prefix = prefix
        self.hits = 0
        self.misses = 0

    def path(self, key: str) -> Path:
        return self.root / f"{self.prefix}-{key}.safetensors"

    def load(self, key: str, device: torch.device | str = "cpu") -> dict[str, Tensor] | None:
        from safetensors.torch import load_file

        path = self.path(key)
        if path.is_file():
            try:
                out = load_file(str(path), device=str(device))
                self.hits += 1
                return out
            except Exception:  # partial or foreign file: recompute and overwrite
                log.warning("ignoring unreadable cache file %s", path)
        self.misses += 1
        return None

    def save(self, key: str, tensors: dict[str, Tensor]) -> None:
        from safetensors.torch import save_file

        hint = "free disk space or pass another cache_dir (the outputs are not affected)"
        with atomic_path(self.path(key), hint=hint) as tmp:
            save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp))

    def load_or_compute(self, namespace: str, edges: Tensor, frame_hashes: list[str],
                        compute: Callable[[list[Tensor]], Iterable[dict[str, Tensor]]], *,
                        device: torch.device | str = "cpu") -> list[dict[str, Tensor]]:
        """The named tensors of every chunk of ``edges`` (:func:`edge_chunks`), in order.

        Each chunk is read back when its key (:func:`chunk_key` of ``namespace``, its edges and
        ``frame_hashes``) has a file; the missing chunks are handed to ``compute`` together (so it
        can share work between them, e.g. encode each frame once) and it yields one dict per
        chunk, in order; each is saved as it comes, so an interrupted run keeps every finished chunk.

        Args:
            namespace: what the chunks depend on besides the frames (model or backend fingerprint,
                settings, a format version).
            edges: (E, 2) int64 frame indices.
            frame_hashes: one content hash per frame (``align3r.fingerprint.content_hashes``).
            compute: ``missing chunks -> iterable of dicts``, each ``(e, ...)`` tensors for a
                chunk of ``e`` edges.
            device: where the tensors read back are put.
        """
        chunks = edge_chunks(edges)
        keys = [chunk_key(namespace, chunk, frame_hashes) for chunk in chunks]
        results = [self.load(key, device=device) for key in keys]
        todo = [c for c, r in enumerate(results) if r is None]
        if todo:
            for c, part in zip(todo, compute([chunks[c] for c in todo]), strict=True):
                self.save(keys[c], part)
                results[c] = part
        return results


class RunCache:
    """A run's cache folder: ``priors/`` (depth priors), ``pairs/`` (network predictions) and
    ``flow/`` (optical flow), each keyed by content, so a rerun with the same frames and settings
    skips those stages and one with other alignment or export settings reuses them.

    Args:
        root: the folder (created when something is written).
    """

    #: What a run writes into its cache (:meth:`remove` deletes only these).
    PARTS = ("priors", "pairs", "flow")

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunCache({str(self.root)!r})"

    @classmethod
    def beside(cls, out: str | os.PathLike) -> RunCache:
        """``<out>.cache`` beside the output directory (``out`` made absolute first, so ``.`` or
        ``a/..`` have a name)."""
        out = Path(os.path.abspath(os.fspath(out)))
        return cls(out.with_name(out.name + ".cache"))

    @classmethod
    def for_run(cls, out: str | os.PathLike | None, cache_dir: str | os.PathLike | None) -> RunCache | None:
        """The run cache of a run writing to ``out`` with the ``cache_dir`` setting: ``cache_dir``,
        else ``<out>.cache`` (:meth:`beside`); None when ``cache_dir="none"`` or there is neither an
        output nor a cache folder."""
        if cache_dir == "none" or (out is None and not cache_dir):
            return None
        return cls(Path(cache_dir).expanduser()) if cache_dir else cls.beside(out)

    def priors(self, source):
        """``source`` (an ``align3r.priors`` source) with its priors stored under ``priors/``
        (``PriorCache``); sources that read files (``cacheable = False``) are returned as they are."""
        from align3r.priors.cache import PriorCache

        return PriorCache(source, self.root / "priors") if getattr(source, "cacheable", False) else source

    @property
    def pairs(self) -> ChunkCache:
        """The store of network predictions (``align3r.inference.PairPredictor``'s ``cache``)."""
        return ChunkCache(self.root / "pairs", "pairs")

    @property
    def flow(self) -> ChunkCache:
        """The store of optical flow (``align3r.flow.cached.CachedPairFlow``'s ``cache``)."""
        return ChunkCache(self.root / "flow", "flow")

    def exists(self) -> bool:
        return self.root.is_dir()

    def remove(self) -> None:
        """Delete the run's parts (:attr:`PARTS`), then the folder itself if nothing else is in it
        (a ``cache_dir`` given by the user may hold other files: those stay)."""
        for part in self.PARTS:
            shutil.rmtree(self.root / part, ignore_errors=True)
        try:
            self.root.rmdir()
        except OSError:
            pass


def chunk_key(namespace: str, edges: Tensor, frame_hashes: list[str]) -> str:
    """Key of a chunk of edges: the namespace (model/backend + settings) and its frames' contents."""
    return digest(namespace, *(f"{frame_hashes[i]}{frame_hashes[j]};" for i, j in edges.tolist()))

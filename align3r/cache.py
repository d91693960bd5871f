"""Run caches: chunks of tensors stored on disk so an interrupted run resumes where it stopped.

Each chunk is one safetensors file named by a content key (a hash of everything the chunk depends
on: model or backend fingerprint, settings, frame contents). Files are written to a temporary
name and renamed, so a kill -9 leaves either the whole file or none; a damaged file is a miss.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from align3r.atomic import atomic_path

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


def content_hashes(*arrays: Tensor | None) -> list[str]:
    """One hash per frame over the given (N, ...) tensors (None entries are skipped)."""
    present = [a for a in arrays if a is not None]
    n = int(present[0].shape[0])
    out = []
    for k in range(n):
        h = hashlib.blake2b(digest_size=16)
        for a in present:
            h.update(a[k].detach().contiguous().cpu().numpy().tobytes())
        out.append(h.hexdigest())
    return out


def module_fingerprint(module: torch.nn.Module, extra: str = "") -> str:
    """A cheap fingerprint of a network's weights: its config/extra text plus every tensor's name,
    shape and a strided sample of its values (any fine-tuning changes it in practice)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr(getattr(module, "config", None)).encode())
    h.update(extra.encode())
    for name, p in module.state_dict().items():
        flat = p.detach().reshape(-1)
        h.update(name.encode())
        h.update(str(tuple(p.shape)).encode())
        h.update(flat[:: max(1, flat.numel() // 256)].float().cpu().numpy().tobytes())
    return h.hexdigest()


def chunk_key(namespace: str, edges: Tensor, frame_hashes: list[str]) -> str:
    """Key of a chunk of edges: the namespace (model/backend + settings) and its frames' contents."""
    h = hashlib.blake2b(digest_size=20)
    h.update(namespace.encode())
    for i, j in edges.tolist():
        h.update(f"{frame_hashes[i]}{frame_hashes[j]};".encode())
    return h.hexdigest()

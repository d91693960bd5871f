"""Optical flow for pair graphs with a resumable on-disk cache (used by the pipeline).

``CachedPairFlow`` is a callable ``PairGraph -> PairFlow`` over one video's frames: edges are
split into fixed-size chunks, each chunk's flows are looked up in a ``ChunkCache`` and computed
with :func:`compute_pair_flow` only when missing.
"""

from __future__ import annotations

import torch
from torch import Tensor

from align3r.cache import ChunkCache, chunk_key, content_hashes, edge_chunks, module_fingerprint
from align3r.flow.backend import FlowBackend
from align3r.flow.compute import compute_pair_flow
from align3r.flow.types import PairFlow
from align3r.pairs import PairGraph

_FIELDS = ("flow_ij", "flow_ji", "valid_ij", "valid_ji")


def backend_identity(backend: FlowBackend) -> str:
    """What the flow of a backend depends on (network weights and iterations, or DIS preset)."""
    model = getattr(backend, "model", None)
    if model is not None:
        return f"{backend.name}|{getattr(backend, 'num_flow_updates', '')}|{module_fingerprint(model)}"
    return f"{backend.name}|{getattr(backend, 'preset', '')}"


class CachedPairFlow:
    """Flow of the edges of any graph over the frames ``rgb``.

    Args:
        backend: a loaded flow backend (``load_flow_backend``).
        rgb: (N, H, W, 3) uint8 frames at network resolution.
        cache: a ``ChunkCache`` (or None for no caching).
        batch_size, threshold, residual, progress: as :func:`compute_pair_flow`.
        device: where results are returned.
    """

    def __init__(self, backend: FlowBackend, rgb: Tensor, *, cache: ChunkCache | None = None,
                 batch_size: int = 16, threshold: float = 3.0, residual: str = "sum",
                 device: torch.device | str | None = None, progress: bool = True) -> None:
        self.backend = backend
        self.rgb = rgb
        self.cache = cache
        self.batch_size = batch_size
        self.threshold = threshold
        self.residual = residual
        self.device = torch.device(device) if device is not None else backend.device
        self.progress = progress
        self._hashes: list[str] | None = None
        self._namespace = f"flow|{backend_identity(backend)}|{threshold}|{residual}|v1"

    def _compute(self, edges: Tensor) -> dict[str, Tensor]:
        flow = compute_pair_flow(self.rgb, edges, backend=self.backend, batch_size=self.batch_size,
                                 device=self.device, threshold=self.threshold, residual=self.residual,
                                 progress=self.progress)
        return {name: getattr(flow, name) for name in _FIELDS}

    def __call__(self, graph: PairGraph) -> PairFlow:
        edges = graph.edges
        if self.cache is None:
            parts = [self._compute(edges)]
        else:
            if self._hashes is None:
                self._hashes = content_hashes(self.rgb)
            parts = []
            for chunk in edge_chunks(edges):
                key = chunk_key(self._namespace, chunk, self._hashes)
                part = self.cache.load(key, device=self.device)
                if part is None:
                    part = self._compute(chunk)
                    self.cache.save(key, part)
                parts.append(part)
        merged = {name: torch.cat([p[name] for p in parts]) for name in _FIELDS}
        return PairFlow(edges=edges.to(self.device), **merged)

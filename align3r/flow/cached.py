"""Optical flow for pair graphs with a resumable on-disk cache (used by the pipeline).

``CachedPairFlow`` is a callable ``PairGraph -> PairFlow`` over one video's frames: edges are
split into fixed-size chunks, each chunk's flows are looked up in a ``ChunkCache`` and computed
with :func:`compute_pair_flow` only when missing (``ChunkCache.load_or_compute``).
:func:`load_pair_flow` builds one from the flow settings of ``align3r infer`` / ``align3r eval``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from align3r.cache import ChunkCache
from align3r.fingerprint import content_hashes, module_fingerprint
from align3r.flow.backend import FlowBackend, flow_backend
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
            parts = self.cache.load_or_compute(self._namespace, edges, self._hashes,
                                               lambda chunks: map(self._compute, chunks), device=self.device)
        merged = {name: torch.cat([p[name] for p in parts]) for name in _FIELDS}
        return PairFlow(edges=edges.to(self.device), **merged)


def load_pair_flow(name: str | None, rgb: Tensor, *, weights: str | None = "DEFAULT", iterations: int = 20,
                   device: torch.device | str | None = None, cache: ChunkCache | None = None, progress: bool = True,
                   backend: FlowBackend | None = None) -> CachedPairFlow | None:
    """A callable ``PairGraph -> PairFlow`` over the frames ``rgb`` (cached in ``cache`` when given),
    or None for ``name="none"``.

    Args:
        name, weights, iterations: the flow settings (:func:`~align3r.flow.backend.flow_backend`).
        rgb: (N, H, W, 3) uint8 frames at network resolution.
        device: where the flow runs and is returned.
        backend: the backend already loaded by ``flow_backend`` (default: loaded now).
    """
    if backend is None:
        backend = flow_backend(name, weights=weights, iterations=iterations, device=device, progress=progress)
    if backend is None:
        return None
    return CachedPairFlow(backend, rgb, cache=cache, device=device, progress=progress)

"""Flow for every edge of a pair graph, both directions, with forward-backward validity."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from align3r.device import resolve_device
from align3r.errors import InputError
from align3r.flow.backend import FlowBackend, load_flow_backend
from align3r.flow.consistency import Residual, forward_backward_valid
from align3r.flow.frames import Frames
from align3r.flow.types import PairFlow
from align3r.pairs import PairGraph


def _as_edges(edges, num_frames: int) -> Tensor:
    if isinstance(edges, PairGraph):
        edges = edges.edges
    edges = torch.as_tensor(np.asarray(edges) if not isinstance(edges, Tensor) else edges).cpu()
    if edges.numel() == 0:
        return torch.zeros(0, 2, dtype=torch.int64)
    if edges.ndim != 2 or edges.shape[1] != 2:
        raise InputError(f"edges must be (E, 2) frame indices, got shape {tuple(edges.shape)}")
    if edges.is_floating_point() or edges.dtype == torch.bool:
        raise InputError(f"edges must be integer frame indices, got {edges.dtype}")
    edges = edges.to(torch.int64)
    lo, hi = int(edges.min()), int(edges.max())
    if lo < 0 or hi >= num_frames:
        raise InputError(f"edges refer to frames {lo}..{hi}, but only {num_frames} frames were given")
    return edges


def compute_pair_flow(images, edges, *, backend: str | FlowBackend = "raft", batch_size: int = 16,
                      device: torch.device | str | None = None, threshold: float = 3.0,
                      residual: Residual = "sum", progress: bool = True, **backend_options) -> PairFlow:
    """Optical flow ``i -> j`` and ``j -> i`` for every edge ``(i, j)``, with validity masks.

    Each distinct directed pair is computed once (a symmetric graph lists every pair twice, as
    ``(i, j)`` and ``(j, i)``), in batches of ``batch_size`` image pairs through the backend.

    Args:
        images: the N frames at network resolution: uint8 (N, H, W, 3) RGB, or the network's
            float (N, 3, H, W) in [-1, 1]; numpy or torch.
        edges: (E, 2) integer frame indices (tensor, array, list of pairs or a ``PairGraph``).
        backend: a name for :func:`load_flow_backend` (``"raft"``/``"raft-large"``,
            ``"raft-small"``, ``"dis"``) or a ready backend.
        batch_size: image pairs per backend call.
        device: where RAFT runs and where the results are returned (default: the backend's
            device, CUDA when available).
        threshold, residual: forward-backward test, see :func:`forward_backward_valid`
            (defaults: the reference's 3 px on ``|r_x + r_y|``).
        progress: show a tqdm bar.
        backend_options: passed to :func:`load_flow_backend` when ``backend`` is a name.
    Returns:
        :class:`PairFlow` with (E, 2, H, W) flows in pixels and (E, H, W) validity, on ``device``.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}")
    # Checked before the (long) flow computation rather than after it.
    if residual not in ("sum", "norm"):
        raise InputError(f"residual must be 'sum' (the reference's |r_x + r_y|) or 'norm', got {residual!r}")
    if not threshold > 0:
        raise InputError(f"threshold must be a positive number of pixels, got {threshold}")
    frames = Frames(images)
    edges = _as_edges(edges, frames.num_frames)
    if isinstance(backend, str):
        backend = load_flow_backend(backend, device=resolve_device(device), **backend_options)
    elif backend_options:
        raise InputError(f"backend options {sorted(backend_options)} only apply when backend is a name")
    out_device = torch.device(device) if device is not None else backend.device
    h, w = frames.size
    e = edges.shape[0]
    flow_ij = torch.empty(e, 2, h, w, device=out_device)
    flow_ji = torch.empty(e, 2, h, w, device=out_device)

    # Directed pairs needed: (i, j) for flow_ij, then (j, i) for flow_ji; key = source * N + target.
    n = frames.num_frames
    keys = torch.cat([edges[:, 0] * n + edges[:, 1], edges[:, 1] * n + edges[:, 0]])
    unique_keys, slot_of = torch.unique(keys, return_inverse=True)
    slot_of = slot_of.to(out_device)
    with tqdm(total=len(unique_keys), desc=f"optical flow ({backend.name})", unit="pair",
              disable=not progress) as bar:
        for start in range(0, len(unique_keys), batch_size):
            chunk = unique_keys[start:start + batch_size]
            flows = backend(frames.gather(chunk // n, backend.device), frames.gather(chunk % n, backend.device))
            flows = flows.to(out_device, torch.float32)
            # Scatter to every position (in flow_ij or flow_ji) that asked for one of these pairs.
            wanted = ((slot_of >= start) & (slot_of < start + len(chunk))).nonzero().squeeze(1)
            rows = slot_of[wanted] - start
            forward = wanted < e
            flow_ij[wanted[forward]] = flows[rows[forward]]
            flow_ji[wanted[~forward] - e] = flows[rows[~forward]]
            bar.update(len(chunk))

    valid_ij = torch.empty(e, h, w, dtype=torch.bool, device=out_device)
    valid_ji = torch.empty(e, h, w, dtype=torch.bool, device=out_device)
    validity_chunk = max(batch_size, 32)  # grid_sample only: cheap, bounded memory
    for start in range(0, e, validity_chunk):
        part = slice(start, start + validity_chunk)
        valid_ij[part] = forward_backward_valid(flow_ij[part], flow_ji[part], threshold=threshold, residual=residual)
        valid_ji[part] = forward_backward_valid(flow_ji[part], flow_ij[part], threshold=threshold, residual=residual)
    return PairFlow(edges=edges.to(out_device), flow_ij=flow_ij, flow_ji=flow_ji, valid_ij=valid_ij,
                    valid_ji=valid_ji)

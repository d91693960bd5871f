"""Pair graphs: which frame pairs the network sees.

A graph is a small typed value (``PairGraph``) that later stages consume without re-deriving it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass(frozen=True)
class PairGraph:
    """Directed edges over N frames.

    - ``edges``: (E, 2) int64 ``(i, j)`` frame indices; the network runs on ``(frame i, frame j)``.
    - ``num_frames``: N.
    - ``name``: the scheme that built it (e.g. ``"swinstride-5-noncyclic"``).
    - ``symmetric``: True when edge ``e`` and edge ``e + E/2`` are mutual reverses (the motion
      masks and the official optimizer rely on this layout).
    """

    edges: Tensor
    num_frames: int
    name: str
    symmetric: bool

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def as_tuples(self) -> list[tuple[int, int]]:
        return [tuple(e) for e in self.edges.tolist()]

    @staticmethod
    def from_pairs(pairs, num_frames: int, name: str, symmetric: bool) -> PairGraph:
        edges = torch.as_tensor(list(pairs), dtype=torch.int64).reshape(-1, 2)
        return PairGraph(edges=edges, num_frames=num_frames, name=name, symmetric=symmetric)

"""The optical-flow value that feeds the motion masks and the flow loss."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass
class PairFlow:
    """Optical flow for every edge ``(i, j)`` of a pair graph, both directions.

    Shapes (E edges, images H x W, the network resolution):

    - ``edges``: (E, 2) int64 frame indices, the same order as the ``PairPredictions``.
    - ``flow_ij``: (E, 2, H, W) float32, displacement in pixels ``(du, dv)`` that takes pixel
      ``(u, v)`` of frame i to its match ``(u + du, v + dv)`` in frame j.
    - ``flow_ji``: (E, 2, H, W) float32, the same from frame j to frame i.
    - ``valid_ij``, ``valid_ji``: (E, H, W) bool, forward-backward consistent and landing inside
      the image.
    """

    edges: Tensor
    flow_ij: Tensor
    flow_ji: Tensor
    valid_ij: Tensor
    valid_ji: Tensor

    def __post_init__(self) -> None:
        e = self.edges.shape[0]
        h, w = self.flow_ij.shape[-2:]
        for name, shape in (("flow_ij", (e, 2, h, w)), ("flow_ji", (e, 2, h, w)),
                            ("valid_ij", (e, h, w)), ("valid_ji", (e, h, w))):
            got = tuple(getattr(self, name).shape)
            if got != shape:
                raise ValueError(f"PairFlow.{name} must be {shape}, got {got}")

    @property
    def num_edges(self) -> int:
        return int(self.edges.shape[0])

    def to(self, device) -> PairFlow:
        """The same flows on ``device``."""
        return PairFlow(**{name: getattr(self, name).to(device)
                           for name in ("edges", "flow_ij", "flow_ji", "valid_ij", "valid_ji")})

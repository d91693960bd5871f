"""Optical flow between the frames of every edge, both directions, with forward-backward validity.

Backends: torchvision's RAFT (``"raft-large"``, alias ``"raft"``; ``"raft-small"``) and OpenCV's
DIS (``"dis"``, weight-free, CPU). The result, :class:`PairFlow`, feeds the self-motion masks and
the flow loss of the global alignment.
"""

from align3r.flow.backend import BACKEND_NAMES, FlowBackend, flow_backend, load_flow_backend
from align3r.flow.compute import compute_pair_flow
from align3r.flow.consistency import forward_backward_residual, forward_backward_valid, lands_inside
from align3r.flow.types import PairFlow

__all__ = [
    "BACKEND_NAMES",
    "FlowBackend",
    "PairFlow",
    "compute_pair_flow",
    "flow_backend",
    "forward_backward_residual",
    "forward_backward_valid",
    "lands_inside",
    "load_flow_backend",
]

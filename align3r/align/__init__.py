"""Global alignment: per-frame depth, camera poses and intrinsics from pairwise point maps.

Public API::

    from align3r.align import AlignConfig, align, from_official_output, preset

    preds = from_official_output(view1, view2, pred1, pred2)   # or batched inference
    rec = align(preds, preset("paper"), flow=pair_flow)          # Reconstruction

Long videos: :func:`align_grouped` aligns keyframes first, then each clip, fitted onto the
keyframes by a Sim(3). Building blocks (scene parameters, loss terms, initialisation, motion
masks) are importable for custom loops.
"""

from align3r.align.config import PRESETS, AlignConfig, preset
from align3r.align.grouped import GroupedPairs, align_grouped
from align3r.align.init import InitialState, edge_similarities, frame_confidence, spanning_tree_init
from align3r.align.losses import AlignmentLoss, flow_loss, temporal_smoothness
from align3r.align.motion import self_motion_masks
from align3r.align.official import from_official_output
from align3r.align.optimize import FlowTerm, Objective, learning_rate, optimise
from align3r.align.scene import SceneModel, SceneState
from align3r.align.solve import align, build_scene, override_confidence
from align3r.align.types import PairPredictions, Reconstruction

__all__ = [
    "PRESETS",
    "AlignConfig",
    "AlignmentLoss",
    "FlowTerm",
    "GroupedPairs",
    "InitialState",
    "Objective",
    "PairPredictions",
    "Reconstruction",
    "SceneModel",
    "SceneState",
    "align",
    "align_grouped",
    "build_scene",
    "edge_similarities",
    "flow_loss",
    "frame_confidence",
    "from_official_output",
    "learning_rate",
    "optimise",
    "override_confidence",
    "preset",
    "self_motion_masks",
    "spanning_tree_init",
    "temporal_smoothness",
]

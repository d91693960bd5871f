"""Self-motion masks: which pixels move on their own, from pairwise geometry and optical flow.

For every pair of frames predicted in both directions, a two-view reconstruction (focals by
Weiszfeld, relative pose by PnP-RANSAC, depth from the more confident direction) gives the flow
the camera motion alone would cause. Where the optical flow disagrees, something moves. The
per-pair error maps are min-max normalised, averaged over all pairs a frame belongs to, and
thresholded (MonST3R's ``get_motion_mask_from_pairs``, which Align3R's flow aligner uses).

Unlike the official code, reverse edges are found by lookup rather than assumed to sit at
``e + E/2``, so any edge order works; with the official layout the result is the same.
"""

from __future__ import annotations

import torch
from torch import Tensor

from align3r.align.init import pnp_pose
from align3r.align.types import PairPredictions
from align3r.errors import InputError
from align3r.flow.types import PairFlow
from align3r.geometry import (
    ego_flow,
    estimate_focal_weiszfeld,
    intrinsics_from_focal,
    invert_pose,
    transform_points,
)


def reverse_pairs(edges: Tensor) -> tuple[Tensor, Tensor]:
    """Indices ``(forward, backward)`` of edges (i, j) whose reverse (j, i) is also present.

    Each unordered pair appears once, as its first occurrence in edge order.
    Returns two (P,) int64 tensors.
    """
    lookup = {}
    for k, ij in enumerate(edges.tolist()):
        lookup.setdefault(tuple(ij), k)
    fwd, bwd = [], []
    for (i, j), k in lookup.items():
        r = lookup.get((j, i))
        if i != j and r is not None and k < r:
            fwd.append(k)
            bwd.append(r)
    return torch.tensor(fwd, dtype=torch.int64), torch.tensor(bwd, dtype=torch.int64)


def _norm2(flow: Tensor) -> Tensor:
    """(B, 2, H, W) -> (B, H, W) Euclidean norm (explicit: a norm over a size-2 axis is slow on CPU)."""
    return (flow[:, 0].square() + flow[:, 1].square()).sqrt()


def _normalise_per_map(err: Tensor) -> Tensor:
    lo = err.amin(dim=(1, 2), keepdim=True)
    hi = err.amax(dim=(1, 2), keepdim=True)
    return (err - lo) / (hi - lo)


def self_motion_masks(preds: PairPredictions, flow: PairFlow, *, threshold: float = 0.35, min_conf_thr: float = 3.0,
                      pnp_iterations: int = 100) -> Tensor:
    """Dynamic-object masks from the disagreement of ego-motion flow and optical flow.

    Args:
        preds: pair predictions; pairs must be present in both directions (symmetric graph).
        flow: optical flow of the same edges in the same order.
        threshold: normalised mean error above which a pixel is dynamic (official 0.35).
        min_conf_thr: confidence above which pixels enter the two-view PnP.
        pnp_iterations: RANSAC iterations of the two-view PnP (official 100).
    Returns:
        (N, H, W) bool, True on moving pixels (frames in no bidirectional pair: all False).
    """
    if flow.num_edges != preds.num_edges or not torch.equal(flow.edges.cpu(), preds.edges.cpu()):
        raise InputError("the flow's edges differ from the predictions' edges; compute the flow for the same "
                         "pair graph, in the same order")
    fwd, bwd = reverse_pairs(preds.edges.cpu())
    if fwd.numel() == 0:
        raise InputError("motion masks need pairs predicted in both directions (a symmetrized pair graph); "
                         "symmetrize the graph or pass dynamic_mask explicitly")
    device = preds.pts3d_i.device
    n = preds.num_frames
    h, w = preds.image_size
    fwd, bwd = fwd.to(device), bwd.to(device)
    pts_a, pts_b = preds.pts3d_i[fwd], preds.pts3d_i[bwd]  # frame a (=i) and b (=j) in their own cameras
    in_b_from_a, in_a_from_b = preds.pts3d_j[fwd], preds.pts3d_j[bwd]  # b in camera a, a in camera b
    score_a = preds.conf_i[fwd].mean(dim=(1, 2)) * preds.conf_j[fwd].mean(dim=(1, 2))
    score_b = preds.conf_i[bwd].mean(dim=(1, 2)) * preds.conf_j[bwd].mean(dim=(1, 2))
    conf_a = torch.maximum(preds.conf_i[fwd], preds.conf_j[bwd])
    conf_b = torch.maximum(preds.conf_i[bwd], preds.conf_j[fwd])
    focal_a = estimate_focal_weiszfeld(pts_a)
    focal_b = estimate_focal_weiszfeld(pts_b)

    # Two-view reconstruction in the camera of the more confident direction (one PnP per pair).
    count = fwd.numel()
    pose_a = torch.eye(4, device=device).repeat(count, 1, 1)
    pose_b = torch.eye(4, device=device).repeat(count, 1, 1)
    a_is_ref = (score_a > score_b).tolist()
    for p in range(count):  # one-off OpenCV calls; everything per pixel below is batched
        if a_is_ref[p]:  # pose of camera b in camera a, from b's points seen from a
            found = pnp_pose(in_b_from_a[p], conf_b[p] > min_conf_thr, float(focal_b[p]), (w / 2, h / 2),
                             pnp_iterations)
            if found is not None:
                pose_b[p] = found[0].to(device)
        else:
            found = pnp_pose(in_a_from_b[p], conf_a[p] > min_conf_thr, float(focal_a[p]), (w / 2, h / 2),
                             pnp_iterations)
            if found is not None:
                pose_a[p] = found[0].to(device)
    ref_a = torch.tensor(a_is_ref, device=device)
    depth_a = torch.where(ref_a[:, None, None], pts_a[..., 2],
                          transform_points(invert_pose(pose_a), in_a_from_b)[..., 2])
    depth_b = torch.where(ref_a[:, None, None], transform_points(invert_pose(pose_b), in_b_from_a)[..., 2],
                          pts_b[..., 2])
    k_a = intrinsics_from_focal(focal_a, h, w)
    k_b = intrinsics_from_focal(focal_b, h, w)
    rot_a, trans_a = pose_a[:, :3, :3], pose_a[:, :3, 3]
    rot_b, trans_b = pose_b[:, :3, :3], pose_b[:, :3, 3]
    ego_ab = ego_flow(depth_a, rot_a, trans_a, rot_b, trans_b, k_a, k_b)
    ego_ba = ego_flow(depth_b, rot_b, trans_b, rot_a, trans_a, k_b, k_a)
    on_flow = fwd.to(flow.flow_ij.device)  # the flow may live on another device than the predictions
    err_a = _normalise_per_map(_norm2(ego_ab - flow.flow_ij[on_flow].to(device)))
    err_b = _normalise_per_map(_norm2(ego_ba - flow.flow_ji[on_flow].to(device)))

    frames = torch.cat((preds.edges[fwd, 0], preds.edges[fwd, 1]))
    total = err_a.new_zeros(n, h, w).index_add_(0, frames, torch.cat((err_a, err_b)))
    count_per_frame = torch.bincount(frames, minlength=n).to(total.dtype)
    mean = total / count_per_frame.clamp_min(1)[:, None, None]
    return (mean > threshold) & (count_per_frame > 0)[:, None, None]

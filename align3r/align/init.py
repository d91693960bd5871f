"""Initialisation of the global alignment from a maximum spanning tree of the pair graph.

Edges are scored by mean(conf_i) * mean(conf_j); the tree that maximises the scores (scipy) is
grown from its best edge: every new frame is placed by a confidence-weighted Procrustes fit with
scale (roma) of an edge's point map onto the frame already placed. Frames that only ever appear
as the second frame of a tree edge get their pose from PnP-RANSAC (OpenCV SQPnP) on their
placed points. Focals come from a Weiszfeld fit of each frame's own point map.

This is the official procedure step by step, including its order of operations, so the initial
state matches it (fixture ``align/init__*``). The one-off loop over tree edges is in Python on
purpose: it is sequential (each placement depends on the previous ones) and runs N - 1 times.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import cv2
import numpy as np
import roma
import torch
from scipy.sparse import csr_array
from scipy.sparse.csgraph import connected_components, minimum_spanning_tree
from torch import Tensor

from align3r.align.types import PairPredictions
from align3r.errors import InputError
from align3r.geometry import estimate_focal_weiszfeld, invert_pose, pixel_grid, pose_matrix

log = logging.getLogger(__name__)


def sane_focals(focals: Tensor, height: int, width: int) -> Tensor:
    """Replace focal estimates no camera can have (NaN, negative, < 5 % or > 100x the image size).

    Such values come from degenerate point maps (e.g. most points behind the camera, as an
    untrained network predicts); they would turn every parameter into NaN through log(f). They
    take the median of the sane estimates, or max(H, W) (a ~53° field of view) if there is none.

    Args:
        focals: (E,) Weiszfeld estimates in pixels.
    Returns:
        (E,) focals, all finite and positive.
    """
    size = float(max(height, width))
    ok = torch.isfinite(focals) & (focals > 0.05 * size) & (focals < 100 * size)
    if bool(ok.all()):
        return focals
    fill = focals[ok].median() if bool(ok.any()) else focals.new_tensor(size)
    log.warning("%d of %d focal estimates are degenerate (points behind the camera?); using %.1f px",
                int((~ok).sum()), focals.numel(), float(fill))
    return torch.where(ok, focals, fill)


@dataclass
class InitialState:
    """What the spanning-tree initialisation produces.

    - ``world_points``: (N, H, W, 3) every frame's points in the common world frame.
    - ``cam2world``: (N, 4, 4) rigid camera poses (scale not yet normalised).
    - ``focals``: (N,) per-frame focal lengths in pixels.
    - ``tree_edges``: the spanning-tree edges in the order they were used.
    - ``pnp_frames``: frames whose pose came from PnP.
    """

    world_points: Tensor
    cam2world: Tensor
    focals: Tensor
    tree_edges: list[tuple[int, int]] = field(default_factory=list)
    pnp_frames: list[int] = field(default_factory=list)


def frame_confidence(preds: PairPredictions) -> Tensor:
    """(N, H, W) per-frame confidence: the maximum raw confidence over every edge side showing it."""
    n = preds.num_frames
    h, w = preds.image_size
    out = preds.conf_i.new_zeros(n, h, w)
    for side, conf in ((0, preds.conf_i), (1, preds.conf_j)):
        index = preds.edges[:, side].reshape(-1, 1, 1).expand_as(conf)
        out.scatter_reduce_(0, index, conf, "amax")
    return out


def edge_scores(preds: PairPredictions) -> np.ndarray:
    """(E,) float64 edge scores mean(conf_i) * mean(conf_j), formed in float32 like the official code."""
    score = preds.conf_i.mean(dim=(1, 2)) * preds.conf_j.mean(dim=(1, 2))
    return score.double().cpu().numpy()


def check_connected(edges: Tensor, num_frames: int) -> None:
    """Raise :class:`InputError` unless every frame is in an edge and the graph is connected."""
    e = edges.cpu().numpy()
    graph = csr_array((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(num_frames, num_frames))
    count, labels = connected_components(graph, directed=False)
    if count > 1:
        groups = [np.flatnonzero(labels == k).tolist() for k in range(count)]
        raise InputError(f"the pair graph is not connected: {count} separate groups of frames "
                         f"{[g[:8] for g in groups[:4]]}; add pairs that link them (e.g. a window graph)")


def weighted_procrustes(source: Tensor, target: Tensor, weights: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Similarity ``x -> s R x + t`` that best maps ``source`` onto ``target`` (weighted least squares).

    Args:
        source, target: (..., P, 3) corresponding points; weights: (..., P) non-negative.
    Returns:
        R (..., 3, 3), t (..., 3), s (...).
    """
    rot, trans, scale = roma.rigid_points_registration(source, target, weights=weights, compute_scaling=True)
    return rot, trans, scale


def pnp_pose(points: Tensor, mask: Tensor, focal: float | None, principal_point: tuple[float, float],
             iterations: int, reprojection_error: float = 5.0) -> tuple[Tensor, float] | None:
    """Camera-to-world pose of a frame from its placed 3-D points by OpenCV SQPnP-RANSAC.

    Args:
        points: (H, W, 3) world points of the frame's pixels; mask: (H, W) bool pixels to use.
        focal: pixels; None tries 21 focals from max(H, W)/2 to 3 max(H, W) (geometric steps)
            and keeps the one with the most inliers, as the official code.
    Returns:
        ((4, 4) float32 camera-to-world pose, focal), or None when PnP fails or < 4 points are usable.
    """
    if int(mask.sum()) < 4:
        return None
    h, w = mask.shape
    keep = mask.cpu().numpy()
    pts = points.detach().cpu().float().numpy()[keep]
    pix = pixel_grid(h, w).numpy()[keep]
    candidates = [focal] if focal is not None else np.geomspace(max(h, w) / 2, max(h, w) * 3, 21).tolist()
    best = None
    for f in candidates:
        k = np.float32([(f, 0, principal_point[0]), (0, f, principal_point[1]), (0, 0, 1)])
        try:
            ok, rvec, tvec, inliers = cv2.solvePnPRansac(pts, pix, k, None, iterationsCount=iterations,
                                                         reprojectionError=reprojection_error,
                                                         flags=cv2.SOLVEPNP_SQPNP)
        except cv2.error:
            continue
        if ok and inliers is not None and (best is None or len(inliers) > best[0]):
            best = (len(inliers), rvec, tvec, f)
    if best is None:
        return None
    _, rvec, tvec, f = best
    world2cam = pose_matrix(torch.from_numpy(cv2.Rodrigues(rvec)[0]), torch.from_numpy(tvec).reshape(3))
    return invert_pose(world2cam).float(), float(f)


def spanning_tree_init(preds: PairPredictions, *, min_conf_thr: float = 3.0, pnp_iterations: int = 10,
                       stale_focal: bool = True, known_focals: Tensor | None = None) -> InitialState:
    """Place every frame in one world frame from the pairwise point maps (official ``init='mst'``).

    Args:
        preds: the pair predictions (confidences already overridden if wanted).
        min_conf_thr: confidence above which pixels enter PnP.
        pnp_iterations: RANSAC iterations of the PnP fallback.
        stale_focal: reproduce the official quirk: a frame met for the first time as the first
            frame of a tree edge gets its focal from the point map of the *previously processed*
            edge (a leftover loop variable). Off: from the edge's own point map.
        known_focals: (N,) focal lengths to use instead of the Weiszfeld estimates.
    Returns:
        :class:`InitialState` (poses with unit scale, the tree's first frame at the origin).
    """
    n = preds.num_frames
    h, w = preds.image_size
    device = preds.pts3d_i.device
    check_connected(preds.edges, n)
    edges = [tuple(e) for e in preds.edges.tolist()]
    lookup = {ij: k for k, ij in enumerate(edges)}  # the last duplicate wins, as in a dict of edges
    scores = edge_scores(preds)

    dense = np.zeros((n, n))
    for k, (i, j) in enumerate(edges):
        dense[i, j] = -scores[k]
    tree = minimum_spanning_tree(csr_array(dense)).tocoo()
    todo = sorted(zip((-tree.data).tolist(), tree.row.tolist(), tree.col.tolist()))

    edge_focal = sane_focals(estimate_focal_weiszfeld(preds.pts3d_i), h, w).tolist()  # per edge's own map
    world: list[Tensor | None] = [None] * n
    poses: list[Tensor | None] = [None] * n
    focals: list[float | None] = [None] * n

    def key(i: int, j: int) -> int:
        return lookup[(i, j)] if (i, j) in lookup else lookup[(j, i)]

    _, i, j = todo.pop()
    if (i, j) not in lookup:
        i, j = j, i
    last = lookup[(i, j)]
    world[i] = preds.pts3d_i[last].clone()
    world[j] = preds.pts3d_j[last].clone()
    poses[i] = torch.eye(4, device=device)
    focals[i] = edge_focal[last]
    placed = {i, j}
    tree_edges = [(i, j)]
    while todo:
        score, i, j = todo.pop()
        if (i, j) not in lookup:
            i, j = j, i
        if focals[i] is None:
            focals[i] = edge_focal[last if stale_focal else lookup[(i, j)]]
        e = lookup[(i, j)]
        if i in placed:
            rot, trans, scale = weighted_procrustes(preds.pts3d_i[e].reshape(-1, 3), world[i].reshape(-1, 3),
                                                    preds.conf_i[e].reshape(-1))
            world[j] = preds.pts3d_j[e] @ (scale * rot).T + trans
            placed.add(j)
        elif j in placed:
            rot, trans, scale = weighted_procrustes(preds.pts3d_j[e].reshape(-1, 3), world[j].reshape(-1, 3),
                                                    preds.conf_j[e].reshape(-1))
            world[i] = preds.pts3d_i[e] @ (scale * rot).T + trans
            placed.add(i)
        else:
            todo.insert(0, (score, i, j))  # neither end placed yet: retry after the others
            continue
        last = e
        tree_edges.append((i, j))
        if poses[i] is None:
            poses[i] = pose_matrix(rot, trans)

    # Frames never first in a tree edge: focal from their best-scoring edge as first frame.
    order = np.argsort(-scores)  # quicksort, as the official code, for identical tie-breaking
    for k in order.tolist():
        i = edges[k][0]
        if focals[i] is None:
            focals[i] = edge_focal[key(*edges[k])]
    if known_focals is not None:
        focals = [float(f) for f in known_focals.reshape(-1).expand(n).tolist()]

    # A frame that is never the first frame of an edge has no point map in its own camera: it
    # takes the other frames' mean focal (one camera per video; the official code searches 21
    # focals by PnP inliers, 9 % apart, only when none is known).
    known = [f for f in focals if f is not None]
    focals = [f if f is not None or not known else sum(known) / len(known) for f in focals]

    conf = frame_confidence(preds)
    pnp_frames = []
    for k in range(n):
        if poses[k] is None:
            found = pnp_pose(world[k], conf[k] > min_conf_thr, focals[k], (w / 2, h / 2), pnp_iterations)
            poses[k] = found[0].to(device) if found is not None else torch.eye(4, device=device)
            if found is not None:
                focals[k] = found[1]
            pnp_frames.append(k)
    fallback = max(h, w) / (2 * math.tan(math.radians(30)))  # 60 degrees field of view, never reached in practice
    focals = [fallback if f is None else f for f in focals]
    return InitialState(world_points=torch.stack(world), cam2world=torch.stack(poses).float(),
                        focals=torch.tensor(focals, dtype=torch.float32, device=device), tree_edges=tree_edges,
                        pnp_frames=pnp_frames)


def edge_similarities(preds: PairPredictions, world_points: Tensor, chunk: int = 32) -> tuple[Tensor, Tensor, Tensor]:
    """Similarity of every edge mapping its frame-i point map onto frame i's world points.

    Batched weighted Procrustes (weights conf_i), ``chunk`` edges at a time to bound memory.

    Args:
        world_points: (N, H, W, 3).
    Returns:
        R (E, 3, 3), t (E, 3), s (E,).
    """
    out = []
    for start in range(0, preds.num_edges, chunk):
        sl = slice(start, start + chunk)
        src = preds.pts3d_i[sl].flatten(1, 2)
        dst = world_points[preds.edges[sl, 0]].flatten(1, 2)
        out.append(weighted_procrustes(src, dst, preds.conf_i[sl].flatten(1, 2)))
    return tuple(torch.cat(parts) for parts in zip(*out))

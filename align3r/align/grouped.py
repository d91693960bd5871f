"""Long videos with bounded memory: keyframes first, then clips fitted onto them by a Sim(3).

The keyframes are aligned as one problem. Each clip (a run of consecutive frames that contains
at least one keyframe) is then aligned on its own, with the keyframe solution's intrinsics as
known values, and mapped onto the keyframe solution by the similarity (scale included) that best
maps the clip's world points of its keyframes onto the keyframe solution's (confidence-weighted
Procrustes). The official code re-anchors clips with a rigid transform from one pose and ignores
the scale, so every clip keeps its own arbitrary scale; here the scale is fitted.

Only one clip's predictions (and flow) are in memory at a time: ``predict`` and ``flow_fn`` are
called per graph. The result arrays grow linearly with the number of frames; the keyframe graph
should be sparse (e.g. a window over keyframes) for the keyframe problem to stay linear too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol

import roma
import torch
from torch import Tensor

from align3r.align.config import AlignConfig
from align3r.align.solve import align
from align3r.align.types import PairPredictions, Reconstruction
from align3r.errors import InputError
from align3r.flow.types import PairFlow
from align3r.pairs import PairGraph


class GroupedPairs(Protocol):
    """What :func:`align_grouped` reads from a grouped keyframe graph (frame indices are global).

    - ``num_frames``: N.
    - ``keyframe_ids``: (K,) int64 keyframe indices.
    - ``keyframe_graph``: :class:`PairGraph` over keyframes (global indices).
    - ``clip_frame_ids``: per clip, (n_c,) int64 frame indices (each clip contains >= 1 keyframe).
    - ``clip_graphs``: per clip, :class:`PairGraph` over that clip's frames (global indices).
    """

    num_frames: int
    keyframe_ids: Tensor
    keyframe_graph: PairGraph
    clip_frame_ids: Sequence[Tensor]
    clip_graphs: Sequence[PairGraph]


def _local_index(frame_ids: Tensor, num_global: int) -> Tensor:
    table = torch.full((num_global,), -1, dtype=torch.int64)
    table[frame_ids.cpu()] = torch.arange(len(frame_ids))
    return table


def localise_predictions(preds: PairPredictions, frame_ids: Tensor) -> PairPredictions:
    """Renumber the edges of ``preds`` (global frame indices) to 0..len(frame_ids)-1."""
    table = _local_index(frame_ids, max(preds.num_frames, int(frame_ids.max()) + 1))
    local = table[preds.edges.cpu()]
    if (local < 0).any():
        raise InputError("a predicted edge refers to a frame outside its group; predict() must return the edges "
                         "of the graph it was given")
    return PairPredictions(edges=local.to(preds.edges.device), pts3d_i=preds.pts3d_i, pts3d_j=preds.pts3d_j,
                           conf_i=preds.conf_i, conf_j=preds.conf_j, num_frames=len(frame_ids))


def localise_flow(flow: PairFlow, frame_ids: Tensor, num_global: int) -> PairFlow:
    """Renumber the edges of a :class:`PairFlow` like :func:`localise_predictions`."""
    table = _local_index(frame_ids, max(num_global, int(frame_ids.max()) + 1))
    return PairFlow(edges=table[flow.edges.cpu()].to(flow.edges.device), flow_ij=flow.flow_ij,
                    flow_ji=flow.flow_ji, valid_ij=flow.valid_ij, valid_ji=flow.valid_ji)


def fit_similarity(source: Tensor, target: Tensor, weights: Tensor, with_scale: bool = True
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """Weighted Procrustes ``x -> s R x + t`` from (P, 3) ``source`` onto ``target``; ``s = 1`` if not ``with_scale``.

    Returns R (3, 3), t (3,), s (0-dim).
    """
    if with_scale:
        return roma.rigid_points_registration(source, target, weights=weights, compute_scaling=True)
    rot, trans = roma.rigid_points_registration(source, target, weights=weights)
    return rot, trans, torch.ones((), dtype=source.dtype, device=source.device)


def window_keyframe_graph(graph: PairGraph, keyframe_ids: Tensor, window: int) -> PairGraph:
    """Keep the keyframe edges whose keyframes are at most ``window`` keyframes apart.

    The official keyframe graph is complete (K (K - 1) edges, quadratic in the video length);
    a window keeps it linear. Edge order (and a symmetric layout) is preserved.
    """
    rank = _local_index(keyframe_ids, graph.num_frames)
    local = rank[graph.edges.cpu()]
    keep = (local[:, 0] - local[:, 1]).abs() <= window
    return PairGraph(graph.edges[keep.to(graph.edges.device)], graph.num_frames, f"{graph.name}-window{window}",
                     graph.symmetric)


def align_grouped(graph: GroupedPairs, predict: Callable[[PairGraph], PairPredictions],
                  config: AlignConfig | None = None, *, flow_fn: Callable[[PairGraph], PairFlow] | None = None,
                  clip_config: AlignConfig | None = None, known_intrinsics=None, mono_depth: Tensor | None = None,
                  known_poses=None, dynamic_mask=None, fit_scale: bool = True, keyframe_window: int | None = 10,
                  progress: bool = True) -> Reconstruction:
    """Align a long video clip by clip against a keyframe solution.

    Args:
        graph: grouped keyframe graph (:class:`GroupedPairs`).
        predict: network inference for one :class:`PairGraph` (edges in global indices).
        config: settings of the keyframe alignment (default: the paper's).
        flow_fn: optical flow for one :class:`PairGraph`; enables the flow term and motion masks.
        clip_config: settings of the clip alignments (default: ``config``).
        known_intrinsics: (3, 3) or (N, 3, 3), passed to the keyframe alignment.
        mono_depth: (N, H, W) monocular depth for ``parametrisation="scale_map"`` (each group
            gets its frames' slice).
        known_poses: (N, 4, 4) camera-to-world. Held fixed (``config.known_poses_fixed``) in
            every problem, keyframes and clips, so every frame keeps its pose and the clips need
            no Sim(3); else each problem starts from its frames' poses (and their units).
        dynamic_mask: (N, H, W) bool, True on moving pixels: each problem gets its frames' slice
            instead of the self-motion masks.
        fit_scale: map clips with a Sim(3) (True) or only rigidly (False, the official behaviour).
        keyframe_window: keep only keyframe pairs at most this many keyframes apart (None: the
            graph as given). The default changes nothing up to 11 keyframes (about 100 frames
            with the official clip size) and keeps the keyframe problem linear beyond.
        progress: tqdm bars.

    Returns:
        :class:`Reconstruction` of all N frames. Keyframes keep the keyframe solution's depth,
        pose and intrinsics; ``loss_history`` is the keyframe alignment's; ``loss_terms`` holds
        ``{"clip_<k>": history}`` for every clip. When one clip holds every frame (a video no
        longer than a clip, e.g. N = 2..4 with the official rule) it is aligned as one flat
        problem with ``config`` and its result (loss terms included) is returned as it is.

    Memory: one clip's predictions (or the keyframe graph's) at a time plus 5 N H W floats of
    results.
    """
    config = config or AlignConfig()
    clip_config = clip_config or config
    n = int(graph.num_frames)
    keyframes = torch.as_tensor(graph.keyframe_ids, dtype=torch.int64).reshape(-1)
    if len(graph.clip_frame_ids) != len(graph.clip_graphs):
        raise InputError("the grouped graph has a different number of clip frame lists and clip graphs")
    covered = torch.zeros(n, dtype=torch.bool)
    covered[keyframes] = True
    for frame_ids in graph.clip_frame_ids:
        covered[torch.as_tensor(frame_ids, dtype=torch.int64)] = True
    if not covered.all():
        missing = torch.nonzero(~covered).flatten().tolist()
        raise InputError(f"frames {missing[:10]} are in no clip and are not keyframes; every frame needs a clip")

    def part(values, frame_ids: Tensor):  # a per-frame input's rows for one problem
        if values is None:
            return None
        values = torch.as_tensor(values)
        return values[frame_ids.to(values.device)]

    def mono(frame_ids: Tensor) -> Tensor | None:
        return part(mono_depth, frame_ids)

    fixed_poses = known_poses is not None and config.known_poses_fixed
    if known_poses is not None:
        known_poses = torch.as_tensor(known_poses, dtype=torch.float32)
        if known_poses.shape != (n, 4, 4):
            raise InputError(f"known_poses must be (N, 4, 4) camera-to-world with N = {n}, "
                             f"got {tuple(known_poses.shape)}")
        clip_config = clip_config.replace(known_poses_fixed=config.known_poses_fixed)

    if keyframes.numel() < 2 and len(graph.clip_graphs) == 1:
        # N <= the clip size: one clip holds every frame and there is nothing to anchor it to, so
        # it is one flat problem (with the keyframe settings: it is the whole video)
        frame_ids = torch.as_tensor(graph.clip_frame_ids[0], dtype=torch.int64).reshape(-1)
        clip_graph = graph.clip_graphs[0]
        preds = localise_predictions(predict(clip_graph), frame_ids)
        flow = localise_flow(flow_fn(clip_graph), frame_ids, n) if flow_fn is not None else None
        rec = align(preds, config, flow=flow, known_intrinsics=known_intrinsics, mono_depth=mono(frame_ids),
                    known_poses=part(known_poses, frame_ids), dynamic_mask=part(dynamic_mask, frame_ids),
                    progress=progress)
        rec.frame_ids = frame_ids.to(rec.depth.device)
        return rec

    key_graph = graph.keyframe_graph
    if keyframe_window is not None:
        key_graph = window_keyframe_graph(key_graph, keyframes, keyframe_window)
    key_preds = localise_predictions(predict(key_graph), keyframes)
    device = key_preds.pts3d_i.device
    h, w = key_preds.image_size
    key_flow = None
    if flow_fn is not None:
        key_flow = localise_flow(flow_fn(key_graph), keyframes, n)
    k_known = None
    if known_intrinsics is not None:
        k_known = torch.as_tensor(known_intrinsics, dtype=torch.float32)
        k_known = k_known[keyframes] if k_known.dim() == 3 else k_known
    key_rec = align(key_preds, config, flow=key_flow, known_intrinsics=k_known, mono_depth=mono(keyframes),
                    known_poses=part(known_poses, keyframes), dynamic_mask=part(dynamic_mask, keyframes),
                    progress=progress and f"global alignment (keyframes: {keyframes.numel()} frames)")
    del key_preds, key_flow
    key_world = key_rec.world_points()  # (K, H, W, 3)

    depth = torch.zeros(n, h, w, device=device)
    cam2world = torch.eye(4, device=device).repeat(n, 1, 1)
    intrinsics = torch.zeros(n, 3, 3, device=device)
    conf = torch.zeros(n, h, w, device=device)
    dynamic = torch.zeros(n, h, w, dtype=torch.bool, device=device)
    keyslot = _local_index(keyframes, n)
    depth[keyframes] = key_rec.depth
    cam2world[keyframes] = key_rec.cam2world
    intrinsics[keyframes] = key_rec.intrinsics
    conf[keyframes] = key_rec.conf
    dynamic[keyframes] = key_rec.dynamic_mask

    # Clips share the camera: they take the keyframe focal (fixed when the focal is shared).
    clip_k = key_rec.intrinsics.mean(0) if clip_config.shared_focal else None
    if clip_k is not None:
        clip_config = clip_config.replace(known_intrinsics_fixed=True)
    clip_histories: dict[str, list[float]] = {}
    for c, (frame_ids, clip_graph) in enumerate(zip(graph.clip_frame_ids, graph.clip_graphs)):
        frame_ids = torch.as_tensor(frame_ids, dtype=torch.int64).reshape(-1)
        anchors = torch.nonzero(keyslot[frame_ids] >= 0).flatten()
        if anchors.numel() == 0:
            raise InputError(f"clip {c} (frames {frame_ids[:5].tolist()}...) contains no keyframe; every clip must "
                             "share at least one frame with the keyframe graph")
        preds = localise_predictions(predict(clip_graph), frame_ids)
        flow = localise_flow(flow_fn(clip_graph), frame_ids, n) if flow_fn is not None else None
        k_clip = clip_k if clip_k is not None else key_rec.intrinsics[keyslot[frame_ids[anchors]]].mean(0)
        rec = align(preds, clip_config, flow=flow, known_intrinsics=k_clip, mono_depth=mono(frame_ids),
                    known_poses=part(known_poses, frame_ids), dynamic_mask=part(dynamic_mask, frame_ids),
                    progress=progress and f"global alignment (clip {c + 1} of {len(graph.clip_graphs)})")
        del preds, flow
        clip_histories[f"clip_{c}"] = rec.loss_history

        # Similarity that maps the clip's keyframe points onto the keyframe solution.
        key_local = keyslot[frame_ids[anchors]].to(device)
        anchors = anchors.to(device)
        src = rec.world_points()[anchors].reshape(-1, 3)
        dst = key_world[key_local].reshape(-1, 3)
        weight = torch.minimum(rec.conf[anchors], key_rec.conf[key_local]).log().reshape(-1)
        rot, trans, scale = fit_similarity(src.double(), dst.double(), weight.double(), with_scale=fit_scale)
        rot, trans, scale = rot.float(), trans.float(), scale.float()
        if fixed_poses:  # the clip is already in the keyframes' (the user's) frame: keep its poses exactly
            rot, trans, scale = torch.eye(3, device=device), torch.zeros(3, device=device), scale.new_ones(())

        frame_ids = frame_ids.to(device)
        others = torch.ones(len(frame_ids), dtype=torch.bool, device=device)
        others[anchors] = False
        ids = frame_ids[others]
        poses = rec.cam2world[others]
        mapped = poses.clone()
        mapped[:, :3, :3] = rot @ poses[:, :3, :3]
        mapped[:, :3, 3] = scale * poses[:, :3, 3] @ rot.T + trans
        depth[ids] = scale * rec.depth[others]
        cam2world[ids] = mapped
        intrinsics[ids] = rec.intrinsics[others]
        conf[ids] = rec.conf[others]
        dynamic[ids] = rec.dynamic_mask[others]
        dynamic[frame_ids[anchors]] |= rec.dynamic_mask[anchors]
    return Reconstruction(depth=depth, cam2world=cam2world, intrinsics=intrinsics, conf=conf, dynamic_mask=dynamic,
                          loss_history=key_rec.loss_history, loss_terms=clip_histories,
                          frame_ids=torch.arange(n, device=device))

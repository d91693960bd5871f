"""``align()``: pair predictions in, a consistent reconstruction out.

Validates the input, computes the motion masks when a flow is given, initialises from the
maximum spanning tree, builds the :class:`SceneModel`, optimises the composed objective and
packs a :class:`Reconstruction`.
"""

from __future__ import annotations

import math

import numpy as np
import roma
import torch
from torch import Tensor

from align3r.align.config import AlignConfig
from align3r.align.init import InitialState, edge_similarities, frame_confidence, spanning_tree_init
from align3r.align.motion import self_motion_masks
from align3r.align.optimize import FlowTerm, Objective, optimise
from align3r.align.scene import SceneModel
from align3r.align.types import PairPredictions, Reconstruction
from align3r.errors import InputError
from align3r.flow.types import PairFlow
from align3r.geometry import invert_pose, transform_points


def _as_tensor(value, name: str, device) -> Tensor:
    if isinstance(value, np.ndarray):
        value = torch.from_numpy(value)
    if not isinstance(value, Tensor):
        raise InputError(f"{name} must be a tensor or numpy array, got {type(value).__name__}")
    return value.to(device=device, dtype=torch.float32)


def check_predictions(preds: PairPredictions) -> None:
    """Raise :class:`InputError` on predictions the alignment cannot use."""
    if preds.num_frames < 2:
        raise InputError(f"global alignment needs at least 2 frames, got {preds.num_frames}")
    if preds.num_edges == 0:
        raise InputError("the prediction holds no edges")
    for name in ("pts3d_i", "pts3d_j", "conf_i", "conf_j"):
        if not torch.isfinite(getattr(preds, name)).all():
            raise InputError(f"PairPredictions.{name} contains NaN or infinite values; check the network input "
                             "(images and depth prior) for NaN/inf")
    low = float(torch.minimum(preds.conf_i.min(), preds.conf_j.min()))
    if low <= 1:
        raise InputError(f"confidences must be > 1 (the network outputs 1 + exp(c)); the smallest is {low:g}. "
                         "For uniform weights use AlignConfig(conf_override=10)")
    seen = torch.zeros(preds.num_frames, dtype=torch.bool)
    seen[preds.edges.reshape(-1).cpu()] = True
    if not seen.all():
        missing = torch.nonzero(~seen).flatten().tolist()
        raise InputError(f"frames {missing[:10]} appear in no edge; every frame needs at least one pair")


def override_confidence(preds: PairPredictions, value: float) -> PairPredictions:
    """Every raw confidence above 1 replaced by ``value`` (official depth_test.py uses 10)."""
    def over(c: Tensor) -> Tensor:
        return torch.where(c > 1, torch.full_like(c, value), c)
    return PairPredictions(edges=preds.edges, pts3d_i=preds.pts3d_i, pts3d_j=preds.pts3d_j,
                           conf_i=over(preds.conf_i), conf_j=over(preds.conf_j), num_frames=preds.num_frames)


def _check_flow(flow: PairFlow, preds: PairPredictions) -> None:
    if flow.num_edges != preds.num_edges or not torch.equal(flow.edges.cpu(), preds.edges.cpu()):
        raise InputError("the flow's edges differ from the predictions' edges; compute the flow for the same "
                         "pair graph, in the same order")
    if tuple(flow.flow_ij.shape[-2:]) != preds.image_size:
        raise InputError(f"flow is {tuple(flow.flow_ij.shape[-2:])} but predictions are {preds.image_size} (H, W); "
                         "compute the flow at the network resolution")


def _known_intrinsics(value, n: int, device) -> Tensor:
    k = _as_tensor(value, "known_intrinsics", device)
    if k.shape == (3, 3):
        k = k.expand(n, 3, 3)
    if k.shape != (n, 3, 3):
        raise InputError(f"known_intrinsics must be (3, 3) or (N, 3, 3) with N = {n}, got {tuple(k.shape)}")
    if not torch.isfinite(k).all() or (k[:, 0, 0] <= 0).any() or (k[:, 1, 1] <= 0).any():
        raise InputError("known_intrinsics must be finite with positive focal lengths (pixels at network resolution)")
    return k


def _known_poses(value, n: int, device) -> Tensor:
    p = _as_tensor(value, "known_poses", device)
    if p.shape != (n, 4, 4):
        raise InputError(f"known_poses must be (N, 4, 4) camera-to-world with N = {n}, got {tuple(p.shape)}")
    rot = p[:, :3, :3]
    err = (rot.transpose(1, 2) @ rot - torch.eye(3, device=device)).abs().amax()
    if not torch.isfinite(p).all() or err > 1e-3 or (torch.linalg.det(rot) <= 0).any():
        raise InputError("known_poses must be finite rigid camera-to-world transforms (rotation part orthonormal, "
                         "det +1)")
    return p


def align_pose_sets(source: Tensor, target: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Similarity ``(s, R, t)`` mapping camera poses ``source`` onto ``target`` (N, 4, 4).

    Fits camera centres and points a little along each optical axis (a hundredth of the median
    distance between cameras), so that a single pose or collinear centres still fix the rotation.
    """
    centres = source[:, :3, 3]
    dist = torch.cdist(centres, centres)
    eps = dist[dist > 0].median() / 100 if (dist > 0).any() else torch.tensor(0.01, device=source.device)

    def pts(poses: Tensor) -> Tensor:
        return torch.cat((poses[:, :3, 3], poses[:, :3, 3] + eps * poses[:, :3, 2]))
    rot, trans, scale = roma.rigid_points_registration(pts(source), pts(target), compute_scaling=True)
    return scale, rot, trans


def build_scene(preds: PairPredictions, init: InitialState, config: AlignConfig, *, mono_depth: Tensor | None = None,
                known_intrinsics: Tensor | None = None, known_poses: Tensor | None = None) -> SceneModel:
    """Scene parameters from the spanning-tree state (official ``init_from_pts3d``).

    The edge similarities are fitted to the tree's world points, the scale is normalised so the
    edge scales' geometric mean is ``config.base_scale`` (unless known poses set the units), and
    each frame's depth is its world points' z in its camera.
    """
    n, (h, w) = preds.num_frames, preds.image_size
    world, poses = init.world_points, init.cam2world.clone()
    if known_poses is not None:  # bring the tree into the user's frame and units first
        s, rot, trans = align_pose_sets(poses, known_poses)
        world = world @ (s * rot).T + trans
        poses = torch.cat((rot @ poses[:, :3, :3], (s * poses[:, :3, 3] @ rot.T + trans)[..., None]), dim=2)
        poses = torch.cat((poses, known_poses[:, 3:]), dim=1)
    rot_e, trans_e, scale_e = edge_similarities(preds, world)
    factor = 1.0 if known_poses is not None else float(torch.exp(math.log(config.base_scale) - scale_e.log().mean()))
    poses[:, :3, 3] *= factor
    world = world * factor
    depth = transform_points(invert_pose(poses), world)[..., 2]

    fix_poses = known_poses is not None and config.known_poses_fixed
    focals = init.focals
    shared = config.shared_focal
    if known_intrinsics is not None:
        focals = (known_intrinsics[:, 0, 0] + known_intrinsics[:, 1, 1]) / 2
        shared = shared and bool(torch.allclose(focals, focals[0].expand_as(focals)))
    model = SceneModel(n, preds.num_edges, h, w, shared_focal=shared, parametrisation=config.parametrisation,
                       mono_depth=mono_depth, base_scale=config.base_scale, normalise_edge_scale=not fix_poses,
                       device=preds.pts3d_i.device)
    model.set_state(depth=depth, cam2world=known_poses if fix_poses else poses, focals=focals,
                    edge_rotation=rot_e, edge_translation=trans_e * factor, edge_scale=scale_e * factor,
                    principal_point=None if known_intrinsics is None else known_intrinsics[:, :2, 2])
    if known_poses is not None and not fix_poses:
        model.pin_scale_to_current()  # keep the user's units instead of base_scale
    if fix_poses:
        model.pose_quat.requires_grad_(False)
        model.pose_trans.requires_grad_(False)
    if known_intrinsics is not None and config.known_intrinsics_fixed:
        model.focal_param.requires_grad_(False)
    return model


def align(preds: PairPredictions, config: AlignConfig | None = None, *, flow: PairFlow | None = None,
          dynamic_mask: Tensor | None = None, mono_depth: Tensor | None = None, known_intrinsics=None,
          known_poses=None, progress: bool | str = True) -> Reconstruction:
    """Global alignment of pairwise point maps into per-frame depth, poses and intrinsics.

    Args:
        preds: the network's predictions for every edge (frames 0..N-1, one resolution H x W).
        config: settings (default: the paper's, :data:`align3r.align.PRESETS` ``"paper"``).
        flow: optical flow of the same edges; switches on the flow loss and, unless
            ``dynamic_mask`` is given, the self-motion masks. Without it the flow term is off.
        dynamic_mask: (N, H, W) bool, True on moving objects (excluded from the flow loss).
        mono_depth: (N, H, W) positive monocular depth at network resolution; required by
            ``parametrisation="scale_map"``.
        known_intrinsics: (3, 3) or (N, 3, 3) pinhole K at network resolution; held fixed or used
            as initial value (``config.known_intrinsics_fixed``); its principal point is kept.
        known_poses: (N, 4, 4) camera-to-world; held fixed (then they also set the units) or used
            as initial values (``config.known_poses_fixed``).
        progress: show a tqdm bar (a string: shown with that label, e.g. which problem it is).

    Returns:
        :class:`Reconstruction` with ``loss_history`` (total loss per iteration, before its step)
        and ``loss_terms`` (unweighted term values per iteration).

    Memory (float32 values, E edges, N frames, P = H W pixels): the predictions (8 E P, the
    caller's) plus their channels-first copy and log-confidence weights (8 E P), a reused
    workspace (4 E P + 6 N P, plus a few N P temporaries), the scene parameters with Adam's moments (about 4 N P); with a
    flow, the flows (4 E P) and the flow term's reused workspace (14 E P, one direction at a
    time). Initialisation temporaries stay below that (chunked). CPU or CUDA, whatever device
    ``preds`` is on.
    """
    config = config or AlignConfig()
    check_predictions(preds)
    if config.conf_override is not None:
        preds = override_confidence(preds, config.conf_override)
    device = preds.pts3d_i.device
    n, (h, w) = preds.num_frames, preds.image_size

    if dynamic_mask is not None:
        dynamic_mask = torch.as_tensor(dynamic_mask, device=device).bool()
        if dynamic_mask.shape != (n, h, w):
            raise InputError(f"dynamic_mask must be (N, H, W) = {(n, h, w)}, got {tuple(dynamic_mask.shape)}")
    if flow is not None:
        _check_flow(flow, preds)
        if dynamic_mask is None:
            dynamic_mask = self_motion_masks(preds, flow, threshold=config.motion_mask_threshold,
                                             min_conf_thr=config.min_conf_thr,
                                             pnp_iterations=config.motion_pnp_iterations)
    if dynamic_mask is None:
        dynamic_mask = torch.zeros(n, h, w, dtype=torch.bool, device=device)

    if config.parametrisation == "scale_map":
        if mono_depth is None:
            raise InputError("parametrisation 'scale_map' needs mono_depth (N, H, W) at network resolution")
        mono_depth = _as_tensor(mono_depth, "mono_depth", device)
        if mono_depth.shape != (n, h, w):
            raise InputError(f"mono_depth must be (N, H, W) = {(n, h, w)}, got {tuple(mono_depth.shape)}")
        if not torch.isfinite(mono_depth).all() or (mono_depth <= 0).any():
            raise InputError("mono_depth must be finite and > 0 everywhere (depth, not disparity; fill holes first)")
    k_known = None if known_intrinsics is None else _known_intrinsics(known_intrinsics, n, device)
    p_known = None if known_poses is None else _known_poses(known_poses, n, device)

    init = spanning_tree_init(preds, min_conf_thr=config.min_conf_thr, pnp_iterations=config.pnp_iterations,
                              stale_focal=config.mst_stale_focal,
                              known_focals=None if k_known is None else (k_known[:, 0, 0] + k_known[:, 1, 1]) / 2)
    model = build_scene(preds, init, config, mono_depth=mono_depth, known_intrinsics=k_known, known_poses=p_known)
    del init
    flow_term = None
    if flow is not None and config.flow_weight > 0:
        flow_term = FlowTerm(edges=preds.edges, flow_ij=flow.flow_ij.to(device).float().contiguous(),
                             flow_ji=flow.flow_ji.to(device).float().contiguous(), static=~dynamic_mask)
    objective = Objective(preds, config, flow_term)
    history, terms = optimise(model, objective, config, progress=progress)
    with torch.no_grad():
        # fixed known poses are returned as given, not through the quaternion parametrisation
        fixed = p_known is not None and config.known_poses_fixed
        return Reconstruction(depth=model.depth_maps().detach().clone(),
                              cam2world=p_known.clone() if fixed else model.cam2world().detach(),
                              intrinsics=model.intrinsics().detach(), conf=frame_confidence(preds),
                              dynamic_mask=dynamic_mask, loss_history=history, loss_terms=terms,
                              frame_ids=torch.arange(n, device=device))

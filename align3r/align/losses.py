"""Loss terms of the global alignment, each evaluated for all edges at once.

- :class:`AlignmentLoss`: confidence-weighted L1 of the 3-D residual between each frame's world
  points and every edge's point maps mapped by the edge similarity (the official objective).
- :func:`temporal_smoothness`: consecutive camera poses should move little.
- :func:`flow_loss`: MonST3R's term, the ego-motion flow implied by the current depth, poses and
  intrinsics against the optical flow, on static pixels.

The 3-D term dominates the cost (E x H x W residuals per side). It is one custom autograd
function that computes the value and its gradient in the same pass over reusable work buffers,
channels-first so the per-edge similarity is a wide batched matmul, with residuals taken in each
frame's camera so that no (N, 3, H W) world-point tensor enters autograd: peak extra memory is
4 E H W + 6 N H W floats whatever the number of iterations, and the work is a handful of passes
over the point maps (see docs/align.md for the figures).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


class Workspace:
    """Work buffers reused across iterations (large CPU allocations cost page faults every time)."""

    def __init__(self) -> None:
        self._buffers: dict[str, Tensor] = {}

    def get(self, name: str, shape: tuple[int, ...], like: Tensor) -> Tensor:
        buf = self._buffers.get(name)
        if buf is None or buf.shape != shape or buf.dtype != like.dtype or buf.device != like.device:
            buf = torch.empty(shape, dtype=like.dtype, device=like.device)
            self._buffers[name] = buf
        return buf


@dataclass
class EdgeSide:
    """One side (i or j) of every edge: whose pixels, which points, how much they weigh.

    - ``frame``: (E,) int64 frame of each edge's point map on this side;
    - ``points``: (E, 3, P) the point maps, channels first, in camera i's frame (network units);
    - ``weights``: (E, P) per-pixel weights.
    """

    frame: Tensor
    points: Tensor
    weights: Tensor


class _CameraFrameAlignment(torch.autograd.Function):
    """``sum_sides sum_{e,p} w * || cam[frame_e](p) - (M_e x_e(p) + c_e) ||`` with
    ``cam_n(p) = d_n(p) * ((u - cx_n) / f_n, (v - cy_n) / f_n, 1)``.

    Residuals are taken in each frame's camera (a rotation keeps norms), so the frame poses enter
    only through the small per-edge (M, c), and the dense work is a few passes over the point
    maps in reusable buffers. The gradients w.r.t. depth, focal, M and c are formed in the
    forward pass (the loss is a scalar: backward only rescales them); a zero residual has a zero
    gradient.

    Inputs: depth (N, P), focal (N,), then (M (E, 3, 3), c (E, 3)) per side, and a non-tensor
    ``(pixels (2, P), principal_point (N, 2), sides, workspace)``.
    """

    @staticmethod
    def forward(ctx, depth, focal, linear_i, offset_i, linear_j, offset_j, data):
        pixels, pp, sides, ws = data
        n, p = depth.shape
        centred_u = pixels[0][None] - pp[:, 0:1]  # (N, P)
        centred_v = pixels[1][None] - pp[:, 1:2]
        cam = ws.get("cam", (n, 3, p), depth)
        depth_over_f = depth / focal[:, None]
        torch.mul(centred_u, depth_over_f, out=cam[:, 0])
        torch.mul(centred_v, depth_over_f, out=cam[:, 1])
        cam[:, 2].copy_(depth)
        need_grad = any(ctx.needs_input_grad[:6])
        grad_cam = ws.get("grad_cam", (n, 3, p), depth).zero_() if need_grad else None
        total = depth.new_zeros(())
        grads = []
        for side, linear, offset in zip(sides, (linear_i, linear_j), (offset_i, offset_j)):
            e = side.points.shape[0]
            diff = ws.get("diff", (e, 3, p), depth)
            torch.index_select(cam, 0, side.frame, out=diff)
            diff.sub_(offset.unsqueeze(-1))
            diff.baddbmm_(linear, side.points, alpha=-1)  # residual = cam - c - M x
            dist = ws.get("dist", (e, p), depth)
            torch.mul(diff[:, 0], diff[:, 0], out=dist)
            dist.addcmul_(diff[:, 1], diff[:, 1])
            dist.addcmul_(diff[:, 2], diff[:, 2])
            dist.sqrt_()
            total += torch.dot(dist.reshape(-1), side.weights.reshape(-1))
            if need_grad:
                # weight times the unit residual; clamping makes 0/0 a zero (sub)gradient
                torch.div(side.weights, dist.clamp_min_(torch.finfo(dist.dtype).tiny), out=dist)
                diff.mul_(dist.unsqueeze(1))
                grad_cam.index_add_(0, side.frame, diff)
                grads += [torch.bmm(diff, side.points.transpose(1, 2)).neg_(), diff.sum(2).neg_()]
        if need_grad:
            along = grad_cam[:, 0] * centred_u + grad_cam[:, 1] * centred_v  # (N, P)
            grad_depth = along / focal[:, None] + grad_cam[:, 2]
            grad_focal = (along * depth).sum(1).div_(focal.square()).neg_()
            ctx.save_for_backward(grad_depth, grad_focal, *grads)
        return total

    @staticmethod
    def backward(ctx, grad):
        return (*(g * grad for g in ctx.saved_tensors), None)


class AlignmentLoss:
    """The confidence-weighted 3-D alignment term for a fixed set of edge predictions.

    ``L = sum_e sum_p w_i ||P_i(p) - T_e(X_i^e(p))|| / (E H W) + (same for the j side)`` with
    ``w = log(conf)``, ``P_n`` frame n's world points and ``T_e`` the edge similarity (the
    official objective; evaluated in each frame's camera, which leaves every norm unchanged).

    Args:
        edges: (E, 2) int64 frame indices (i, j).
        pts3d_i, pts3d_j: (E, H, W, 3) point maps in camera i's frame.
        weight_i, weight_j: (E, H, W) per-pixel weights.

    Memory: keeps channels-first copies of the point maps and weights (8 E H W floats) and a
    workspace of 4 E H W + 6 N H W floats; no per-iteration allocation of that size.
    """

    def __init__(self, edges: Tensor, pts3d_i: Tensor, pts3d_j: Tensor, weight_i: Tensor, weight_j: Tensor) -> None:
        e, h, w, _ = pts3d_i.shape
        self.sides = tuple(
            EdgeSide(frame=edges[:, k].contiguous(), points=pts.reshape(e, h * w, 3).transpose(1, 2).contiguous(),
                     weights=weight.reshape(e, h * w).contiguous())
            for k, pts, weight in ((0, pts3d_i, weight_i), (1, pts3d_j, weight_j)))
        self.normaliser = float(e * h * w)
        self._workspace = Workspace()

    def __call__(self, depth: Tensor, focals: Tensor, principal_point: Tensor, pixels: Tensor, rotations: Tensor,
                 translations: Tensor, edge_linear: Tensor, edge_offset: Tensor) -> Tensor:
        """0-dim loss.

        Args:
            depth: (N, P) z-depth; focals: (N,); principal_point: (N, 2); pixels: (2, P) (u, v).
            rotations, translations: (N, 3, 3), (N, 3) camera-to-world.
            edge_linear, edge_offset: (E, 3, 3) = s R_e and (E, 3) = s t_e, edge to world.
        """
        per_side = []
        for side in self.sides:  # world -> camera of the side's frame: M = R^T A, c = R^T (b - t)
            rot_t = rotations[side.frame].transpose(1, 2)
            per_side += [rot_t @ edge_linear, (rot_t @ (edge_offset - translations[side.frame]).unsqueeze(-1))[..., 0]]
        data = (pixels, principal_point, self.sides, self._workspace)
        return _CameraFrameAlignment.apply(depth, focals, *per_side, data) / self.normaliser


def temporal_smoothness(rotations: Tensor, translations: Tensor, translation_weight: float = 1.0) -> Tensor:
    """``sum_n ||R_rel - I||_F + translation_weight * ||t_rel||`` over consecutive frames.

    ``[R_rel | t_rel] = P_n^-1 P_{n+1}`` for camera-to-world poses P (frame index order).

    Args:
        rotations: (N, 3, 3); translations: (N, 3).
    Returns:
        0-dim tensor (0 for a single frame).
    """
    r0t = rotations[:-1].transpose(-1, -2)
    rot_rel = r0t @ rotations[1:]
    trans_rel = (r0t @ (translations[1:] - translations[:-1]).unsqueeze(-1)).squeeze(-1)
    eye = torch.eye(3, dtype=rotations.dtype, device=rotations.device)
    rot_term = torch.linalg.matrix_norm(rot_rel - eye)
    trans_term = torch.linalg.vector_norm(trans_rel, dim=-1)
    return (rot_term + translation_weight * trans_term).sum()


EGO_EPS = 1e-6  # the official ego-flow epsilon, in the disparity and the dehomogenisation


class _EgoFlowSmoothL1(torch.autograd.Function):
    """Official MonST3R flow reduction for one direction, fused: for every edge e and pixel p of
    its source frame s_e,

    ``q = H_e (u, v, 1) + g_e / (d_s(p) + eps)``, ``ego = q_xy / (q_z + eps) - (u, v)``,
    ``r = m (ego - F)`` (m: static mask of the source pixel), smooth-L1 (beta 1) per element,
    elements with a loss at or above the cut-off (and dynamic pixels) dropped, mean over the
    kept elements (0 when none is kept).

    Inputs: depth (N, P), H (E, 3, 3) = K_dst R_rel K_src^-1, g (E, 3) = K_dst t_rel, and a
    non-tensor ``(source (E,), static (N, P) float, flow (E, 2, P), pixels (3, P), cut-off,
    workspace)``. Gradients are formed in the forward pass in reusable buffers (the kept set and
    its size are piecewise constant, as under autograd).
    """

    @staticmethod
    def forward(ctx, depth, homography, shift, data):
        source, static, flow, pixels, cutoff, ws = data
        e, p = source.numel(), depth.shape[1]
        disp = ws.get("disp", (e, p), depth)
        torch.index_select(depth, 0, source, out=disp)
        disp.add_(EGO_EPS).reciprocal_()
        q = ws.get("q", (e, 3, p), depth)
        torch.mm(homography.reshape(3 * e, 3), pixels, out=q.view(3 * e, p))
        q.addcmul_(shift.unsqueeze(-1), disp.unsqueeze(1))
        wz = ws.get("wz", (e, p), depth)
        torch.add(q[:, 2], EGO_EPS, out=wz)
        diff = ws.get("diff", (e, 2, p), depth)
        torch.div(q[:, :2], wz.unsqueeze(1), out=diff)
        diff.sub_(pixels[:2]).sub_(flow)  # ego - F
        mask = ws.get("mask", (e, p), depth)
        torch.index_select(static, 0, source, out=mask)
        diff.mul_(mask.unsqueeze(1))
        clipped = ws.get("clipped", (e, 2, p), depth)
        torch.clamp(diff, -1.0, 1.0, out=clipped)  # also the smooth-L1 derivative
        rho = ws.get("rho", (e, 2, p), depth)
        torch.abs(diff, out=rho)
        torch.abs(clipped, out=diff)
        rho.sub_(diff, alpha=0.5).mul_(diff)  # |d| < 1: d^2 / 2, else |d| - 1/2
        keep = ws.get("keep", (e, 2, p), depth)
        if cutoff > 0:
            torch.lt(rho, cutoff, out=diff)
            torch.mul(diff, mask.unsqueeze(1), out=keep)
        else:
            keep.copy_(mask.unsqueeze(1).expand_as(keep))
        count = keep.sum().clamp_min_(1)
        loss = torch.dot(rho.reshape(-1), keep.reshape(-1)) / count
        if any(ctx.needs_input_grad[:3]):
            clipped.mul_(keep).div_(count)  # dL/d ego
            along_q = clipped[:, 0] * q[:, 0]  # G . q_xy, needed for dL/dq_z before q is overwritten
            along_q.addcmul_(clipped[:, 1], q[:, 1])
            grad_q = q  # reuse the buffer
            torch.div(clipped[:, 0], wz, out=grad_q[:, 0])
            torch.div(clipped[:, 1], wz, out=grad_q[:, 1])
            torch.div(along_q, wz.square_(), out=grad_q[:, 2])
            grad_q[:, 2].neg_()
            grad_h = torch.mm(grad_q.reshape(3 * e, p), pixels.T).reshape(e, 3, 3)
            grad_g = torch.bmm(grad_q, disp.unsqueeze(-1)).squeeze(-1)
            along = torch.bmm(shift.unsqueeze(1), grad_q).squeeze(1)  # dL/d disparity, (E, P)
            along.mul_(disp.square_()).neg_()  # d disparity / d depth = -disparity^2
            grad_depth = torch.zeros_like(depth).index_add_(0, source, along)
            ctx.save_for_backward(grad_depth, grad_h, grad_g)
        return loss

    @staticmethod
    def backward(ctx, grad):
        return (*(g * grad for g in ctx.saved_tensors), None)


def flow_loss(depth: Tensor, rotations: Tensor, translations: Tensor, intrinsics: Tensor, edges: Tensor,
              flow_ij: Tensor, flow_ji: Tensor, static: Tensor, pixel_cutoff: float = 50.0,
              workspace: Workspace | None = None) -> Tensor:
    """MonST3R flow loss, both directions, all edges at once.

    For each edge (i, j), the flow that the current depth of frame i, the poses and intrinsics
    imply (:func:`align3r.geometry.ego_flow`, official epsilons) is compared with the optical
    flow from i to j on frame i's static pixels by the official smooth-L1 reduction (and the same
    from j to i).

    Args:
        depth: (N, H, W); rotations (N, 3, 3); translations (N, 3); intrinsics (N, 3, 3).
        edges: (E, 2) int64.
        flow_ij, flow_ji: (E, 2, H, W) optical flow i -> j and j -> i in pixels.
        static: (N, H, W) bool, True where the scene is static.
        pixel_cutoff: per-element smooth-L1 values at or above it are ignored (<= 0: none).
        workspace: reusable buffers (pass the same one every iteration to avoid reallocation).
    Returns:
        0-dim tensor, the sum of both directions' means.
    """
    n, h, w = depth.shape
    e, p = edges.shape[0], h * w
    ws = workspace or Workspace()
    v, u = torch.meshgrid(torch.arange(h, dtype=depth.dtype, device=depth.device),
                          torch.arange(w, dtype=depth.dtype, device=depth.device), indexing="ij")
    pixels = torch.stack((u.reshape(-1), v.reshape(-1), torch.ones_like(u).reshape(-1)))  # (3, P)
    flat_depth = depth.reshape(n, p)
    static_f = static.reshape(n, p).to(depth.dtype)
    k_inv = torch.linalg.inv(intrinsics)
    total = depth.new_zeros(())
    for src, dst, flow in ((edges[:, 0], edges[:, 1], flow_ij), (edges[:, 1], edges[:, 0], flow_ji)):
        r_dst_t = rotations[dst].transpose(1, 2)
        homography = intrinsics[dst] @ r_dst_t @ rotations[src] @ k_inv[src]
        shift = (intrinsics[dst] @ r_dst_t @ (translations[src] - translations[dst]).unsqueeze(-1))[..., 0]
        data = (src, static_f, flow.reshape(e, 2, p), pixels, pixel_cutoff, ws)
        total = total + _EgoFlowSmoothL1.apply(flat_depth, homography, shift, data)
    return total

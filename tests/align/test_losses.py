"""Loss terms: values against direct formulas, float64 gradcheck, and the scene parametrisation."""

from __future__ import annotations

import math

import pytest
import roma
import torch

from align3r.align import AlignmentLoss, SceneModel, flow_loss, temporal_smoothness
from align3r.geometry import (
    depth_to_camera_points,
    depth_to_world_points,
    ego_flow,
    intrinsics_from_focal,
    pose_matrix,
)

f64 = torch.float64


def _alignment_problem(dtype=f64, seed=1):
    g = torch.Generator().manual_seed(seed)
    e, h, w, n = 4, 3, 5, 3
    edges = torch.tensor([[0, 1], [1, 2], [1, 0], [2, 1]])
    pts_i = torch.randn(e, h, w, 3, generator=g, dtype=dtype)
    pts_j = torch.randn(e, h, w, 3, generator=g, dtype=dtype)
    wi = torch.rand(e, h, w, generator=g, dtype=dtype) + 0.5
    wj = torch.rand(e, h, w, generator=g, dtype=dtype) + 0.5
    depth = 1 + torch.rand(n, h * w, generator=g, dtype=dtype)
    focals = torch.tensor([4.0, 5.0, 6.0], dtype=dtype)
    pp = torch.tensor([[w / 2, h / 2]], dtype=dtype).repeat(n, 1)
    v, u = torch.meshgrid(torch.arange(h, dtype=dtype), torch.arange(w, dtype=dtype), indexing="ij")
    pixels = torch.stack((u.reshape(-1), v.reshape(-1)))
    rot = roma.random_rotmat(n, dtype=dtype)
    trans = torch.randn(n, 3, generator=g, dtype=dtype)
    edge_lin = roma.random_rotmat(e, dtype=dtype) * (torch.rand(e, generator=g, dtype=dtype) + 0.5)[:, None, None]
    edge_off = torch.randn(e, 3, generator=g, dtype=dtype)
    loss = AlignmentLoss(edges, pts_i, pts_j, wi, wj)
    return loss, (depth, focals, pp, pixels, rot, trans, edge_lin, edge_off), (edges, pts_i, pts_j, wi, wj)


def test_alignment_loss_is_the_world_frame_formula():
    loss, args, (edges, pts_i, pts_j, wi, wj) = _alignment_problem()
    depth, focals, _, _, rot, trans, edge_lin, edge_off = args
    n, e, (h, w) = 3, 4, pts_i.shape[1:3]
    k = intrinsics_from_focal(focals, h, w)
    world = depth_to_world_points(depth.reshape(n, h, w), k, pose_matrix(rot, trans))

    def side(frames, pts, weight):
        mapped = torch.einsum("eab,ehwb->ehwa", edge_lin, pts) + edge_off[:, None, None]
        return (weight * (world[frames] - mapped).norm(dim=-1)).sum() / (e * h * w)

    direct = side(edges[:, 0], pts_i, wi) + side(edges[:, 1], pts_j, wj)
    assert torch.allclose(loss(*args), direct, rtol=1e-12)


def test_alignment_loss_gradcheck():
    loss, args, _ = _alignment_problem()
    depth, focals, pp, pixels, rot, trans, edge_lin, edge_off = args
    for t in (depth, focals, rot, trans, edge_lin, edge_off):
        t.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda d, f, r, t, a, b: loss(d, f, pp, pixels, r, t, a, b), (depth, focals, rot, trans, edge_lin, edge_off))


def test_alignment_loss_zero_residual_has_zero_gradient():
    # both frames at the identity, every point map exactly the camera points: all residuals are 0
    # (dyadic depths and a power-of-two focal keep every product exact)
    n, h, w = 2, 3, 4
    depth = 1 + torch.randint(0, 8, (n, h, w)).double() / 8
    k = intrinsics_from_focal(torch.tensor([4.0, 4.0], dtype=f64), h, w)
    cam = depth_to_camera_points(depth, k)
    edges = torch.tensor([[0, 1], [1, 0]])
    ones = torch.ones(2, h, w, dtype=f64)
    loss = AlignmentLoss(edges, cam[edges[:, 0]], cam[edges[:, 1]], ones, ones)
    v, u = torch.meshgrid(torch.arange(h, dtype=f64), torch.arange(w, dtype=f64), indexing="ij")
    pixels = torch.stack((u.reshape(-1), v.reshape(-1)))
    flat = depth.reshape(n, -1).clone().requires_grad_()
    eye = torch.eye(3, dtype=f64)
    value = loss(flat, k[:, 0, 0], k[:, :2, 2], pixels, eye.repeat(n, 1, 1), torch.zeros(n, 3, dtype=f64),
                 eye.repeat(2, 1, 1), torch.zeros(2, 3, dtype=f64))
    value.backward()
    assert float(value.detach()) == 0 and torch.isfinite(flat.grad).all() and float(flat.grad.abs().max()) == 0


def test_temporal_smoothness_value_and_gradcheck():
    rot = roma.random_rotmat(4, dtype=f64)
    trans = torch.randn(4, 3, dtype=f64)
    poses = pose_matrix(rot, trans)
    rel = torch.linalg.inv(poses[:-1]) @ poses[1:]
    direct = ((rel[:, :3, :3] - torch.eye(3, dtype=f64)).flatten(1).norm(dim=1) + 0.7 * rel[:, :3, 3].norm(dim=1)).sum()
    assert torch.allclose(temporal_smoothness(rot, trans, 0.7), direct)
    rot.requires_grad_()
    trans.requires_grad_()
    assert torch.autograd.gradcheck(lambda r, t: temporal_smoothness(r, t, 0.7), (rot, trans))


def _flow_problem(seed=0):
    g = torch.Generator().manual_seed(seed)
    n, h, w = 3, 6, 8
    rot = roma.rotvec_to_rotmat(0.05 * torch.randn(n, 3, generator=g, dtype=f64))
    trans = 0.2 * torch.randn(n, 3, generator=g, dtype=f64)
    k = intrinsics_from_focal(torch.full((n,), 9.0, dtype=f64), h, w)
    depth = 2 + torch.rand(n, h, w, generator=g, dtype=f64)
    edges = torch.tensor([[0, 1], [1, 2], [2, 0]])
    static = torch.rand(n, h, w, generator=g) > 0.2
    i, j = edges[:, 0], edges[:, 1]
    # observed flow = the true ego flow plus offsets big enough to stay off the smooth-L1 kink
    f_ij = ego_flow(depth[i], rot[i], trans[i], rot[j], trans[j], k[i], k[j]) + 3 * torch.randn(3, 2, h, w, generator=g,
                                                                                                  dtype=f64)
    f_ji = ego_flow(depth[j], rot[j], trans[j], rot[i], trans[i], k[j], k[i]) + 0.2 * torch.randn(3, 2, h, w,
                                                                                                    generator=g,
                                                                                                    dtype=f64)
    return depth, rot, trans, k, edges, f_ij, f_ji, static


def test_flow_loss_is_zero_for_the_ego_flow_and_uses_only_static_pixels():
    depth, rot, trans, k, edges, _, _, static = _flow_problem()
    i, j = edges[:, 0], edges[:, 1]
    exact_ij = ego_flow(depth[i], rot[i], trans[i], rot[j], trans[j], k[i], k[j])
    exact_ji = ego_flow(depth[j], rot[j], trans[j], rot[i], trans[i], k[j], k[i])
    assert float(flow_loss(depth, rot, trans, k, edges, exact_ij, exact_ji, static)) < 1e-20
    # corrupting dynamic pixels only changes nothing
    dyn_i = (~static[i]).unsqueeze(1)
    corrupted = torch.where(dyn_i, exact_ij + 100, exact_ij)
    assert float(flow_loss(depth, rot, trans, k, edges, corrupted, exact_ji, static)) < 1e-20
    # a 0.5 px error on every static element gives smooth-L1 0.5 * 0.5^2 = 0.125 on that direction
    half = float(flow_loss(depth, rot, trans, k, edges, exact_ij + 0.5, exact_ji, static))
    assert half == pytest.approx(0.125, rel=1e-9)


def test_flow_loss_pixel_cutoff_drops_large_errors():
    depth, rot, trans, k, edges, _, _, static = _flow_problem()
    i, j = edges[:, 0], edges[:, 1]
    exact_ij = ego_flow(depth[i], rot[i], trans[i], rot[j], trans[j], k[i], k[j])
    exact_ji = ego_flow(depth[j], rot[j], trans[j], rot[i], trans[i], k[j], k[i])
    far = exact_ij.clone()
    far[0, 0, 0, 0] += 1000  # one element with smooth-L1 ~1000 > 50
    assert float(flow_loss(depth, rot, trans, k, edges, far, exact_ji, static, pixel_cutoff=50)) < 1e-20
    assert float(flow_loss(depth, rot, trans, k, edges, far, exact_ji, static, pixel_cutoff=0)) > 0


def test_flow_loss_gradcheck():
    depth, rot, trans, k, edges, f_ij, f_ji, static = _flow_problem()
    for t in (depth, rot, trans, k):
        t.requires_grad_()
    assert torch.autograd.gradcheck(
        lambda d, r, t, kk: flow_loss(d, r, t, kk, edges, f_ij, f_ji, static), (depth, rot, trans, k))


def test_scene_model_world_points_follow_the_parametrisation():
    torch.manual_seed(0)
    n, e, h, w = 3, 4, 5, 6
    model = SceneModel(n, e, h, w, shared_focal=False, dtype=f64)
    depth = 1 + torch.rand(n, h, w, dtype=f64)
    poses = pose_matrix(roma.random_rotmat(n, dtype=f64), torch.randn(n, 3, dtype=f64))
    focals = torch.tensor([7.0, 8.0, 9.0], dtype=f64)
    model.set_state(depth=depth, cam2world=poses, focals=focals)
    world = model.world_points().transpose(1, 2).reshape(n, h, w, 3)
    expected = depth_to_world_points(depth, intrinsics_from_focal(focals, h, w), poses)
    assert torch.allclose(world, expected, atol=1e-10)
    assert torch.allclose(model.cam2world(), poses, atol=1e-12)
    assert torch.allclose(model.focals(), focals)


def test_edge_scales_are_pinned_to_the_base_scale():
    model = SceneModel(2, 5, 2, 2, base_scale=0.5)
    with torch.no_grad():
        model.edge_log_scale.copy_(torch.randn(5))
    scales = model.edge_scales().detach()
    assert math.isclose(float(scales.log().mean().exp()), 0.5, rel_tol=1e-6)
    # a common shift of every log-scale is a gauge: it changes nothing
    before = scales.clone()
    with torch.no_grad():
        model.edge_log_scale.add_(3.0)
    assert torch.allclose(model.edge_scales().detach(), before, rtol=1e-5)

import math

import torch

from align3r.geometry import (
    depth_to_camera_points,
    depth_to_world_points,
    intrinsics_from_focal,
    invert_pose,
    pixel_grid,
    transform_points,
)


def test_pixel_grid_is_column_row():
    g = pixel_grid(2, 3)
    assert g.shape == (2, 3, 2)
    assert g[1, 2].tolist() == [2.0, 1.0]  # (u=col, v=row)


def test_backprojection_uses_w_over_2_principal_point():
    k = intrinsics_from_focal(torch.tensor(10.0), 4, 6)
    assert k[0, 2] == 3 and k[1, 2] == 2
    pts = depth_to_camera_points(torch.full((4, 6), 2.0), k)
    # pixel (u=3, v=2) is the principal point: it lies on the optical axis.
    assert torch.allclose(pts[2, 3], torch.tensor([0.0, 0.0, 2.0]))
    assert torch.allclose(pts[0, 0], torch.tensor([-3 * 2 / 10, -2 * 2 / 10, 2.0]))


def test_pose_inverse_and_world_points_round_trip():
    torch.manual_seed(0)
    a = 0.3
    pose = torch.eye(4).repeat(2, 1, 1)
    pose[0, :3, :3] = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])
    pose[:, :3, 3] = torch.randn(2, 3)
    assert torch.allclose(invert_pose(pose) @ pose, torch.eye(4).expand(2, 4, 4), atol=1e-6)
    depth = torch.rand(2, 5, 7) + 1
    k = intrinsics_from_focal(torch.tensor([8.0, 9.0]), 5, 7)
    world = depth_to_world_points(depth, k, pose)
    back = transform_points(invert_pose(pose), world)
    assert torch.allclose(back[..., 2], depth, atol=1e-5)


def test_signed_log1p_round_trip():
    from align3r.geometry import signed_expm1, signed_log1p

    x = torch.tensor([-5.0, -0.1, 0.0, 0.3, 7.0], dtype=torch.float64)
    assert torch.allclose(signed_expm1(signed_log1p(x)), x)
    assert torch.equal(torch.sign(signed_log1p(x)), torch.sign(x))


def test_weiszfeld_focal_recovers_exact_focal():
    from align3r.geometry import estimate_focal_weiszfeld

    torch.manual_seed(0)
    depth = 1 + torch.rand(3, 12, 16)
    focals = torch.tensor([10.0, 20.0, 33.0])
    pts = depth_to_camera_points(depth, intrinsics_from_focal(focals, 12, 16))
    assert torch.allclose(estimate_focal_weiszfeld(pts, max_pixels=200), focals, rtol=1e-5)


def test_ego_flow_is_the_projection_of_back_projected_points():
    from align3r.geometry import ego_flow, pose_matrix

    torch.manual_seed(1)
    h, w = 6, 9
    a = 0.1
    rot = torch.tensor([[math.cos(a), 0, math.sin(a)], [0, 1, 0], [-math.sin(a), 0, math.cos(a)]], dtype=torch.float64)
    src = pose_matrix(torch.eye(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))[None]
    dst = pose_matrix(rot, torch.tensor([0.3, -0.1, 0.2], dtype=torch.float64))[None]
    depth = 3 + torch.rand(1, h, w, dtype=torch.float64)
    k_src = intrinsics_from_focal(torch.tensor([8.0], dtype=torch.float64), h, w)
    k_dst = intrinsics_from_focal(torch.tensor([11.0], dtype=torch.float64), h, w)
    flow = ego_flow(depth, src[:, :3, :3], src[:, :3, 3], dst[:, :3, :3], dst[:, :3, 3], k_src, k_dst, eps=0.0)
    world = depth_to_world_points(depth, k_src, src)
    cam = transform_points(invert_pose(dst), world)
    proj = cam[..., :2] / cam[..., 2:] * 11.0 + torch.tensor([w / 2, h / 2], dtype=torch.float64)
    expected = proj - pixel_grid(h, w, dtype=torch.float64)
    assert torch.allclose(flow[0].permute(1, 2, 0), expected[0], atol=1e-9)


def test_map_intrinsics_moves_pixel_centres_and_inverts():
    from align3r.geometry import map_intrinsics

    k = torch.tensor([[100.0, 0, 32], [0, 100.0, 24], [0, 0, 1]])
    # halve the image: pixel centre 32 (corner 32.5) lands on corner 16.25 -> centre 15.75
    half = map_intrinsics(k, (0.5, 0.5), (0.0, 0.0))
    assert torch.allclose(half[:2, 2], torch.tensor([15.75, 11.75])) and half[0, 0] == 50
    # a crop shifts the principal point by the offset; the inverse map restores K
    crop = map_intrinsics(k, (1.0, 1.0), (-8.0, -4.0))
    assert torch.allclose(crop[:2, 2], torch.tensor([24.0, 20.0]))
    back = map_intrinsics(map_intrinsics(k, (0.4, 0.5), (-3.0, 2.0)), (2.5, 2.0), (7.5, -4.0))
    assert torch.allclose(back, k, atol=1e-5)

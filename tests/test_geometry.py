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

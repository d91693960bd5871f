"""Per-frame and fused PLY point clouds, voxel downsampling and the GLB scene (read by trimesh)."""

import json

import numpy as np
import pytest
import trimesh

from align3r.export.pointcloud import PointSet, frustum_segments, voxel_downsample

WALL_Z = 5.0


def test_frame_ply_holds_the_confident_pixels_on_the_wall(written):
    out, recon, rgb, _ = written
    cloud = trimesh.load(out / "pointclouds" / "frames" / "00002.ply")
    keep = recon.conf[2].numpy() >= 3.0  # the default threshold
    assert isinstance(cloud, trimesh.PointCloud) and len(cloud.vertices) == keep.sum()
    np.testing.assert_allclose(cloud.vertices[:, 2], WALL_Z, atol=1e-4)  # exact geometry: all on z = 5
    expected = recon.world_points()[2].numpy()[keep]
    np.testing.assert_allclose(cloud.vertices, expected, atol=1e-6)
    assert np.array_equal(cloud.colors[:, :3], rgb[2][keep])


def test_static_ply_is_on_the_wall_and_voxel_downsampled(written):
    out, _, _, _ = written
    manifest = json.loads((out / "manifest.json").read_text())["outputs"]["ply"]
    cloud = trimesh.load(out / "pointclouds" / "static_scene.ply")
    assert len(cloud.vertices) == manifest["static_points"] > 0
    np.testing.assert_allclose(cloud.vertices[:, 2], WALL_Z, atol=1e-4)
    total = sum(manifest["frame_points"])
    assert len(cloud.vertices) < total  # overlapping frames were merged
    # Voxel-averaged: no two points share a voxel.
    keys = np.floor(cloud.vertices / manifest["voxel_size"]).astype(np.int64)
    assert len(np.unique(keys, axis=0)) == len(keys)


def test_voxel_downsample_averages_and_is_independent_of_chunking():
    pts = np.array([[0.1, 0.1, 0.1], [0.3, 0.3, 0.3], [1.5, 0.2, 0.2], [-0.5, 0.2, 0.2]], np.float32)
    cols = np.array([[0, 0, 0], [100, 200, 50], [7, 7, 7], [9, 9, 9]], np.uint8)
    out = voxel_downsample([PointSet(pts, cols)], 1.0)
    order = np.argsort(out.points[:, 0])
    np.testing.assert_allclose(out.points[order], [[-0.5, 0.2, 0.2], [0.2, 0.2, 0.2], [1.5, 0.2, 0.2]], atol=1e-6)
    assert out.colors[order].tolist() == [[9, 9, 9], [50, 100, 25], [7, 7, 7]]
    rng = np.random.default_rng(1)
    big = rng.normal(size=(5000, 3)).astype(np.float32)
    big_cols = rng.integers(0, 255, (5000, 3), dtype=np.uint8)
    one = voxel_downsample([PointSet(big, big_cols)], 0.3)
    many = voxel_downsample([PointSet(big[i:i + 700], big_cols[i:i + 700]) for i in range(0, 5000, 700)], 0.3,
                            merge_every=1000)
    a, b = np.lexsort(one.points.T), np.lexsort(many.points.T)
    np.testing.assert_allclose(one.points[a], many.points[b], atol=1e-5)
    assert np.abs(one.colors[a].astype(int) - many.colors[b]).max() <= 1


def test_glb_scene_has_the_static_cloud_and_one_frustum_per_camera(written):
    out, recon, _, _ = written
    scene = trimesh.load(out / "scene.glb")
    static_count = json.loads((out / "manifest.json").read_text())["outputs"]["ply"]["static_points"]
    assert len(scene.geometry["static_scene"].vertices) == static_count
    cameras = sorted(k for k in scene.geometry if k.startswith("camera_"))
    assert cameras == [f"camera_{i:05d}" for i in range(6)]
    # Undo the root's OpenCV -> glTF flip: the frustum apex is the camera centre.
    transform, _ = scene.graph["camera_00004"]
    apex = trimesh.transform_points(scene.geometry["camera_00004"].vertices, transform)
    centre = np.diag([1, -1, -1]) @ recon.cam2world[4, :3, 3].numpy()
    assert np.min(np.linalg.norm(apex - centre, axis=1)) == pytest.approx(0, abs=1e-5)


def test_frustum_corners_project_to_the_image_corners():
    k = np.array([[[50.0, 0, 32], [0, 50.0, 24], [0, 0, 1]]])
    pose = np.eye(4)[None]
    segs = frustum_segments(pose, k, (48, 64), depth=2.0)
    assert segs.shape == (1, 8, 2, 3)
    corners = segs[0, :4, 1]
    uv = (k[0] @ corners.T).T
    np.testing.assert_allclose(uv[:, :2] / uv[:, 2:], [[0, 0], [64, 0], [64, 48], [0, 48]], atol=1e-9)
    np.testing.assert_allclose(corners[:, 2], 2.0)


def test_moving_object_is_in_its_frame_cloud_but_not_in_the_static_scene(tmp_path, wall, rgb, names):
    from align3r.export import write_reconstruction

    wall.depth[wall.dynamic_mask] = 2.0  # the moving square floats in front of the wall
    wall.conf[:] = 5.0
    out = write_reconstruction(tmp_path / "o", wall, rgb=rgb, names=names, formats=["ply"])
    frame = trimesh.load(out / "pointclouds" / "frames" / "00000.ply")
    assert len(frame.vertices) == 48 * 64
    off_wall = np.abs(frame.vertices[:, 2] - WALL_Z) > 1e-3
    assert off_wall.sum() == wall.dynamic_mask[0].sum()
    static = trimesh.load(out / "pointclouds" / "static_scene.ply")
    np.testing.assert_allclose(static.vertices[:, 2], WALL_Z, atol=1e-4)


def test_a_frame_without_confident_points_gets_an_empty_ply(tmp_path, wall, rgb, names):
    from align3r.export import load_reconstruction, write_reconstruction

    wall.conf[1] = 1.0  # nothing in frame 1 passes min_conf = 3
    out = write_reconstruction(tmp_path / "o", wall, rgb=rgb, names=names, formats=["ply", "glb"])
    path = out / "pointclouds" / "frames" / "00001.ply"
    assert b"element vertex 0\n" in path.read_bytes()
    empty = trimesh.load(path)  # a valid file: trimesh reads it as a scene without geometry
    assert len(getattr(empty, "vertices", [])) == 0 and not getattr(empty, "geometry", {})
    assert len(trimesh.load(out / "pointclouds" / "frames" / "00002.ply").vertices) > 0
    assert load_reconstruction(out).num_frames == 6

"""COLMAP text model: parsed back, and a 3-D point projects where our intrinsics put it."""

import numpy as np
import pytest
import trimesh

from align3r.export import OriginalResolution, write_reconstruction
from align3r.export.colmap import qvec_to_rotmat, read_colmap_text_model
from align3r.export.images import read_png


def colmap_project(model, image_id, point):
    """COLMAP's PINHOLE projection: continuous coordinates, pixel centres at +0.5."""
    img = model["images"][image_id]
    cam_model, w, h, (fx, fy, cx, cy) = model["cameras"][img["camera_id"]]
    assert cam_model == "PINHOLE"
    p = qvec_to_rotmat(img["qvec"]) @ point + img["tvec"]
    return np.array([fx * p[0] / p[2] + cx, fy * p[1] / p[2] + cy]), (w, h)


def test_model_parses_back_and_projects_like_our_intrinsics(written):
    out, recon, rgb, _ = written
    model = read_colmap_text_model(out / "colmap" / "sparse" / "0")
    assert len(model["images"]) == 6 and len(model["cameras"]) == 6  # per-frame focal -> 6 cameras
    world = recon.world_points().numpy()
    for image_id, (u, v) in ((1, (0, 0)), (4, (17, 40)), (6, (63, 47))):
        assert model["images"][image_id]["name"] == f"{image_id - 1:05d}.png"
        xy, (w, h) = colmap_project(model, image_id, world[image_id - 1, v, u].astype(np.float64))
        assert (w, h) == (64, 48)
        # Our pixel (u, v) is COLMAP's (u + 0.5, v + 0.5).
        np.testing.assert_allclose(xy, [u + 0.5, v + 0.5], atol=1e-3)
    # The images the model names exist and are the network-resolution frames.
    assert np.array_equal(read_png(out / "colmap" / "images" / "00003.png"), rgb[3])
    # points3D is the fused static scene.
    static = trimesh.load(out / "pointclouds" / "static_scene.ply")
    np.testing.assert_allclose(model["points"], static.vertices, atol=1e-5)
    assert np.array_equal(model["colors"], static.colors[:, :3])


def test_original_resolution_model_uses_the_original_frames(tmp_path, wall, rgb, names):
    original_frames = np.random.default_rng(0).integers(0, 255, (6, 96, 136, 3), dtype=np.uint8)
    mapping = OriginalResolution.from_resize_crop((96, 136), (48, 68), (2, 0, 66, 48), frames=original_frames)
    out = write_reconstruction(tmp_path / "o", wall, rgb=rgb, names=names, original=mapping, formats=["colmap"])
    model = read_colmap_text_model(out / "colmap" / "sparse" / "0")
    world = wall.world_points().numpy()
    u, v = 10, 30
    xy, (w, h) = colmap_project(model, 3, world[2, v, u].astype(np.float64))
    assert (w, h) == (136, 96)
    # Network pixel centre (u + 0.5, v + 0.5) maps to the original by x2 and +4 columns.
    np.testing.assert_allclose(xy, [2 * (u + 0.5) + 4, 2 * (v + 0.5)], atol=1e-3)
    assert np.array_equal(read_png(out / "colmap" / "images" / "00002.png"), original_frames[2])


def test_quaternions_are_world_to_camera_scalar_first(written):
    out, recon, _, _ = written
    model = read_colmap_text_model(out / "colmap" / "sparse" / "0")
    img = model["images"][5]
    assert img["qvec"][0] > 0  # canonical sign, scalar first
    cam2world = recon.cam2world[4].numpy().astype(np.float64)
    np.testing.assert_allclose(qvec_to_rotmat(img["qvec"]), cam2world[:3, :3].T, atol=1e-6)
    np.testing.assert_allclose(img["tvec"], -cam2world[:3, :3].T @ cam2world[:3, 3], atol=1e-6)
    assert pytest.approx(np.linalg.norm(img["qvec"])) == 1

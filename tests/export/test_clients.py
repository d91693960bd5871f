"""Outputs read by real clients: pycolmap (text and binary COLMAP models), nerfstudio's own data
parser (transforms.json) and rerun's own .rrd reader."""

import argparse
import json
from collections import defaultdict

import numpy as np
import pytest
import trimesh

from align3r.errors import InputError
from align3r.export import OriginalResolution, export_formats, write_reconstruction
from align3r.export.colmap import read_colmap_text_model
from align3r.export.images import read_png
from align3r.export.pointcloud import iter_frame_points
from align3r.export.writer import resolve_formats

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])


# ------------------------------------------------------------------------------------ COLMAP
def pycolmap_model(path):
    pycolmap = pytest.importorskip("pycolmap")  # in the dev extra
    return pycolmap.Reconstruction(str(path))


def cam_from_world(image):
    pose = image.cam_from_world
    return pose() if callable(pose) else pose  # a method since pycolmap 3.12


@pytest.mark.parametrize("form", ["text", "binary"])
def test_pycolmap_loads_the_model_with_the_values_we_wrote(written, form):
    out, recon, _, _ = written
    model_dir = out / "colmap" / "sparse" / "0"
    ours = read_colmap_text_model(model_dir)  # what we wrote, as text
    for name in ("cameras", "images", "points3D"):  # both forms are there, "all" wrote them
        assert (model_dir / f"{name}.txt").is_file() and (model_dir / f"{name}.bin").is_file()
    # pycolmap prefers .bin when both exist: read a folder with only the form under test
    only = out.parent / f"only_{form}"
    only.mkdir(exist_ok=True)
    for name in ("cameras", "images", "points3D"):
        ext = "bin" if form == "binary" else "txt"
        (only / f"{name}.{ext}").write_bytes((model_dir / f"{name}.{ext}").read_bytes())
    model_dir = only
    rec = pycolmap_model(model_dir)
    assert rec.num_cameras() == len(ours["cameras"]) == 6 and rec.num_images() == 6
    for cam_id, (model, w, h, params) in ours["cameras"].items():
        cam = rec.cameras[cam_id]
        assert (cam.model_name, cam.width, cam.height) == (model, w, h) == ("PINHOLE", 64, 48)
        np.testing.assert_array_equal(cam.params, params)
    world = recon.world_points().numpy().astype(np.float64)
    for image_id, img in ours["images"].items():
        image = rec.images[image_id]
        assert (image.name, image.camera_id) == (img["name"], img["camera_id"])
        pose = cam_from_world(image)
        q_wxyz = np.asarray(pose.rotation.quat)[[3, 0, 1, 2]]
        np.testing.assert_allclose(q_wxyz, img["qvec"], rtol=0, atol=1e-15)
        np.testing.assert_allclose(pose.translation, img["tvec"], rtol=0, atol=1e-15)
        # pycolmap's own projection puts our pixel (u, v) at COLMAP's (u + 0.5, v + 0.5).
        i = image_id - 1
        cam = rec.cameras[image.camera_id]
        for u, v in ((0, 0), (30, 20), (63, 47)):
            xy = cam.img_from_cam(pose * world[i, v, u])
            np.testing.assert_allclose(np.ravel(xy)[:2], [u + 0.5, v + 0.5], atol=1e-3)
    static = trimesh.load(out / "pointclouds" / "static_scene.ply")
    assert rec.num_points3D() == len(static.vertices) == len(ours["points"])
    ids = sorted(rec.points3D)
    xyz = np.stack([rec.points3D[k].xyz for k in ids])
    rgb = np.stack([rec.points3D[k].color for k in ids])
    if form == "binary":  # float64 bytes: the PLY's float32 values exactly
        np.testing.assert_array_equal(xyz, static.vertices.astype(np.float32).astype(np.float64))
    else:  # text: the values as printed
        np.testing.assert_array_equal(xyz, ours["points"])
    np.testing.assert_array_equal(rgb, static.colors[:, :3])


def test_binary_model_at_original_resolution_and_rewritten_with_the_text_form(tmp_path, wall, rgb, names):
    frames = np.random.default_rng(1).integers(0, 255, (6, 96, 136, 3), dtype=np.uint8)
    mapping = OriginalResolution.from_resize_crop((96, 136), (48, 68), (2, 0, 66, 48), frames=frames)
    out = write_reconstruction(tmp_path / "o", wall, rgb=rgb, names=names, original=mapping,
                               formats=["colmap", "colmap_bin"])
    rec = pycolmap_model(out / "colmap" / "sparse" / "0")
    assert {(c.width, c.height) for c in rec.cameras.values()} == {(136, 96)}
    assert np.array_equal(read_png(out / "colmap" / "images" / "00002.png"), frames[2])
    # Rewriting the text form with another threshold rewrites the binary one too: they agree.
    export_formats(out, ["colmap"], options=_options(min_conf=1.0))
    text = read_colmap_text_model(out / "colmap" / "sparse" / "0")
    assert pycolmap_model(out / "colmap" / "sparse" / "0").num_points3D() == len(text["points"])
    assert rec.num_points3D() < len(text["points"])
    assert read_png(out / "colmap" / "images" / "00002.png").shape == (96, 136, 3)  # still the originals


def _options(**kw):
    from align3r.export import ExportOptions

    return ExportOptions(**kw)


# -------------------------------------------------------------------------------- nerfstudio
def test_transforms_json_follows_nerfstudios_schema(written):
    out, recon, rgb, _ = written
    root = out / "nerfstudio"
    meta = json.loads((root / "transforms.json").read_text())
    k = recon.intrinsics.numpy().astype(np.float64)
    # Per-frame focals in this fixture -> intrinsics per frame; size at the top.
    assert (meta["camera_model"], meta["w"], meta["h"]) == ("PINHOLE", 64, 48)
    assert np.array_equal(meta["applied_transform"], np.eye(4)[:3])
    assert (root / meta["ply_file_path"]).is_file()
    world = recon.world_points().numpy().astype(np.float64)
    for i, frame in enumerate(meta["frames"]):
        assert frame["file_path"] == f"images/{i:05d}.png"
        assert np.array_equal(read_png(root / frame["file_path"]), rgb[i])
        c2w = np.array(frame["transform_matrix"])
        np.testing.assert_allclose(c2w @ OPENCV_TO_OPENGL, recon.cam2world[i].numpy(), atol=1e-7)
        assert (frame["fl_x"], frame["fl_y"]) == (k[i, 0, 0], k[i, 1, 1])
        assert (frame["cx"], frame["cy"]) == (k[i, 0, 2] + 0.5, k[i, 1, 2] + 0.5)
        # Projection in OpenGL camera axes (y up, looking down -z), pixel centres at +0.5.
        p = np.linalg.inv(c2w) @ np.append(world[i, 20, 30], 1)
        u = frame["fl_x"] * p[0] / -p[2] + frame["cx"]
        v = -frame["fl_y"] * p[1] / -p[2] + frame["cy"]
        np.testing.assert_allclose([u, v], [30.5, 20.5], atol=1e-3)
        depth = np.load(root / frame["depth_file_path"])
        np.testing.assert_allclose(depth * 1e-3, recon.depth[i].numpy(), rtol=1e-6)


def test_nerfstudios_own_dataparser_reads_it(tmp_path, wall, rgb, names):
    """nerfstudio pins versions that conflict with ours (viser, opencv, timm): CI installs it
    without dependencies (.ci/run), which is all its data parser needs."""
    parser = pytest.importorskip("nerfstudio.data.dataparsers.nerfstudio_dataparser",
                                 reason="nerfstudio is not installed (see .ci/run)")
    from nerfstudio.data.utils.data_utils import get_depth_image_from_path

    frames = np.random.default_rng(2).integers(0, 255, (6, 96, 136, 3), dtype=np.uint8)
    mapping = OriginalResolution.from_resize_crop((96, 136), (48, 68), (2, 0, 66, 48), frames=frames)
    wall.intrinsics[:] = wall.intrinsics[0]  # one shared camera: intrinsics at the top level
    out = write_reconstruction(tmp_path / "o", wall, rgb=rgb, names=names, original=mapping, formats=["nerfstudio"])
    config = parser.NerfstudioDataParserConfig(data=out / "nerfstudio", orientation_method="none",
                                               center_method="none", auto_scale_poses=False, eval_mode="all")
    outputs = config.setup().get_dataparser_outputs("train")
    cams = outputs.cameras
    k = mapping.intrinsics(wall.intrinsics.numpy())
    assert len(outputs.image_filenames) == 6 and cams.width.flatten().tolist() == [136] * 6
    assert cams.height.flatten().tolist() == [96] * 6
    np.testing.assert_allclose(cams.fx.flatten(), k[:, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(cams.cx.flatten(), k[:, 0, 2] + 0.5, rtol=1e-6)
    np.testing.assert_allclose(cams.cy.flatten(), k[:, 1, 2] + 0.5, rtol=1e-6)
    c2w = wall.cam2world.numpy().astype(np.float64) @ OPENCV_TO_OPENGL
    np.testing.assert_allclose(cams.camera_to_worlds.numpy(), c2w[:, :3], atol=1e-6)
    np.testing.assert_allclose(outputs.dataparser_transform.numpy(), np.eye(4)[:3], atol=0)
    assert np.array_equal(read_png(outputs.image_filenames[3]), frames[3])
    # Its depth loader, with its default millimetre factor, gives our depth at the image size.
    depth = get_depth_image_from_path(outputs.metadata["depth_filenames"][3], 96, 136,
                                      outputs.metadata["depth_unit_scale_factor"])[..., 0].numpy()
    expected = mapping.resample_depth(wall.depth.numpy()[3:4])[0]
    np.testing.assert_allclose(depth, np.nan_to_num(expected, nan=0.0), rtol=1e-6)


# ------------------------------------------------------------------------------------ rerun
def rrd_rows(path):
    """{entity path: (rows, static, {column: [values of every row]})} via rerun's own reader."""
    chunk = pytest.importorskip("rerun.chunk", reason="rerun-sdk is not installed (dev extra)")
    import pyarrow as pa  # a dependency of rerun-sdk
    rows, static, cols = defaultdict(int), {}, defaultdict(lambda: defaultdict(list))
    for c in chunk.RrdReader(str(path)).stream():
        rows[c.entity_path] += c.num_rows
        static[c.entity_path] = c.is_static
        batch = c.to_record_batch()
        for name in batch.schema.names:
            column = batch.column(name)
            if pa.types.is_duration(column.type):  # to_pylist would round to microseconds
                column = column.cast(pa.int64())
            cols[c.entity_path][name] += column.to_pylist()
    return rows, static, cols


def test_rerun_recording_has_every_frame_on_the_timeline(tmp_path, wall, rgb, names, timestamps):
    out = write_reconstruction(tmp_path / "r", wall, rgb=rgb, names=names, timestamps=timestamps,
                               formats=["ply", "rerun"])
    rows, static, cols = rrd_rows(out / "recording.rrd")
    for entity in ("/world", "/world/static_scene", "/world/trajectory"):
        assert rows[entity] == 1 and static[entity]
    for entity in ("/world/camera", "/world/camera/image", "/world/camera/depth", "/world/camera/confidence",
                   "/world/camera/dynamic_mask", "/world/points"):
        assert rows[entity] == 6 and not static[entity]
        assert sorted(cols[entity]["frame"]) == list(range(6))
    cam = cols["/world/camera"]
    order = np.argsort(cam["frame"])
    np.testing.assert_allclose(np.array(cam["Transform3D:translation"])[order, 0], wall.cam2world[:, :3, 3], atol=1e-7)
    np.testing.assert_allclose(np.array(cam["Transform3D:mat3x3"])[order, 0],
                               wall.cam2world[:, :3, :3].transpose(1, 2).reshape(6, 9), atol=1e-7)  # column-major
    assert np.array(cam["time"])[order].tolist() == [round(t * 1e9) for t in timestamps]
    expected = [len(p) for p in iter_frame_points(wall.depth.numpy(), wall.intrinsics.numpy(), wall.cam2world.numpy(),
                                                  wall.conf.numpy(), rgb, min_conf=3.0,
                                                  dynamic_mask=wall.dynamic_mask.numpy())]
    points = cols["/world/points"]
    assert [len(points["Points3D:positions"][i]) for i in np.argsort(points["frame"])] == expected
    static_ply = trimesh.load(out / "pointclouds" / "static_scene.ply")
    assert len(cols["/world/static_scene"]["Points3D:positions"][0]) == len(static_ply.vertices)
    assert len(cols["/world/trajectory"]["LineStrips3D:strips"][0][0]) == 6


def test_rerun_is_written_by_align3r_export_and_only_when_named(written, tmp_path, monkeypatch, capsys):
    from align3r.commands import export
    from align3r.export import rerun_recording

    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    assert export.run(parser.parse_args([str(written[0]), "--format", "rerun", "--out", str(tmp_path / "c")])) == 0
    rows, _, _ = rrd_rows(tmp_path / "c" / "recording.rrd")
    assert rows["/world/camera/depth"] == 6
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert "rerun" in manifest["export"]["formats"] and manifest["outputs"]["rerun"]["frames"] == 6
    assert not (written[0] / "recording.rrd").exists()  # "all" leaves the optional extra out
    assert "rerun" not in resolve_formats("all") and "nerfstudio" in resolve_formats("all")
    assert resolve_formats(["all", "rerun"])[-2:] == ["rerun", "video"]
    monkeypatch.setattr(rerun_recording, "rerun_available", lambda: False)
    with pytest.raises(InputError, match=r'pip install "align3r\[rerun\]"'):
        resolve_formats(["rerun"])

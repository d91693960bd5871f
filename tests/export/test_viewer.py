"""The software screenshot renderer, the viser viewer (without blocking) and `align3r view`."""

import argparse
import sys

import numpy as np
import pytest

from align3r.export import load_reconstruction
from align3r.export.images import read_png
from align3r.viewer.content import build_content
from align3r.viewer.render import ViewCamera, intrinsics_for_fov, look_at, splat
from align3r.viewer.screenshot import HIGHLIGHT, render_screenshot

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def front_camera(size=(40, 40)):
    """At the origin looking down +z (OpenCV), 60 degree field of view."""
    return ViewCamera(intrinsics_for_fov(size, 60), look_at([0, 0, 0], [0, 0, 1], [0, -1, 0]), size)


def test_near_point_occludes_far_point_whatever_the_order():
    cam = front_camera()
    pts = np.array([[0, 0, 5.0], [0, 0, 2.0]])  # far blue first, near red second
    for order in ([0, 1], [1, 0]):
        image, zbuf = splat(pts[order], np.array([BLUE, RED], np.uint8)[order], cam, radius=2)
        assert tuple(image[20, 20]) == RED and zbuf[20, 20] == pytest.approx(2.0)
    # Moved apart, both are visible; behind the camera, nothing is drawn.
    image, _ = splat(np.array([[-1, 0, 5.0], [1, 0, 5.0], [0, 0, -3.0]]), np.array([BLUE, RED, RED], np.uint8),
                     cam, radius=0)
    f = cam.intrinsics[0, 0]
    assert tuple(image[20, round(20 - f / 5)]) == BLUE and tuple(image[20, round(20 + f / 5)]) == RED
    assert (image == 255).all(-1).sum() == 40 * 40 - 2


def test_look_at_puts_the_target_in_the_centre_with_up_upwards():
    cam = ViewCamera(intrinsics_for_fov((30, 40), 50), look_at([3, -2, 1], [0.5, 0.5, 4], [0, -1, 0]), (30, 40))
    image, _ = splat(np.array([[0.5, 0.5, 4], [0.5, -0.5, 4]]), np.array([RED, BLUE], np.uint8), cam, radius=0)
    assert tuple(image[15, 20]) == RED
    rows = np.nonzero((image == BLUE).all(-1))[0]
    assert rows.size == 1 and rows[0] < 15  # world "up" (-y) is up in the image


def test_screenshot_through_an_input_camera_reproduces_its_frame(written):
    saved = load_reconstruction(written[0])
    content = build_content(saved, min_conf=1.0)
    image = render_screenshot(content, frame=3, view=3, size_hw=(48, 64), show_static=False, show_cameras=False)
    assert np.array_equal(image, saved.rgb[3])


def test_overview_screenshot_shows_scene_and_cameras(written):
    content = build_content(load_reconstruction(written[0]))
    image = render_screenshot(content, frame=2, size_hw=(180, 320))
    assert image.shape == (180, 320, 3)
    drawn = ~(image == 255).all(-1)
    assert 0.1 < drawn.mean() < 0.9  # the scene fills a good part of the picture, not all of it
    assert (image == HIGHLIGHT).all(-1).sum() > 20  # the current camera, drawn in red
    with pytest.raises(IndexError, match="out of range"):
        render_screenshot(content, frame=6)


def test_viser_viewer_builds_the_scene_and_follows_the_timeline(written):
    pytest.importorskip("viser")  # optional extra; installed in the dev environment
    from align3r.viewer.server import start

    content = build_content(load_reconstruction(written[0]), min_conf=1.0)
    session = start(content, port=0)
    try:
        scene = session.server.scene
        names = ["/static_scene", "/trajectory"] + [f"/frames/{i:05d}" for i in range(6)] + \
                [f"/cameras/{i:05d}" for i in range(6)]
        assert all(scene.get_handle_by_name(n) is not None for n in names)
        assert len(scene.get_handle_by_name("/frames/00002").points) == 48 * 64
        assert [f.visible for f in session.frames] == [True] + [False] * 5
        session.slider.value = 4  # as if the user dragged the slider
        assert session.current == 4 and [f.visible for f in session.frames] == [i == 4 for i in range(6)]
        assert session.cameras[4].color == (230, 30, 30)
        session.playing.value = True
        session.step()
        assert session.current == 5
        session.show_all.value = True
        assert all(f.visible for f in session.frames)
    finally:
        session.server.stop()


def test_missing_viser_gives_install_hint(monkeypatch):
    from align3r.errors import Align3RError
    from align3r.viewer import server

    monkeypatch.setitem(sys.modules, "viser", None)
    with pytest.raises(Align3RError, match=r'pip install "align3r\[viewer\]"'):
        server.import_viser()


def run_command(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return module.run(parser.parse_args(argv))


def test_view_command_writes_a_screenshot(written, tmp_path, capsys):
    from align3r.commands import view

    out = tmp_path / "shots" / "shot.png"
    assert run_command(view, [str(written[0]), "--screenshot", str(out), "--size", "160x90", "--frame", "1"]) == 0
    image = read_png(out)
    assert image.shape == (90, 160, 3) and (~(image == 255).all(-1)).mean() > 0.05
    assert str(out) in capsys.readouterr().out


def test_view_command_rejects_out_of_range_frames(written, tmp_path):
    from align3r.commands import view
    from align3r.errors import InputError

    with pytest.raises(InputError, match="--frame 9 is out of range"):
        run_command(view, [str(written[0]), "--screenshot", str(tmp_path / "x.png"), "--frame", "9"])
    with pytest.raises(SystemExit):
        run_command(view, [str(written[0]), "--size", "huge"])


def test_viewer_reuses_the_exported_static_scene_only_when_it_matches(written):
    import trimesh

    saved = load_reconstruction(written[0])
    exported = trimesh.load(written[0] / "pointclouds" / "static_scene.ply")
    same = build_content(saved)  # the export's min_conf (3.0): the PLY is reused
    np.testing.assert_array_equal(same.static.points, np.asarray(exported.vertices, np.float32))
    other = build_content(saved, min_conf=1.0)  # another threshold: fused again, more points
    assert len(other.static) > len(exported.vertices)
    np.testing.assert_allclose(other.static.points[:, 2], 5.0, atol=1e-4)

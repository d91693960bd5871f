"""The interactive viewer: the 4-D point cloud with cameras on a frame timeline, served by viser.

viser is an optional dependency (``pip install "align3r[viewer]"``), imported only here and only
when the viewer starts. :class:`ViewerSession` builds the scene on a running server and can be
driven from code (``show_frame``), which is how it is tested without blocking.
"""

from __future__ import annotations

import time

import numpy as np

from align3r.errors import Align3RError
from align3r.export.cameras import rotation_to_quaternion_xyzw
from align3r.viewer.content import ViewerContent
from align3r.viewer.screenshot import overview_viewpoint

THUMBNAIL_WIDTH = 160
INITIAL_FOV_DEG = 55.0


def import_viser():
    """The viser module, or an error telling the user how to install it."""
    try:
        import viser
    except ImportError as exc:
        raise Align3RError('the interactive viewer needs viser: pip install "align3r[viewer]" '
                           "(or use `align3r view DIR --screenshot out.png`, which needs nothing extra)") from exc
    return viser


def _wxyz(rotations: np.ndarray) -> np.ndarray:
    return rotation_to_quaternion_xyzw(rotations)[:, [3, 0, 1, 2]]


def _thumbnail(rgb: np.ndarray) -> np.ndarray:
    step = max(1, rgb.shape[1] // THUMBNAIL_WIDTH)
    return np.ascontiguousarray(rgb[::step, ::step])


class ViewerSession:
    """The scene of one reconstruction on a viser server.

    Nodes: ``/static_scene`` (fused static cloud), ``/frames/<stem>`` (each frame's cloud, only
    the current one visible), ``/cameras/<stem>`` (frusta with thumbnails), ``/trajectory``.
    GUI: frame slider, play / fps, toggles for the static scene, all frames and cameras, point size.
    """

    def __init__(self, server, content: ViewerContent, *, point_size: float | None = None):
        self.server, self.content = server, content
        scene, gui = server.scene, server.gui
        n = content.num_frames
        # Default: 1.5 pixel footprints at the median depth (frustum_depth is 10 % of it).
        footprint = 10 * content.frustum_depth / max(float(np.median(content.intrinsics[:, 0, 0])), 1e-6)
        size = point_size if point_size is not None else 1.5 * footprint
        h, w = content.size_hw
        scene.set_up_direction(tuple(float(x) for x in content.up))
        # Open on the screenshot's overview (behind and above the cameras), not viser's default
        # view of the origin, which may show nothing of the scene.
        eye, target = overview_viewpoint(content, (9, 16), vertical_fov_deg=INITIAL_FOV_DEG)
        server.initial_camera.position = tuple(float(x) for x in eye)
        server.initial_camera.look_at = tuple(float(x) for x in target)
        server.initial_camera.up = tuple(float(x) for x in content.up)
        server.initial_camera.fov = float(np.radians(INITIAL_FOV_DEG))
        self.static = scene.add_point_cloud("/static_scene", content.static.points, content.static.colors,
                                            point_size=size, precision="float32")
        self.frames = [scene.add_point_cloud(f"/frames/{stem}", p.points, p.colors, point_size=size,
                                             precision="float32", visible=(i == 0))
                       for i, (stem, p) in enumerate(zip(content.stems, content.frames, strict=True))]
        wxyz = _wxyz(content.cam2world[:, :3, :3])
        fov = 2 * np.arctan2(h / 2, content.intrinsics[:, 1, 1])
        self.cameras = [
            scene.add_camera_frustum(f"/cameras/{stem}", fov=float(fov[i]), aspect=w / h, scale=content.frustum_depth,
                                     color=tuple(int(c) for c in content.camera_colors[i]),
                                     image=_thumbnail(content.rgb[i]), wxyz=wxyz[i],
                                     position=content.cam2world[i, :3, 3])
            for i, stem in enumerate(content.stems)
        ]
        centres = content.cam2world[:, :3, 3]
        if n > 1:
            segs = np.stack([centres[:-1], centres[1:]], axis=1)
            self.trajectory = scene.add_line_segments("/trajectory", segs, np.repeat(
                content.camera_colors[:-1, None], 2, axis=1), thickness=2.0, thickness_units="screen")

        self.slider = gui.add_slider("frame", min=0, max=max(n - 1, 1), step=1, initial_value=0, disabled=n < 2)
        self.playing = gui.add_checkbox("play", initial_value=False)
        self.fps = gui.add_slider("fps", min=1, max=60, step=1, initial_value=10)
        self.show_static = gui.add_checkbox("static scene", initial_value=True)
        self.show_all = gui.add_checkbox("all frames", initial_value=False)
        self.show_cameras = gui.add_checkbox("cameras", initial_value=True)
        self.point_size = gui.add_slider("point size", min=size / 10, max=size * 10, step=size / 10, initial_value=size)
        self.current = 0

        self.slider.on_update(lambda _: self.show_frame(int(self.slider.value)))
        self.show_static.on_update(lambda _: setattr(self.static, "visible", bool(self.show_static.value)))
        self.show_all.on_update(lambda _: self.show_frame(self.current))
        self.show_cameras.on_update(lambda _: self._update_cameras())
        self.point_size.on_update(lambda _: self._update_point_size())
        self.show_frame(0)  # highlight the first camera from the start

    def show_frame(self, index: int) -> None:
        """Make frame ``index`` the current one (its cloud visible, its camera highlighted)."""
        self.current = int(index)
        everything = bool(self.show_all.value)
        with self.server.atomic():
            for i, handle in enumerate(self.frames):
                handle.visible = everything or i == self.current
        self._update_cameras()

    def _update_cameras(self) -> None:
        on = bool(self.show_cameras.value)
        for i, cam in enumerate(self.cameras):
            cam.visible = on
            cam.color = (230, 30, 30) if i == self.current else tuple(int(c) for c in self.content.camera_colors[i])

    def _update_point_size(self) -> None:
        for handle in [self.static, *self.frames]:
            handle.point_size = float(self.point_size.value)

    def step(self) -> None:
        """Advance one frame when playing (called by :func:`serve`'s loop)."""
        if self.playing.value and self.content.num_frames > 1:
            self.slider.value = (int(self.slider.value) + 1) % self.content.num_frames
            self.show_frame(int(self.slider.value))


def start(content: ViewerContent, *, host: str = "127.0.0.1", port: int = 8080) -> ViewerSession:
    """Start a viser server and build the scene (returns immediately)."""
    viser = import_viser()
    server = viser.ViserServer(host=host, port=port, verbose=False)
    return ViewerSession(server, content)


def serve(session: ViewerSession) -> None:
    """Block, playing the timeline when asked, until Ctrl-C; then stop the server."""
    try:
        while True:
            session.step()
            time.sleep(1.0 / max(1.0, float(session.fps.value)))
    finally:
        session.server.stop()

"""``align3r view DIR --screenshot out.png``: a static picture of the 4-D reconstruction.

Shows the fused static scene, one frame's full point cloud (dynamic objects at that instant)
and the camera frusta (colormap along time, the chosen frame's in red), from an overview point
behind the cameras or from one of the input cameras. Rendered in software (:mod:`.render`), so
it works on headless machines.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from align3r.atomic import write_bytes
from align3r.export.images import encode_png
from align3r.viewer.content import ViewerContent
from align3r.viewer.render import ViewCamera, intrinsics_for_fov, look_at, segment_points, splat

HIGHLIGHT = np.array([230, 30, 30], np.uint8)


def overview_viewpoint(content: ViewerContent, size_hw: tuple[int, int],
                       vertical_fov_deg: float = 55.0) -> tuple[np.ndarray, np.ndarray]:
    """``(eye, target)`` world points: behind and above the cameras, looking at the scene centre,
    far enough for a ``vertical_fov_deg`` view of ``size_hw`` (H, W) to frame it all."""
    cloud = content.static.points if len(content.static) else (
        np.concatenate([f.points for f in content.frames]) if content.frames else np.zeros((0, 3)))
    centres = content.cam2world[:, :3, 3]
    pts = np.concatenate([cloud, centres]) if len(cloud) else centres
    centre = np.median(pts, axis=0)
    radius = float(np.percentile(np.linalg.norm(pts - centre, axis=1), 90)) or 1.0
    forward = content.cam2world[:, :3, 2].mean(0)
    forward = forward / np.linalg.norm(forward) if np.linalg.norm(forward) > 1e-9 else np.array([0.0, 0.0, 1.0])
    h, w = size_hw
    half_fov = math.radians(vertical_fov_deg) / 2
    half_fov = min(half_fov, math.atan(math.tan(half_fov) * w / h))  # fit the narrower side
    distance = radius / math.tan(half_fov)
    return centre - forward * distance + content.up * 0.35 * distance, centre


def overview_camera(content: ViewerContent, size_hw: tuple[int, int], vertical_fov_deg: float = 55.0) -> ViewCamera:
    """A viewpoint behind and above the cameras, looking at the scene centre, framing it all."""
    eye, centre = overview_viewpoint(content, size_hw, vertical_fov_deg)
    return ViewCamera(intrinsics_for_fov(size_hw, vertical_fov_deg), look_at(eye, centre, content.up), size_hw)


def input_camera(content: ViewerContent, index: int, size_hw: tuple[int, int]) -> ViewCamera:
    """The viewpoint of input camera ``index``, its intrinsics rescaled to ``size_hw``."""
    h, w = content.size_hw
    sy, sx = size_hw[0] / h, size_hw[1] / w
    k = np.array(content.intrinsics[index], np.float64)
    # Same continuous-coordinate rescaling as any resize: x' = s * (u + 0.5) - 0.5.
    k[0, 0], k[0, 2] = sx * k[0, 0], sx * (k[0, 2] + 0.5) - 0.5
    k[1, 1], k[1, 2] = sy * k[1, 1], sy * (k[1, 2] + 0.5) - 0.5
    return ViewCamera(k, np.linalg.inv(content.cam2world[index].astype(np.float64)), size_hw)


def auto_point_radius(content: ViewerContent, camera: ViewCamera, points: np.ndarray, max_radius: int = 8) -> int:
    """Splat half-size that makes neighbouring points touch at the median viewing distance.

    Neighbouring pixels' points are about one pixel footprint apart: median depth / focal of the
    input cameras (10 * frustum_depth / f). Projected into the view camera that spacing spans
    p = f_view * spacing / z pixels; squares of 2r + 1 pixels with r = floor(p / 2) close the gap
    (r = 0 when looking through an input camera at its own resolution: one point per pixel).
    """
    if len(points) == 0:
        return 1
    sample = points[:: max(1, len(points) // 100_000)]
    z = sample @ camera.world2cam[2, :3] + camera.world2cam[2, 3]
    z = z[z > 0]
    if z.size == 0:
        return 1
    spacing = 10 * content.frustum_depth / max(float(np.median(content.intrinsics[:, 0, 0])), 1e-6)
    pixels = float(camera.intrinsics[0, 0]) * spacing / float(np.median(z))
    return int(np.clip(pixels // 2, 0, max_radius))


def render_screenshot(content: ViewerContent, *, frame: int | None = None, view: str | int = "overview",
                      size_hw: tuple[int, int] = (720, 1280), show_static: bool = True, show_cameras: bool = True,
                      point_radius: int | None = None, background=(255, 255, 255)) -> np.ndarray:
    """Render the reconstruction to an (H, W, 3) uint8 image.

    Args:
        frame: the frame whose full point cloud (incl. moving objects) is shown; default middle.
        view: ``"overview"`` or the index of an input camera to look through.
        size_hw: output (H, W); show_static / show_cameras: what to draw.
        point_radius: splat half-size in pixels; None = enough to close the gaps between
            neighbouring points at the typical distance (0 when looking through an input camera
            at its own resolution).
    """
    n = content.num_frames
    frame = n // 2 if frame is None else int(frame)
    if not 0 <= frame < n:
        raise IndexError(f"frame {frame} out of range: the reconstruction has {n} frames (0..{n - 1})")
    if view == "overview":
        camera = overview_camera(content, size_hw)
        skip_camera = None
    else:
        skip_camera = int(view)
        if not 0 <= skip_camera < n:
            raise IndexError(f"camera {skip_camera} out of range: the reconstruction has {n} cameras")
        camera = input_camera(content, skip_camera, size_hw)

    parts = [content.frames[frame]]
    if show_static:
        parts.append(content.static)
    points = [p.points for p in parts]
    colors = [p.colors for p in parts]
    if point_radius is None:
        point_radius = auto_point_radius(content, camera, np.concatenate(points))
    if show_cameras:
        cams = [i for i in range(n) if i != skip_camera]
        line_pts = segment_points(content.frusta[cams])  # (C, 8, S, 3)
        line_cols = np.array(content.camera_colors[cams])
        if frame in cams:
            line_cols[cams.index(frame)] = HIGHLIGHT
        points.append(line_pts.reshape(-1, 3))
        colors.append(np.repeat(line_cols, line_pts.shape[1] * line_pts.shape[2], axis=0))
    image, _ = splat(np.concatenate(points), np.concatenate(colors), camera, radius=point_radius,
                     background=background)
    return image


#: screenshot file formats, by extension (PIL writers; PNG is lossless, the default)
SCREENSHOT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP", ".bmp": "BMP",
                      ".tif": "TIFF", ".tiff": "TIFF"}


def screenshot_format(path: str | Path) -> str:
    """The PIL format the file name's extension asks for; ``InputError`` for any other extension."""
    from align3r.errors import InputError

    suffix = Path(path).suffix.lower()
    if suffix not in SCREENSHOT_FORMATS:
        raise InputError(f"cannot write a screenshot as {Path(path).name!r}: use one of "
                         f"{', '.join(SCREENSHOT_FORMATS)} (the extension picks the format)")
    return SCREENSHOT_FORMATS[suffix]


def save_screenshot(path: str | Path, image: np.ndarray) -> Path:
    """Write the image atomically in the format its extension names (:data:`SCREENSHOT_FORMATS`:
    PNG, JPEG at quality 95, ...); returns the path."""
    import io

    from PIL import Image

    path = Path(path)
    fmt = screenshot_format(path)
    if fmt == "PNG":
        data = encode_png(image)
    else:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(image)).save(buf, format=fmt, **({"quality": 95} if fmt in
                                                                               ("JPEG", "WEBP") else {}))
        data = buf.getvalue()
    write_bytes(path, data, durable=True)
    return path

"""A rerun recording (``.rrd``) of a reconstruction: frames, depth, confidence, masks, point
clouds and the camera trajectory on a timeline.

rerun-sdk is optional (``pip install "align3r[rerun]"``) and imported only when the format is
written. Entities (world coordinates are ours: OpenCV axes, reconstruction units):

- ``world``: view coordinates RDF (x right, y down, z forward), static.
- ``world/static_scene``: the fused static cloud, static; ``world/trajectory``: the camera
  centres as one line strip, static.
- on the ``frame`` timeline (sequence = frame index; also ``time`` in seconds when the input has
  timestamps), one row per frame:
  ``world/camera`` (``Transform3D`` camera-to-world + ``Pinhole`` K), ``world/camera/image``
  (RGB), ``world/camera/depth`` (``DepthImage``, 1 unit = 1), ``world/camera/confidence``
  (float32 raw confidence), ``world/camera/dynamic_mask`` (``SegmentationImage``, 1 = moving),
  ``world/points`` (that frame's confident points, moving objects included).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from align3r.errors import InputError
from align3r.export.pointcloud import PointSet
from align3r.export.sequence import SequenceData

INSTALL_HINT = 'the rerun output needs rerun-sdk: pip install "align3r[rerun]"'
FRAME_TIMELINE = "frame"
TIME_TIMELINE = "time"
PER_FRAME_ENTITIES = ("world/camera", "world/camera/image", "world/camera/depth", "world/camera/confidence",
                      "world/camera/dynamic_mask", "world/points")
STATIC_ENTITIES = ("world", "world/static_scene", "world/trajectory")


def rerun_available() -> bool:
    """Whether rerun-sdk is installed (checked before any work when ``rerun`` is asked for)."""
    return importlib.util.find_spec("rerun") is not None


def check_rerun() -> None:
    """Raise :class:`~align3r.errors.InputError` with the install command if rerun-sdk is missing."""
    if not rerun_available():
        raise InputError(INSTALL_HINT + ", or leave rerun out of the formats")


def write_recording(path: Path, seq: SequenceData, static: PointSet, frame_points: Iterable[PointSet], *,
                    frustum_depth: float) -> dict:
    """Write the recording to ``path`` (a temporary name: the caller renames it into place).

    Args:
        seq: the sequence (network resolution).
        static: the fused static cloud; frame_points: N per-frame world point sets.
        frustum_depth: distance of the drawn image plane from each camera, reconstruction units.
    Returns:
        Manifest details: entities, timelines, number of frames.
    """
    check_rerun()
    import rerun as rr

    rec = rr.RecordingStream("align3r", make_default=False, make_thread_default=False)
    rec.save(str(path))
    h, w = seq.size_hw
    centres = np.asarray(seq.cam2world[:, :3, 3], np.float32)
    rec.log("world", rr.ViewCoordinates.RDF, static=True)
    rec.log("world/static_scene", rr.Points3D(static.points, colors=static.colors), static=True)
    rec.log("world/trajectory", rr.LineStrips3D([centres]), static=True)
    timelines = [FRAME_TIMELINE, *([TIME_TIMELINE] if seq.timestamps_are_seconds else [])]
    for i, points in enumerate(frame_points):
        rec.set_time(FRAME_TIMELINE, sequence=i)
        if seq.timestamps_are_seconds:
            # nanoseconds as an integer: a float number of seconds is rounded to microseconds
            rec.set_time(TIME_TIMELINE, duration=np.timedelta64(round(float(seq.timestamps[i]) * 1e9), "ns"))
        pose = np.asarray(seq.cam2world[i], np.float32)
        rec.log("world/camera", rr.Transform3D(translation=pose[:3, 3], mat3x3=pose[:3, :3]),
                rr.Pinhole(image_from_camera=np.asarray(seq.intrinsics[i], np.float32), resolution=[w, h],
                           camera_xyz=rr.ViewCoordinates.RDF, image_plane_distance=frustum_depth))
        rec.log("world/camera/image", rr.Image(seq.rgb[i]))
        rec.log("world/camera/depth", rr.DepthImage(np.asarray(seq.depth[i], np.float32), meter=1.0))
        rec.log("world/camera/confidence", rr.Image(np.asarray(seq.conf[i], np.float32), color_model="L"))
        rec.log("world/camera/dynamic_mask", rr.SegmentationImage(np.asarray(seq.dynamic_mask[i], np.uint8)))
        rec.log("world/points", rr.Points3D(points.points, colors=points.colors))
    rec.flush()
    rec.disconnect()  # closes the file sink: the file is complete when this returns
    return {"entities": sorted({*STATIC_ENTITIES, *PER_FRAME_ENTITIES}), "timelines": timelines,
            "frames": len(seq), "world_axes": "RDF (OpenCV: x right, y down, z forward)"}

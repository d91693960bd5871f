"""Input: frames from videos and image folders, and network-ready views.

- ``iter_frames`` / ``read_frames`` / ``probe`` (``align3r.io.frames``): decode and sample a video
  file or an image folder (``Frame``, ``FrameSequence``, ``SourceInfo``).
- ``make_views`` (``align3r.io.views``): the official resize/crop to 512 or 224, image tensor,
  ``true_shape`` and prior point maps (``Views``, ``ViewGeometry``).

Names are imported lazily so that ``import align3r.io.<module>`` stays light.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "Frame": "align3r.io.frames",
    "FrameSequence": "align3r.io.frames",
    "SourceInfo": "align3r.io.frames",
    "iter_frames": "align3r.io.frames",
    "read_frames": "align3r.io.frames",
    "probe": "align3r.io.frames",
    "frames_from_arrays": "align3r.io.frames",
    "Views": "align3r.io.views",
    "make_views": "align3r.io.views",
    "ViewGeometry": "align3r.io.view_geometry",
    "compute_view_geometry": "align3r.io.view_geometry",
    "IMAGE_EXTENSIONS": "align3r.io.folder",
    "VIDEO_EXTENSIONS": "align3r.io.video",
}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'align3r.io' has no attribute {name!r}")

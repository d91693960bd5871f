"""The official per-frame prior files ``<stem>_pred_depth_<name>.npz``: naming, writing, checking.

Layout as the official code writes it (``third_party/ml-depth-pro/infer_training_set.py`` and
``infer_test_set.py``; ``shared/fixtures/prior``), compressed:

- ``depthpro``: ``depth`` float32 (H, W) metres at the image's resolution, ``focallength_px``
  0-d float32.
- ``depthanything``: ``depth`` float32 (1, h, w) relative disparity (official files: at the
  processor's resolution; ours: at the image's), plus ``focallength_px`` only in training files
  (the ground-truth fx from the frame's ``_metadata.npz``).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from align3r.atomic import atomic_path
from align3r.priors.types import DepthPrior

#: the kind of map each official cache name holds
OFFICIAL_KINDS = {"depthpro": "depth", "depthanything": "disparity"}
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def frame_stem(frame: str | Path) -> str:
    """A frame's name without its image extension (``a/0012_rgb.jpg`` → ``0012_rgb``); names that
    are already stems (``frame-000000.color``, as ``align3r.io`` gives) are kept whole."""
    frame = Path(frame)
    return frame.stem if frame.suffix.lower() in _IMAGE_SUFFIXES else frame.name


def official_cache_path(frame: str | Path, name: str, folder: str | Path | None = None) -> Path:
    """Where the official code keeps a frame's prior: ``<dir>/<stem>_pred_depth_<name>.npz``.

    ``frame`` is the frame's path (or its name, with ``folder``); ``folder`` replaces its directory."""
    frame = Path(frame)
    return Path(folder or frame.parent) / f"{frame_stem(frame)}_pred_depth_{name}.npz"


def write_official_cache(path: str | Path, prior: DepthPrior, name: str, focal_px: float | None = None) -> None:
    """Write ``prior`` in the official layout for ``name`` (see the module doc), atomically.

    ``focal_px`` is stored as ``focallength_px`` for Depth Anything files (training sets use the
    ground-truth fx); Depth Pro files always store the prior's own focal.
    """
    path = Path(path)
    depth = np.ascontiguousarray(prior.depth, dtype=np.float32)
    if name == "depthpro":
        if prior.focal_px is None:
            raise ValueError("a Depth Pro cache needs the prior's focal length")
        arrays = {"depth": depth, "focallength_px": np.float32(prior.focal_px)}
    elif name == "depthanything":
        arrays = {"depth": depth[None]}
        if focal_px is not None:
            arrays["focallength_px"] = np.float32(focal_px)
    else:
        raise ValueError(f"official caches exist for {', '.join(OFFICIAL_KINDS)}, not {name!r}")
    hint = "free some disk space or choose another output folder; the files written so far are intact"
    with atomic_path(path, hint=hint) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(fh, **arrays)


def official_cache_ok(path: str | Path, name: str, frame_size: tuple[int, int]) -> bool:
    """Whether ``path`` is a complete cache for ``name`` at the frame's (H, W): readable, finite,
    the right shape, and with a focal for Depth Pro. Resumable runs skip such files."""
    try:
        with np.load(path, allow_pickle=False) as data:
            depth = np.asarray(data["depth"])
            if name == "depthpro" and float(data["focallength_px"]) <= 0:
                return False
    except (OSError, ValueError, KeyError, EOFError, TypeError, zipfile.BadZipFile):
        return False
    if name == "depthanything" and depth.ndim == 3 and depth.shape[0] == 1:
        depth = depth[0]
    return depth.shape == tuple(frame_size) and bool(np.isfinite(depth).all())

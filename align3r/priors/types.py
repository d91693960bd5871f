"""The depth-prior value passed from the monocular depth models to the view preparation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np


@dataclass
class DepthPrior:
    """A monocular depth prior for one frame, at the frame's original resolution (model sources)
    or at a file's own resolution with the frame's aspect ratio (file sources; ``make_views``'
    ``prior_resize`` decides how it reaches the view).

    - ``depth``: (H, W) float32. For ``kind == "depth"`` metric z-depth in metres (Depth Pro,
      user-supplied depth); for ``kind == "disparity"`` relative inverse depth (Depth Anything
      V2), which the official pipeline back-projects *as if it were depth* (official
      ``dust3r/utils/image_pose.py``, ``load_images`` → ``pixel_to_pointcloud``).
    - ``focal_px``: focal length in pixels at the depth's resolution (Depth Pro's estimate, EXIF, or
      user-given); None when the model gives none (the point map then uses the official 200 px,
      which cancels in the normalisation).
    - ``kind``: "depth" or "disparity".
    - ``source``: what produced it, e.g. ``"apple/DepthPro-hf"`` or a file path.
    """

    depth: np.ndarray
    focal_px: float | None
    kind: Literal["depth", "disparity"]
    source: str = ""

    def __post_init__(self) -> None:
        if self.depth.ndim != 2:
            raise ValueError(f"DepthPrior.depth must be (H, W), got shape {self.depth.shape}")
        if self.kind not in ("depth", "disparity"):
            raise ValueError(f"DepthPrior.kind must be 'depth' or 'disparity', got {self.kind!r}")

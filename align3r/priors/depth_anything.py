"""Depth Anything V2 through ``transformers``: relative disparity at the image's resolution.

Resolution. The official caches (``transformers`` 4.41.2 ``pipeline("depth-estimation")``) store
the pipeline's ``predicted_depth``, which in that version is the raw network output at the
*processor* resolution: aspect ratio kept, the side whose scale is nearest 1 set to 518, the other
rounded to a multiple of 14 (854x480 → 924x518, Sintel 1024x436 → 1218x518), stored as (1, h, w).
The official loader then resizes that map with the image's resize rule, which for 854x480 frames
yields a 287-row prior for a 288-row image (silently cropped). We instead return the prior at the
image's original H x W, so every later resize/crop is the image's own.

Interpolation (:func:`~align3r.priors.resample.resize_map`): bilinear, ``align_corners=False``,
with antialiasing when shrinking. Bilinear is a
convex combination of neighbours, so the resized disparity stays within the network output's
range (never negative, unlike bicubic overshoot next to the zero-disparity sky), and the per-channel
min-max normalisation of the point map (official
``dust3r/utils/image_pose.py``, ``normalize_pointcloud``) sees the same extremes.

Preprocessing uses the model's own processor with the PIL backend, which resizes the uint8 image
with PIL bicubic like the 4.41.2 processor the official caches were made with.
"""

from __future__ import annotations

import numpy as np
import torch

from align3r.errors import CheckpointError
from align3r.priors.hf import load_processor
from align3r.priors.hf_model import HFDepthModel
from align3r.priors.resample import resize_map
from align3r.priors.types import DepthPrior

DEPTH_ANYTHING_HUB_IDS = {
    "small": "depth-anything/Depth-Anything-V2-Small-hf",
    "base": "depth-anything/Depth-Anything-V2-Base-hf",
    "large": "depth-anything/Depth-Anything-V2-Large-hf",
}


class DepthAnythingPrior(HFDepthModel):
    """Depth Anything V2 relative disparity (``kind="disparity"``, ``focal_px=None``) at the original resolution.

    Args:
        model: ``"small"``, ``"base"``, ``"large"`` (default; the official choice), a Hub id, or a
            folder written by ``save_pretrained``.
        processor_backend: ``"pil"`` (default, as the official caches) or ``"torchvision"`` (faster
            on GPU, slightly different resize).
        Other arguments as :class:`~align3r.priors.depth_pro.DepthProPrior`.
    """

    name = "depthanything"
    label = "Depth Anything V2"
    model_class_name = "AutoModelForDepthEstimation"
    model_type = "depth_anything"

    def __init__(self, model: str = "large", *, processor_backend: str = "pil", **kwargs) -> None:
        super().__init__(DEPTH_ANYTHING_HUB_IDS.get(model.lower(), model), **kwargs)
        if processor_backend not in ("pil", "torchvision"):
            raise ValueError(f"processor_backend must be 'pil' or 'torchvision', got {processor_backend!r}")
        self.processor_backend = processor_backend

    def _settings_identity(self) -> str:
        return f"|processor={self.processor_backend}"

    def _load_processor(self):
        return load_processor(self.resolved, cache_dir=self.cache_dir, local_files_only=self.local_files_only,
                              backend=self.processor_backend)

    def _check_model(self, model: torch.nn.Module) -> None:
        if getattr(model.config, "model_type", None) != "depth_anything":
            raise CheckpointError(f"{self.model_name} is a {model.config.model_type!r} model, "
                                  "not Depth Anything (model_type 'depth_anything')")
        if getattr(model.config, "depth_estimation_type", "relative") != "relative":
            raise CheckpointError(f"{self.model_name} is a metric Depth Anything model; Align3R's prior is the "
                                  "relative (disparity) model, e.g. depth-anything/Depth-Anything-V2-Large-hf")

    def _infer_batch(self, frames: list[np.ndarray], focals: list[float | None]) -> list[DepthPrior]:
        height, width = frames[0].shape[:2]
        pixel_values = self.processor(images=frames, return_tensors="pt",
                                      input_data_format="channels_last")["pixel_values"]
        outputs = self.model(pixel_values=pixel_values.to(self.device, self.dtype))
        disparity = resize_map(outputs.predicted_depth, (height, width)).cpu().numpy()
        return [DepthPrior(depth=disparity[i], focal_px=None, kind="disparity", source=self.source)
                for i in range(len(frames))]

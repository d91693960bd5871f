"""Depth Pro (Apple) through ``transformers``: metric depth in metres and the focal length in px.

What the official pipeline stores for each frame (``third_party/ml-depth-pro/infer_test_set.py``,
through ``src/depth_pro/depth_pro.py``, ``DepthPro.infer``), and what this returns:
the image, normalised to [-1, 1], is resized bilinearly (align_corners=False, no antialias) to
1536x1536; the network gives a *canonical* inverse depth and a field of view; with
``f_px = 0.5 W / tan(fov / 2)`` (or the known focal, e.g. from EXIF, when given) the inverse
depth is multiplied by ``W / f_px``, resized bilinearly back to H x W, and
``depth = 1 / clamp(inverse_depth, 1e-4, 1e4)`` metres.

``transformers``' own ``DepthProImageProcessor.post_process_depth_estimation`` computes the same
numbers only when it is given ``target_sizes`` *and* the model has its FoV head; without target
sizes it returns ``1 / canonical inverse depth`` (not metres, not at the image size), and it has
no way to use a known focal. So we keep the processor for the input side (identical to the
official one) and apply the official output formula ourselves in :func:`metric_depth`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from align3r.errors import Align3RError, CheckpointError
from align3r.priors.hf_model import HFDepthModel
from align3r.priors.types import DepthPrior

DEPTH_PRO_HUB_ID = "apple/DepthPro-hf"
MIN_INVERSE_DEPTH = 1e-4  # 1/m; depth is clamped to [1e-4, 1e4] m, as in the official ``infer``
MAX_INVERSE_DEPTH = 1e4


def focal_from_fov(fov_deg: Tensor, width: int) -> Tensor:
    """Horizontal field of view (degrees, (B,)) → focal length in px for an image ``width`` px wide."""
    return 0.5 * width / torch.tan(0.5 * torch.deg2rad(fov_deg.float()))


def metric_depth(canonical_inverse_depth: Tensor, image_size: tuple[int, int], fov_deg: Tensor | None = None,
                 focal_px: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Depth Pro's raw output → metric depth at the image's resolution (the official formula).

    Args:
        canonical_inverse_depth: (B, h, w) the network's ``predicted_depth`` at network resolution.
        image_size: (H, W) of the original images.
        fov_deg: (B,) the FoV head's horizontal field of view in degrees, or None if the model has none.
        focal_px: (B,) known focal lengths in px at the original resolution, NaN where unknown
            (those use the FoV head's estimate); None = all unknown.
    Returns:
        depth (B, H, W) float32 in metres, and the focal (B,) in px that was used.
    """
    height, width = image_size
    inverse = canonical_inverse_depth.float()
    batch = inverse.shape[0]
    known = torch.full((batch,), float("nan"), device=inverse.device) if focal_px is None else focal_px
    known = known.to(device=inverse.device, dtype=torch.float32)
    unknown = torch.isnan(known)
    if bool(unknown.any()):
        if fov_deg is None:
            raise CheckpointError("this Depth Pro model has no field-of-view head (use_fov_model=false), so it "
                                  "cannot give metric depth without the focal length: pass focal_px")
        known = torch.where(unknown, focal_from_fov(fov_deg.to(inverse.device), width), known)
    bad = ~torch.isfinite(known) | (known <= 0)
    if bool(bad.any()):
        i = int(bad.nonzero()[0])
        raise Align3RError(f"Depth Pro's field-of-view head gave an unusable focal length ({float(known[i])} px) "
                           f"for frame {i} of this batch; pass the focal length (focal_px) instead")
    inverse = inverse * (width / known)[:, None, None]
    if inverse.shape[-2:] != (height, width):
        inverse = F.interpolate(inverse[:, None], size=(height, width), mode="bilinear", align_corners=False)[:, 0]
    depth = 1.0 / inverse.clamp(MIN_INVERSE_DEPTH, MAX_INVERSE_DEPTH)
    return depth, known


class DepthProPrior(HFDepthModel):
    """Depth Pro metric depth (m) at the original resolution plus its focal length (px).

    Args:
        model: Hub id (default ``apple/DepthPro-hf``) or a folder written by ``save_pretrained``.
        revision: Hub branch, tag or commit.
        device: None → CUDA if available, else CPU.
        dtype: None → float16 on CUDA, float32 on CPU (the official code runs float32).
        batch_size: frames per forward pass (None → 4 on CUDA, 1 on CPU).
        cache_dir: Hugging Face cache folder (None → the default, HF_HUB_CACHE).
        local_files_only: never contact the Hub (None → only when HF_HUB_OFFLINE is set).
        progress: show a progress bar.

    ``predict(images, focal_px)``: a given focal (e.g. from EXIF) replaces the FoV head's
    estimate in the depth formula and is returned as the prior's focal, as in the official code.
    """

    name = "depthpro"
    label = "Depth Pro"
    metric = True
    model_class_name = "DepthProForDepthEstimation"
    model_type = "depth_pro"

    def __init__(self, model: str = DEPTH_PRO_HUB_ID, **kwargs) -> None:
        super().__init__(model, **kwargs)

    def _check_model(self, model: torch.nn.Module) -> None:
        if getattr(model.config, "model_type", None) != self.model_type:
            raise CheckpointError(f"{self.model_name} is a {model.config.model_type!r} model, not Depth Pro")

    def _infer_batch(self, frames: list[np.ndarray], focals: list[float | None]) -> list[DepthPrior]:
        height, width = frames[0].shape[:2]
        pixel_values = self.processor(images=frames, return_tensors="pt", device=self.device,
                                      input_data_format="channels_last")["pixel_values"]
        outputs = self.model(pixel_values=pixel_values.to(self.device, self.dtype))
        known = torch.tensor([np.nan if f is None else f for f in focals], dtype=torch.float32)
        fov = getattr(outputs, "field_of_view", None)
        depth, focal = metric_depth(outputs.predicted_depth, (height, width), fov, known)
        depth, focal = depth.cpu().numpy(), focal.cpu().numpy()
        # a given focal is returned exactly as given (not rounded through float32)
        return [DepthPrior(depth=depth[i], focal_px=float(focal[i]) if f is None else f, kind="depth",
                           source=self.source) for i, f in enumerate(focals)]

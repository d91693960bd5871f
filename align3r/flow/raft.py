"""The RAFT backend: torchvision's RAFT (large or small) on batches of image pairs.

Inputs are the network's float frames in [-1, 1] (what torchvision's RAFT was trained on),
padded by us to a multiple of 8 (and to at least 128 px, the smallest size RAFT's 4-level
correlation pyramid accepts) with centred edge replication, then the flow is cropped back.
Only the last of the ``num_flow_updates`` refinements is upsampled to full resolution: the
official code uses the final flow only, and torchvision's forward would upsample (and keep)
every intermediate one.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from align3r.flow.padding import CentredPadding
from align3r.flow.raft_weights import RAFT_VARIANTS, WeightsSpec, build_raft

try:  # private helpers of torchvision's RAFT; without them we fall back to its public forward.
    from torchvision.models.optical_flow._utils import make_coords_grid, upsample_flow
except ImportError:  # pragma: no cover - depends on the torchvision version
    make_coords_grid = upsample_flow = None

# RAFT downsamples by 8 and then pools 3 more times: 8 * 2 * 2**3 = 128 px per side at least.
RAFT_MIN_SIZE = 128


class RaftBackend:
    """Optical flow with a torchvision RAFT network.

    Call with ``source, target``: (B, 3, H, W) float in [-1, 1], any H x W; returns the
    (B, 2, H, W) float32 flow in pixels ``(du, dv)`` taking source pixels to the target.
    """

    def __init__(self, model: nn.Module, *, name: str = "raft", num_flow_updates: int = 20,
                 device: torch.device | str = "cpu") -> None:
        if num_flow_updates < 1:
            raise ValueError(f"num_flow_updates must be >= 1, got {num_flow_updates}")
        self.name = name
        self.num_flow_updates = int(num_flow_updates)
        self.device = torch.device(device)
        self.model = model.to(self.device).train(False)  # inference: BatchNorm uses its running stats

    @classmethod
    def load(cls, variant: str = "raft-large", *, weights: WeightsSpec = "DEFAULT", num_flow_updates: int = 20,
             device: torch.device | str = "cpu", download: bool | None = None,
             progress: bool = True) -> RaftBackend:
        """Build ``variant`` (``"raft-large"``/``"raft-small"``) with ``weights`` (see :mod:`raft_weights`)."""
        model = build_raft(variant, weights, download=download, progress=progress)
        return cls(model, name=variant, num_flow_updates=num_flow_updates, device=device)

    @torch.no_grad()
    def __call__(self, source: Tensor, target: Tensor) -> Tensor:
        if source.shape != target.shape or source.ndim != 4 or source.shape[1] != 3:
            raise ValueError(f"source and target must both be (B, 3, H, W), got {tuple(source.shape)} "
                             f"and {tuple(target.shape)}")
        h, w = source.shape[-2:]
        padding = CentredPadding.for_size(h, w, multiple=8, min_size=RAFT_MIN_SIZE)
        source = padding.pad(source.to(self.device, torch.float32))
        target = padding.pad(target.to(self.device, torch.float32))
        return padding.crop(final_raft_flow(self.model, source, target, self.num_flow_updates)).contiguous()


def final_raft_flow(model: nn.Module, image1: Tensor, image2: Tensor, num_flow_updates: int) -> Tensor:
    """The last flow of torchvision's ``RAFT.forward`` without upsampling the intermediate ones.

    Args:
        model: a torchvision ``RAFT`` in eval mode.
        image1, image2: (B, 3, H, W) float in [-1, 1], H and W multiples of 8 and >= 128.
    Returns:
        (B, 2, H, W) flow in pixels, equal to ``model(image1, image2, num_flow_updates)[-1]``.
    """
    if make_coords_grid is None:
        return model(image1, image2, num_flow_updates=num_flow_updates)[-1]
    b, _, h, w = image1.shape
    features = model.feature_encoder(torch.cat([image1, image2], dim=0))
    fmap1, fmap2 = torch.chunk(features, chunks=2, dim=0)
    model.corr_block.build_pyramid(fmap1, fmap2)
    context = model.context_encoder(image1)
    hidden_size = model.update_block.hidden_state_size
    hidden, context = torch.split(context, [hidden_size, context.shape[1] - hidden_size], dim=1)
    hidden, context = torch.tanh(hidden), torch.relu(context)
    coords0 = make_coords_grid(b, h // 8, w // 8).to(fmap1.device)
    coords1 = coords0.clone()
    for _ in range(num_flow_updates):
        correlation = model.corr_block.index_pyramid(centroids_coords=coords1)
        hidden, delta = model.update_block(hidden, context, correlation, coords1 - coords0)
        coords1 = coords1 + delta
    up_mask = None if model.mask_predictor is None else model.mask_predictor(hidden)
    return upsample_flow(flow=coords1 - coords0, up_mask=up_mask)


def raft_variants() -> list[str]:
    return sorted(RAFT_VARIANTS)

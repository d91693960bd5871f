"""Patch embeddings: a 16×16 stride-16 convolution plus each token's (row, col) grid position.

Two flavours, same weights (``proj``):

- ``PatchEmbed`` (the official ``PatchEmbedDust3R``): inference; any orientation, ignores
  ``true_shape``.
- ``ManyARPatchEmbed`` (the official ``ManyAR_PatchEmbed``): training batches are stored
  landscape; a sample whose ``true_shape`` is portrait was transposed by the data pipeline, so
  it is transposed back before the projection and gets the positions of its portrait grid. Its
  tokens are therefore in the true (portrait) raster order.

Both serve the image branch (3 → enc_embed_dim) and the prior branch (3 → dec_embed_dim).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from align3r.errors import InputError


def patch_positions(rows: int, cols: int, device: torch.device | str | None = None) -> Tensor:
    """(rows·cols, 2) int64 (row, col) of every patch in raster order."""
    r = torch.arange(rows, device=device)
    c = torch.arange(cols, device=device)
    return torch.cartesian_prod(r, c)


class PatchEmbed(nn.Module):
    """Inference patch embedding.

    ``forward(images (B,C,H,W), true_shape=None) -> (tokens (B, N, D), positions (B, N, 2) int64)``
    with N = (H/p)·(W/p) tokens in raster order; H and W must be multiples of the patch size p.
    """

    def __init__(self, patch_size: int, in_channels: int, embed_dim: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.embed_dim = embed_dim
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=patch_size, stride=patch_size)

    def _check(self, images: Tensor) -> None:
        if images.ndim != 4 or images.shape[1] != self.proj.in_channels:
            raise InputError(f"expected a (B, {self.proj.in_channels}, H, W) tensor, got {tuple(images.shape)}")
        h, w = images.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise InputError(f"image size {h}x{w} (HxW) is not a multiple of the patch size {self.patch_size}; "
                             f"resize or crop the input (e.g. 512x288)")

    def embed(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """Project (B, C, H, W) images in their own orientation."""
        tokens = self.proj(images)  # (B, D, h, w)
        rows, cols = tokens.shape[-2:]
        pos = patch_positions(rows, cols, images.device).expand(images.shape[0], -1, -1)
        return tokens.flatten(2).transpose(1, 2), pos

    def forward(self, images: Tensor, true_shape: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(images)
        return self.embed(images)


class ManyARPatchEmbed(PatchEmbed):
    """Training patch embedding for landscape batches that hold transposed portrait samples.

    ``forward(images (B,C,H,W) with W >= H, true_shape (B,2) (height, width)) ->
    (tokens (B,N,D), positions (B,N,2))``: rows whose true shape is portrait (height > width)
    are transposed back to (C, W, H) before the projection; their positions follow the portrait
    grid. Each ``true_shape`` row must be (H, W) or (W, H).
    """

    def forward(self, images: Tensor, true_shape: Tensor | None = None) -> tuple[Tensor, Tensor]:
        self._check(images)
        b, _, h, w = images.shape
        if w < h:
            raise InputError(f"training-mode batches must be stored landscape (W >= H), got {h}x{w}; "
                             "transpose portrait samples and give their true (H, W) in true_shape")
        portrait = portrait_rows(true_shape, b, h, w)
        if not portrait.any():
            return self.embed(images)
        if portrait.all():
            return self.embed(images.transpose(-1, -2))
        tokens_l, pos_l = self.embed(images[~portrait])
        tokens_p, pos_p = self.embed(images[portrait].transpose(-1, -2))
        tokens = tokens_l.new_empty((b, *tokens_l.shape[1:]))
        pos = pos_l.new_empty((b, *pos_l.shape[1:]))
        tokens[~portrait], tokens[portrait] = tokens_l, tokens_p
        pos[~portrait], pos[portrait] = pos_l, pos_p
        return tokens, pos


def portrait_rows(true_shape: Tensor | None, batch: int, height: int, width: int) -> Tensor:
    """(B,) bool: which rows of a landscape (H, W) batch hold a transposed portrait sample.

    ``true_shape`` (B, 2) int gives each sample's (height, width); rows must read (H, W) or (W, H).
    """
    if true_shape is None:
        raise InputError("training-mode forward needs view['true_shape'] (B, 2) with each sample's (H, W)")
    if tuple(true_shape.shape) != (batch, 2):
        raise InputError(f"true_shape must be ({batch}, 2), got {tuple(true_shape.shape)}")
    ts = true_shape.to("cpu", torch.int64)
    landscape = (ts[:, 0] == height) & (ts[:, 1] == width)
    portrait = (ts[:, 0] == width) & (ts[:, 1] == height) & (ts[:, 0] > ts[:, 1])
    if not bool((landscape | portrait).all()):
        raise InputError(f"true_shape rows must be ({height}, {width}) or ({width}, {height}) for a "
                         f"{height}x{width} batch, got {ts.tolist()}")
    return portrait.to(true_shape.device)

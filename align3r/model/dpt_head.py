"""The DPT head: four decoder layers fused into a dense (B, 4, H, W) map (3 coordinates + conf).

Layout and numerics follow the official ``DPTOutputAdapter_fix`` (``dust3r/heads/dpt_head.py``, on
``croco/models/dpt_block.py``'s ``DPTOutputAdapter``): the token
maps of hooks ``[0, L/2, 3L/4, L]`` are resampled to 1/4, 1/8, 1/16 and 1/32 of the image
(transposed convolutions ×4, ×2, identity, stride-2 conv), projected to 256 channels, fused
coarse-to-fine with residual conv units and ×2 bilinear upsampling (``align_corners=True``), and
regressed by a small conv head. Widths are the official fixed ones whatever the transformer size.
Submodule names match the official state dict (``act_postprocess``, ``scratch.layer1_rn``,
``scratch.refinenet1.resConfUnit1`` …).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

LAYER_DIMS = (96, 192, 384, 768)
FEATURE_DIM = 256
LAST_DIM = 128


def _upsample2x() -> nn.Upsample:
    return nn.Upsample(scale_factor=2, mode="bilinear", align_corners=True)


class ResidualConvUnit(nn.Module):
    """``x + conv2(relu(conv1(relu(x))))`` with 3×3 convs. (B, C, h, w) -> (B, C, h, w)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, kernel_size=3, padding=1)
        self.activation = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.activation(self.conv1(self.activation(x)))) + x


class FusionBlock(nn.Module):
    """``out_conv(up2x(RCU2(path + RCU1(skip))))``; (B, C, h, w) [+ skip (B, C, h, w)] -> (B, C, 2h, 2w).

    ``resConfUnit1`` is unused when there is no skip (the deepest block); it stays for the
    state dict.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.resConfUnit1 = ResidualConvUnit(channels)
        self.resConfUnit2 = ResidualConvUnit(channels)
        self.upsample = _upsample2x()
        self.out_conv = nn.Conv2d(channels, channels, kernel_size=1)

    def forward(self, path: Tensor, skip: Tensor | None = None) -> Tensor:
        if skip is not None:
            path = path + self.resConfUnit1(skip)
        return self.out_conv(self.upsample(self.resConfUnit2(path)))


class DPTScratch(nn.Module):
    """Container matching the official ``scratch`` namespace: 4 projections + 4 fusion blocks."""

    def __init__(self, layer_dims: Sequence[int], feature_dim: int) -> None:
        super().__init__()
        for i, dim in enumerate(layer_dims, start=1):
            self.add_module(f"layer{i}_rn", nn.Conv2d(dim, feature_dim, kernel_size=3, padding=1, bias=False))
        for i in range(1, 5):
            self.add_module(f"refinenet{i}", FusionBlock(feature_dim))

    def projection(self, level: int) -> nn.Conv2d:
        return getattr(self, f"layer{level + 1}_rn")


class DPTAdapter(nn.Module):
    """Hooks -> dense map. ``forward(decout, image_size) -> (B, num_channels, H, W)``.

    - ``decout``: list of dec_depth + 1 token tensors (B, N, C), N = (H/16)·(W/16) in raster
      order; entry 0 is the encoder output (enc_dim), the others decoder layers (dec_dim).
      Only the ``hooks`` entries are read (the others may be ``None``).
    - ``image_size``: (H, W) in pixels, multiples of 16.
    """

    def __init__(self, token_dims: Sequence[int], hooks: Sequence[int], num_channels: int = 4,
                 patch_size: int = 16) -> None:
        super().__init__()
        self.hooks = tuple(hooks)
        self.patch_size = patch_size
        d0, d1, d2, d3 = LAYER_DIMS
        self.act_postprocess = nn.ModuleList([
            nn.Sequential(nn.Conv2d(token_dims[0], d0, 1), nn.ConvTranspose2d(d0, d0, 4, stride=4)),
            nn.Sequential(nn.Conv2d(token_dims[1], d1, 1), nn.ConvTranspose2d(d1, d1, 2, stride=2)),
            nn.Sequential(nn.Conv2d(token_dims[2], d2, 1)),
            nn.Sequential(nn.Conv2d(token_dims[3], d3, 1), nn.Conv2d(d3, d3, 3, stride=2, padding=1)),
        ])
        self.scratch = DPTScratch(LAYER_DIMS, FEATURE_DIM)
        self.head = nn.Sequential(
            nn.Conv2d(FEATURE_DIM, FEATURE_DIM // 2, 3, padding=1),
            _upsample2x(),
            nn.Conv2d(FEATURE_DIM // 2, LAST_DIM, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(LAST_DIM, num_channels, 1),
        )

    def forward(self, decout: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor:
        rows, cols = image_size[0] // self.patch_size, image_size[1] // self.patch_size
        levels = []
        for level, hook in enumerate(self.hooks):
            grid = decout[hook].transpose(1, 2).unflatten(-1, (rows, cols))  # (B, C, h, w)
            levels.append(self.scratch.projection(level)(self.act_postprocess[level](grid)))
        s = self.scratch
        # On odd token grids the stride-2 level rounds up; crop its upsampled fusion to level 2.
        path = s.refinenet4(levels[3])[:, :, : levels[2].shape[2], : levels[2].shape[3]]
        path = s.refinenet3(path, levels[2])
        path = s.refinenet2(path, levels[1])
        path = s.refinenet1(path, levels[0])
        return self.head(path)


class DPTHead(nn.Module):
    """One view's DPT head (``downstream_head{1,2}``): ``forward(decout, (H, W)) -> (B, 4, H, W)`` raw."""

    def __init__(self, enc_dim: int, dec_dim: int, hooks: Sequence[int], patch_size: int = 16) -> None:
        super().__init__()
        self.dpt = DPTAdapter((enc_dim, dec_dim, dec_dim, dec_dim), hooks, num_channels=4, patch_size=patch_size)

    def forward(self, decout: Sequence[Tensor], image_size: tuple[int, int]) -> Tensor:
        return self.dpt(decout, image_size)

"""The Align3R depth-prior branch: how the prior point map enters the decoder.

The prior point map of a view (B, H, W, 3) is patch-embedded to decoder width (no norm), passed
through ``dec_depth // 2 - 2`` self-attention blocks with RoPE on its own grid, and after the
embedding and after each block a zero-initialised per-token linear map (ControlNet style) adds it
to the decoder stream of the same view (official ``dust3r/model.py``,
``AsymmetricCroCo3DStereo.forward`` and ``._decoder``). Everything here depends on one view
only, so a frame's injections can be computed once and reused by every pair it belongs to.

The network keeps the official attribute names (``patch_embed_point_cloud``, ``dec_blocks_pc``,
``zero_convs``) so official state dicts load unchanged; a DUSt3R / MonST3R network has ``None``
there.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from align3r.model.blocks import EncoderBlock
from align3r.model.patch_embed import PatchEmbed
from align3r.model.rope import RoPE2D, attention_dtype


class PriorInjection(nn.Sequential):
    """A zero-initialised 1×1 ``Conv1d`` over channels, applied per token.

    Stored as the official ``Sequential(Conv1d(D, D, 1))`` (keys ``0.weight`` (D, D, 1) and
    ``0.bias``) and evaluated as the equivalent ``Linear`` on (B, N, D) tokens, which avoids the
    two transposes of the channels-first convolution.
    """

    def __init__(self, dim: int) -> None:
        super().__init__(nn.Conv1d(dim, dim, kernel_size=1))
        nn.init.zeros_(self[0].weight)
        nn.init.zeros_(self[0].bias)

    def forward(self, tokens: Tensor) -> Tensor:
        conv = self[0]
        return F.linear(tokens, conv.weight[:, :, 0], conv.bias)


def build_prior_branch(patch_embed_cls: type[PatchEmbed], patch_size: int, dec_dim: int, num_heads: int,
                       num_blocks: int, mlp_ratio: float) -> tuple[PatchEmbed, nn.ModuleList, nn.ModuleList]:
    """The three official modules: prior patch embedding, ``num_blocks`` blocks, ``num_blocks+1`` injections."""
    embed = patch_embed_cls(patch_size, 3, dec_dim)
    blocks = nn.ModuleList(EncoderBlock(dec_dim, num_heads, mlp_ratio) for _ in range(num_blocks))
    injections = nn.ModuleList(PriorInjection(dec_dim) for _ in range(num_blocks + 1))
    return embed, blocks, injections


def prior_injections(embed: PatchEmbed, blocks: nn.ModuleList, injections: nn.ModuleList, rope: RoPE2D,
                     num_heads: int, prior_pts3d: Tensor, true_shape: Tensor | None) -> Tensor:
    """What the prior adds to one view's decoder stream.

    - ``prior_pts3d``: (B, H, W, 3) normalised prior point map (same layout as the image).
    - returns (num_blocks + 1, B, N, dec_dim): entry 0 is added to ``decoder_embed(encoder
      output)``, entry i >= 1 to the output of decoder layer i - 1.
    """
    tokens, pos = embed(prior_pts3d.permute(0, 3, 1, 2), true_shape)
    out = [injections[0](tokens)]
    dtype = attention_dtype(tokens.device.type, embed.proj.weight.dtype)
    tables = rope.tables(pos, tokens.shape[-1] // num_heads, dtype)  # shared by all prior blocks
    for block, inject in zip(blocks, injections[1:]):
        tokens = block(tokens, tables)
        out.append(inject(tokens))
    return torch.stack(out)

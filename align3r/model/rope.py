"""2-D rotary position embedding (RoPE) of the CroCo / DUSt3R family, in plain torch.

Each attention head's channels are split in two halves: the first half is rotated by the token's
patch **row** y, the second by its **column** x. Inside a half of ``q`` channels, channel ``k`` is
paired with ``k + q/2`` ("rotate-half" layout) and rotated by the angle ``p · base^(-2k/q)``.
Numerics follow the official pure-torch fallback: the angle is formed in float32, cast to the
token dtype, and cos/sin are taken in that dtype (so bf16 tokens get bf16 tables); the rotation
is ``x·cos + rotate_half(x)·sin`` with the same roundings.

The tables depend only on the positions, so the network builds them once per forward for each
set of positions (``RoPE2D.tables``) and every block reuses them.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn


class RotaryTables(NamedTuple):
    """cos and sign-folded sin for N tokens: each (B, 1, N, head_dim), in the token dtype.

    ``sin`` holds ``-sin`` on the first channel of each rotate-half pair and ``+sin`` on the
    second, so the rotation is ``x·cos + swap_pairs(x)·sin``.
    """

    cos: Tensor
    sin: Tensor


def _pairs(x: Tensor) -> Tensor:
    """(..., head_dim) -> (..., axis 2, pair member 2, head_dim/4) view."""
    return x.unflatten(-1, (2, 2, x.shape[-1] // 4))


def apply_rope(tokens: Tensor, tables: RotaryTables) -> Tensor:
    """Rotate (B, heads, N, head_dim) queries or keys; returns the same shape and dtype."""
    cos, sin = tables
    if cos.dtype != tokens.dtype:  # tables are built for the autocast dtype; guard odd mixes
        cos, sin = cos.to(tokens.dtype), sin.to(tokens.dtype)
    swapped = _pairs(tokens).flip(-2).flatten(-3)  # (x2, x1) within each axis half
    return tokens * cos + swapped * sin


class RoPE2D(nn.Module):
    """Builds rotation tables for a frequency ``base`` (100 for ``"RoPE100"``).

    No parameters and no buffers (device-agnostic). ``forward(tokens, positions)`` rotates
    directly: tokens (B, heads, N, head_dim), positions (B, N, 2) int64 (row, col).
    """

    def __init__(self, base: float = 100.0) -> None:
        super().__init__()
        self.base = float(base)

    def extra_repr(self) -> str:
        return f"base={self.base:g}"

    def tables(self, positions: Tensor, head_dim: int, dtype: torch.dtype) -> RotaryTables:
        """Tables for ``positions`` (B, N, 2) int64 and heads of ``head_dim`` (a multiple of 4)."""
        half = head_dim // 2  # channels per axis
        exponent = torch.arange(0, half, 2, device=positions.device, dtype=torch.float32) / half
        inv_freq = 1.0 / (self.base**exponent)  # (half/2,) float32
        angles = (positions.to(torch.float32)[..., None] * inv_freq).to(dtype)  # (B, N, 2, half/2)
        cos, sin = angles.cos(), angles.sin()
        # Each axis: [cos, cos] and [-sin, +sin] over the two members of its rotate-half pairs.
        cos = torch.stack((cos, cos), dim=-2).flatten(-3)
        sin = torch.stack((-sin, sin), dim=-2).flatten(-3)
        return RotaryTables(cos[:, None], sin[:, None])

    def forward(self, tokens: Tensor, positions: Tensor) -> Tensor:
        return apply_rope(tokens, self.tables(positions, tokens.shape[-1], tokens.dtype))


def attention_dtype(device_type: str, param_dtype: torch.dtype) -> torch.dtype:
    """The dtype queries and keys will have: the autocast dtype when autocast is on, else the weights'."""
    if torch.amp.is_autocast_available(device_type) and torch.is_autocast_enabled(device_type):
        return torch.get_autocast_dtype(device_type)
    return param_dtype

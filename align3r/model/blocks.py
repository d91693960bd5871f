"""Transformer blocks of the encoder, the decoder and the prior branch.

Pre-norm ViT blocks with LayerNorm eps 1e-6, exact GELU, fused ``qkv`` (layout [q|k|v] × heads ×
head_dim) and 2-D RoPE on queries and keys (tables built once per forward by the network).
Attention runs through ``torch.nn.functional.scaled_dot_product_attention`` (flash /
memory-efficient kernels on GPU).
Submodule names match the official state dict (``attn.qkv``, ``cross_attn.projq``, ``norm_y`` …).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from align3r.model.rope import RotaryTables, apply_rope

LAYER_NORM_EPS = 1e-6


def layer_norm(dim: int) -> nn.LayerNorm:
    """The family's LayerNorm: eps 1e-6 (PyTorch's default 1e-5 changes outputs measurably)."""
    return nn.LayerNorm(dim, eps=LAYER_NORM_EPS)


class Mlp(nn.Module):
    """``fc2(GELU(fc1(x)))`` with the exact (erf) GELU. (B, N, dim) -> (B, N, dim)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU(approximate="none")
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


def _split_heads(x: Tensor, num_heads: int) -> Tensor:
    """(B, N, heads·d) -> (B, heads, N, d)."""
    return x.unflatten(-1, (num_heads, -1)).transpose(1, 2)


def _merge_heads(x: Tensor) -> Tensor:
    """(B, heads, N, d) -> (B, N, heads·d)."""
    return x.transpose(1, 2).flatten(-2)


class SelfAttention(nn.Module):
    """Multi-head self-attention with RoPE.

    ``forward(x (B,N,dim), rope: RotaryTables of the N tokens) -> (B,N,dim)``.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, rope: RotaryTables) -> Tensor:
        q, k, v = self.qkv(x).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)  # 3×(B,h,N,d)
        q, k = apply_rope(q, rope), apply_rope(k, rope)
        return self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class CrossAttention(nn.Module):
    """Queries from one view, keys/values from the other; RoPE with each side's own positions.

    ``forward(query (B,Nq,dim), memory (B,Nk,dim), qrope, krope) -> (B,Nq,dim)`` with the
    rotation tables of the query tokens and of the memory tokens.
    """

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.projq = nn.Linear(dim, dim)
        self.projk = nn.Linear(dim, dim)
        self.projv = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, query: Tensor, memory: Tensor, qrope: RotaryTables, krope: RotaryTables) -> Tensor:
        q = apply_rope(_split_heads(self.projq(query), self.num_heads), qrope)
        k = apply_rope(_split_heads(self.projk(memory), self.num_heads), krope)
        v = _split_heads(self.projv(memory), self.num_heads)
        return self.proj(_merge_heads(F.scaled_dot_product_attention(q, k, v)))


class EncoderBlock(nn.Module):
    """Pre-norm self-attention block (image encoder and prior branch).

    ``forward(x (B,N,dim), rope: RotaryTables of the N tokens) -> (B,N,dim)``.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.norm2 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor, rope: RotaryTables) -> Tensor:
        x = x + self.attn(self.norm1(x), rope)
        return x + self.mlp(self.norm2(x))


class DecoderBlock(nn.Module):
    """Self-attention, cross-attention to the other view (memory normed by ``norm_y``), MLP.

    ``forward(x (B,N,dim), memory (B,M,dim), xrope, mrope) -> (B,N,dim)`` with the rotation
    tables of both token sets; the memory itself is not updated (the other view's decoder block
    updates it).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, norm_memory: bool) -> None:
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn = SelfAttention(dim, num_heads)
        self.cross_attn = CrossAttention(dim, num_heads)
        self.norm2 = layer_norm(dim)
        self.norm3 = layer_norm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.norm_y = layer_norm(dim) if norm_memory else nn.Identity()

    def forward(self, x: Tensor, memory: Tensor, xrope: RotaryTables, mrope: RotaryTables) -> Tensor:
        x = x + self.attn(self.norm1(x), xrope)
        x = x + self.cross_attn(self.norm2(x), self.norm_y(memory), xrope, mrope)
        return x + self.mlp(self.norm3(x))

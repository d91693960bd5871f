"""Building blocks against their definitions: RoPE formula, attention, norms, GELU, activations."""

from __future__ import annotations

import math

import pytest
import torch

from align3r.model import Align3RNet, preset
from align3r.model.blocks import LAYER_NORM_EPS, CrossAttention, SelfAttention
from align3r.model.patch_embed import ManyARPatchEmbed, PatchEmbed, patch_positions
from align3r.model.postprocess import postprocess
from align3r.model.rope import RoPE2D


def rope_by_formula(tokens: torch.Tensor, positions: torch.Tensor, base: float = 100.0) -> torch.Tensor:
    """Official ``croco/models/pos_embed.py``, ``RoPE2D``, written out: each half of d
    channels rotated by (row, col); channel k pairs
    with k + d/4 inside its half, frequency base^(-k/(d/4)) ... i.e. 1/base^(2k/(d/2))."""
    d = tokens.shape[-1]
    half, quarter = d // 2, d // 4
    out = tokens.clone()
    for axis in range(2):
        p = positions[:, None, :, axis].to(torch.float64)  # (B, 1, N)
        for k in range(quarter):
            angle = p * base ** (-2 * k / half)
            a, b = axis * half + k, axis * half + k + quarter
            out[..., a] = tokens[..., a] * torch.cos(angle) - tokens[..., b] * torch.sin(angle)
            out[..., b] = tokens[..., b] * torch.cos(angle) + tokens[..., a] * torch.sin(angle)
    return out


def test_rope_matches_the_formula_with_rows_first():
    torch.manual_seed(0)
    tokens = torch.randn(2, 3, 12, 64, dtype=torch.float64)
    pos = torch.randint(0, 40, (2, 12, 2))
    ours = RoPE2D(100.0)(tokens.float(), pos)
    assert ours.dtype == torch.float32
    torch.testing.assert_close(ours.double(), rope_by_formula(tokens, pos), atol=2e-5, rtol=0)
    # Swapping (row, col) is a different rotation: the layout is rows first.
    assert (RoPE2D(100.0)(tokens.float(), pos.flip(-1)).double() - rope_by_formula(tokens, pos)).abs().max() > 0.1


def rope_table_lookup(tokens: torch.Tensor, positions: torch.Tensor, base: float = 100.0) -> torch.Tensor:
    """The official fallback's order of operations (``croco/models/pos_embed.py``,
    ``RoPE2D.get_cos_sin`` and ``apply_rope1d``): a per-position table
    (angle in float32, cast to the token dtype, cos/sin in that dtype), looked up per token, then
    ``x·cos + rotate_half(x)·sin`` on each axis half."""
    half = tokens.shape[-1] // 2
    inv_freq = 1.0 / (base ** (torch.arange(0, half, 2).float() / half))
    steps = torch.arange(int(positions.max()) + 1, dtype=torch.float32)
    angles = (steps[:, None] * inv_freq[None, :]).to(tokens.dtype)
    angles = torch.cat((angles, angles), dim=-1)
    cos_table, sin_table = angles.cos(), angles.sin()
    out = []
    for axis, part in enumerate(tokens.chunk(2, dim=-1)):
        cos, sin = cos_table[positions[..., axis]][:, None], sin_table[positions[..., axis]][:, None]
        first, second = part.chunk(2, dim=-1)
        out.append(part * cos + torch.cat((-second, first), dim=-1) * sin)
    return torch.cat(out, dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rope_is_bitwise_the_official_fallback(dtype):
    torch.manual_seed(5)
    tokens = torch.randn(2, 4, 20, 64).to(dtype)
    pos = torch.randint(0, 32, (2, 20, 2))
    assert torch.equal(RoPE2D(100.0)(tokens, pos), rope_table_lookup(tokens, pos))


def test_rope_scores_depend_only_on_relative_positions():
    torch.manual_seed(1)
    q, k = torch.randn(1, 2, 6, 32, dtype=torch.float64), torch.randn(1, 2, 6, 32, dtype=torch.float64)
    pq, pk = torch.randint(0, 20, (1, 6, 2)), torch.randint(0, 20, (1, 6, 2))
    rope = RoPE2D(100.0)
    scores = rope(q, pq) @ rope(k, pk).transpose(-1, -2)
    shift = torch.tensor([7, 3])
    shifted = rope(q, pq + shift) @ rope(k, pk + shift).transpose(-1, -2)
    # Angles are formed in float32 (official numerics), hence the float32-level tolerance.
    torch.testing.assert_close(scores, shifted, atol=2e-5, rtol=0)
    assert (scores - rope(q, pq) @ rope(k, pk + shift).transpose(-1, -2)).abs().max() > 0.1


def test_rope_tables_are_taken_in_the_token_dtype():
    pos = torch.tensor([[[37, 51]]])
    cos, sin = RoPE2D(100.0).tables(pos, 64, torch.bfloat16)
    assert cos.dtype == torch.bfloat16
    # Angle formed in float32, rounded to bf16, cos in bf16 (the official fallback's order).
    inv_freq = 1.0 / (100.0 ** (torch.arange(0, 32, 2, dtype=torch.float32) / 32))
    expected_rows = (37.0 * inv_freq).to(torch.bfloat16).cos()
    expected_cols = (51.0 * inv_freq).to(torch.bfloat16).cos()
    assert torch.equal(cos[0, 0, 0], torch.cat((expected_rows, expected_rows, expected_cols, expected_cols)))
    sin_rows, sin_cols = (37.0 * inv_freq).to(torch.bfloat16).sin(), (51.0 * inv_freq).to(torch.bfloat16).sin()
    assert torch.equal(sin[0, 0, 0], torch.cat((-sin_rows, sin_rows, -sin_cols, sin_cols)))


def test_attention_equals_explicit_softmax_attention():
    torch.manual_seed(2)
    rope = RoPE2D(100.0)
    attn = SelfAttention(32, 4).double()
    x, pos = torch.randn(2, 10, 32, dtype=torch.float64), torch.randint(0, 5, (2, 10, 2))
    tables = rope.tables(pos, 8, torch.float64)
    q, k, v = attn.qkv(x).view(2, 10, 3, 4, 8).permute(2, 0, 3, 1, 4)
    q, k = rope(q, pos), rope(k, pos)
    weights = (q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1)
    explicit = attn.proj((weights @ v).transpose(1, 2).reshape(2, 10, 32))
    torch.testing.assert_close(attn(x, tables), explicit)

    cross = CrossAttention(32, 4).double()
    y, ypos = torch.randn(2, 7, 32, dtype=torch.float64), torch.randint(0, 5, (2, 7, 2))
    q = rope(cross.projq(x).view(2, 10, 4, 8).transpose(1, 2), pos)
    k = rope(cross.projk(y).view(2, 7, 4, 8).transpose(1, 2), ypos)  # keys use the other view's positions
    v = cross.projv(y).view(2, 7, 4, 8).transpose(1, 2)
    explicit = cross.proj(((q @ k.transpose(-1, -2) / math.sqrt(8)).softmax(-1) @ v).transpose(1, 2).reshape(2, 10, 32))
    torch.testing.assert_close(cross(x, y, tables, rope.tables(ypos, 8, torch.float64)), explicit)


def test_every_layer_norm_has_eps_1e6_and_every_gelu_is_exact():
    net = Align3RNet(preset("tiny"))
    norms = [m for m in net.modules() if isinstance(m, torch.nn.LayerNorm)]
    gelus = [m for m in net.modules() if isinstance(m, torch.nn.GELU)]
    assert LAYER_NORM_EPS == 1e-6
    assert len(norms) > 10 and all(m.eps == 1e-6 for m in norms)
    assert len(gelus) > 5 and all(m.approximate == "none" for m in gelus)


def test_patch_positions_are_row_col_raster():
    assert patch_positions(2, 3).tolist() == [[0, 0], [0, 1], [0, 2], [1, 0], [1, 1], [1, 2]]
    tokens, pos = PatchEmbed(16, 3, 8)(torch.zeros(2, 3, 32, 48))
    assert tokens.shape == (2, 6, 8) and pos.shape == (2, 6, 2) and pos.dtype == torch.int64


def test_many_ar_embedding_transposes_portrait_samples_back():
    torch.manual_seed(3)
    many_ar, plain = ManyARPatchEmbed(16, 3, 8), PatchEmbed(16, 3, 8)
    plain.load_state_dict(many_ar.state_dict())
    portrait = torch.randn(1, 3, 48, 32)
    landscape = torch.randn(1, 3, 32, 48)
    batch = torch.cat((landscape, portrait.transpose(-1, -2)))  # stored landscape
    tokens, pos = many_ar(batch, torch.tensor([[32, 48], [48, 32]]))
    t_port, p_port = plain(portrait)
    t_land, p_land = plain(landscape)
    torch.testing.assert_close(tokens[1:], t_port)
    torch.testing.assert_close(tokens[:1], t_land)
    assert torch.equal(pos[1:], p_port) and torch.equal(pos[:1], p_land)


def test_postprocess_known_values():
    raw = torch.zeros(1, 4, 1, 2)
    raw[0, :3, 0, 0] = torch.tensor([0.3, 0.4, 0.0])  # |x| = 0.5
    raw[0, 3, 0, 0] = math.log(2.0)
    out = postprocess(raw, ("exp", -math.inf, math.inf), ("exp", 1.0, math.inf))
    assert out["pts3d"].shape == (1, 1, 2, 3) and out["conf"].shape == (1, 1, 2)
    torch.testing.assert_close(out["pts3d"][0, 0, 0], torch.tensor([0.6, 0.8, 0.0]) * math.expm1(0.5))
    torch.testing.assert_close(out["conf"][0, 0], torch.tensor([3.0, 2.0]))  # 1 + exp(c)
    assert torch.equal(out["pts3d"][0, 0, 1], torch.zeros(3))  # zero raw -> origin, no NaN


@pytest.mark.parametrize("name", ["tiny", "tiny-dust3r-linear"])
def test_heads_run_in_float32_under_bf16_autocast(name):
    torch.manual_seed(4)
    net = Align3RNet(preset(name)).eval()
    v = {"img": torch.rand(1, 3, 32, 48) * 2 - 1, "prior_pts3d": torch.rand(1, 32, 48, 3)}
    with torch.no_grad():
        ref = net(v, v)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(v, v)
    for a, b in ((ref[0]["pts3d"], low[0]["pts3d"]), (ref[1]["conf"], low[1]["conf"])):
        assert b.dtype == torch.float32
        assert ((a - b).abs().max() / a.abs().max()) < 0.1

"""Full-size networks built on the meta device have exactly the official key sets and shapes."""

from __future__ import annotations

import pytest
import torch

from align3r.model import Align3RNet, preset
from align3r.model.load import expected_shapes


def _block(prefix: str, d: int, hidden: int) -> dict[str, tuple[int, ...]]:
    return {
        f"{prefix}norm1.weight": (d,), f"{prefix}norm1.bias": (d,),
        f"{prefix}attn.qkv.weight": (3 * d, d), f"{prefix}attn.qkv.bias": (3 * d,),
        f"{prefix}attn.proj.weight": (d, d), f"{prefix}attn.proj.bias": (d,),
        f"{prefix}norm2.weight": (d,), f"{prefix}norm2.bias": (d,),
        f"{prefix}mlp.fc1.weight": (hidden, d), f"{prefix}mlp.fc1.bias": (hidden,),
        f"{prefix}mlp.fc2.weight": (d, hidden), f"{prefix}mlp.fc2.bias": (d,),
    }


def _decoder_block(prefix: str, d: int, hidden: int) -> dict[str, tuple[int, ...]]:
    keys = _block(prefix, d, hidden)
    for name in ("projq", "projk", "projv", "proj"):
        keys[f"{prefix}cross_attn.{name}.weight"], keys[f"{prefix}cross_attn.{name}.bias"] = (d, d), (d,)
    for name in ("norm3", "norm_y"):
        keys[f"{prefix}{name}.weight"], keys[f"{prefix}{name}.bias"] = (d,), (d,)
    return keys


def reference_keys(prior: bool, head: str, enc: int = 1024, dec: int = 768) -> dict[str, tuple[int, ...]]:
    """The official state dict (``dust3r/model.py``, ``AsymmetricCroCo3DStereo``, on
    ``croco/models/croco.py``, ``CroCoNet``), written out independently of the implementation (aliases
    excluded)."""
    keys: dict[str, tuple[int, ...]] = {"mask_token": (1, 1, dec), "patch_embed.proj.weight": (enc, 3, 16, 16),
                                        "patch_embed.proj.bias": (enc,), "enc_norm.weight": (enc,),
                                        "enc_norm.bias": (enc,), "decoder_embed.weight": (dec, enc),
                                        "decoder_embed.bias": (dec,), "dec_norm.weight": (dec,),
                                        "dec_norm.bias": (dec,)}
    for i in range(24):
        keys.update(_block(f"enc_blocks.{i}.", enc, 4 * enc))
    for i in range(12):
        keys.update(_decoder_block(f"dec_blocks.{i}.", dec, 4 * dec))
        keys.update(_decoder_block(f"dec_blocks2.{i}.", dec, 4 * dec))
    if prior:
        keys["patch_embed_point_cloud.proj.weight"], keys["patch_embed_point_cloud.proj.bias"] = (dec, 3, 16, 16), (dec,)
        for i in range(4):
            keys.update(_block(f"dec_blocks_pc.{i}.", dec, 4 * dec))
        for i in range(5):
            keys[f"zero_convs.{i}.0.weight"], keys[f"zero_convs.{i}.0.bias"] = (dec, dec, 1), (dec,)
    for h in (1, 2):
        if head == "linear":
            keys[f"downstream_head{h}.proj.weight"], keys[f"downstream_head{h}.proj.bias"] = (4 * 256, dec), (1024,)
            continue
        p = f"downstream_head{h}.dpt."
        for i, width in enumerate((96, 192, 384, 768), start=1):
            keys[f"{p}scratch.layer{i}_rn.weight"] = (256, width, 3, 3)
            keys[f"{p}scratch.refinenet{i}.out_conv.weight"] = (256, 256, 1, 1)
            keys[f"{p}scratch.refinenet{i}.out_conv.bias"] = (256,)
            for unit in (1, 2):
                for conv in (1, 2):
                    keys[f"{p}scratch.refinenet{i}.resConfUnit{unit}.conv{conv}.weight"] = (256, 256, 3, 3)
                    keys[f"{p}scratch.refinenet{i}.resConfUnit{unit}.conv{conv}.bias"] = (256,)
        for name, shape in (("0.0", (96, enc, 1, 1)), ("0.1", (96, 96, 4, 4)), ("1.0", (192, dec, 1, 1)),
                            ("1.1", (192, 192, 2, 2)), ("2.0", (384, dec, 1, 1)), ("3.0", (768, dec, 1, 1)),
                            ("3.1", (768, 768, 3, 3))):
            keys[f"{p}act_postprocess.{name}.weight"], keys[f"{p}act_postprocess.{name}.bias"] = shape, shape[:1]
        for name, shape in (("0", (128, 256, 3, 3)), ("2", (128, 128, 3, 3)), ("4", (4, 128, 1, 1))):
            keys[f"{p}head.{name}.weight"], keys[f"{p}head.{name}.bias"] = shape, shape[:1]
    return keys


def _count(shapes) -> int:
    total = 0
    for shape in shapes.values():
        total += int(torch.Size(shape).numel())
    return total


@pytest.mark.parametrize(("name", "prior", "head"), [("align3r-512-dpt", True, "dpt"), ("dust3r-512-dpt", False, "dpt"),
                                                      ("monst3r-512-dpt", False, "dpt"),
                                                      ("dust3r-224-linear", False, "linear")])
def test_full_size_key_set_on_meta(name, prior, head):
    ours = {k: tuple(v) for k, v in expected_shapes(preset(name)).items()}
    assert ours == reference_keys(prior, head)


def test_prior_branch_adds_31_895_040_parameters():
    with torch.device("meta"):
        align3r, dust3r = Align3RNet(preset("align3r-512-dpt")), Align3RNet(preset("dust3r-512-dpt"))
    n_a = sum(p.numel() for p in align3r.parameters())
    n_d = sum(p.numel() for p in dust3r.parameters())
    assert n_a - n_d == 31_895_040
    assert n_a == _count(reference_keys(True, "dpt"))
    assert all(p.device.type == "meta" for p in align3r.parameters())
    assert list(align3r.buffers()) == []  # nothing device-bound outside the weights


def test_tiny_key_counts_match_the_official_files(model_json):
    # Official counts include the 8 DPT alias keys we do not keep.
    for fixture, name, aliases in (("a3r_tiny_a", "tiny-a", 8), ("a3r_tiny_b", "tiny-b", 8),
                                   ("dust3r_linear_tiny", "tiny-dust3r-linear", 0)):
        shapes = expected_shapes(preset(name))
        assert len(shapes) + aliases == model_json["configs"][fixture]["n_state_dict_keys"]
        assert _count(shapes) == model_json["configs"][fixture]["n_parameters_unique"]

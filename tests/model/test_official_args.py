"""Official constructor strings are parsed (never evaluated) into our config, or refused clearly."""

from __future__ import annotations

import math

import pytest

from align3r.errors import CheckpointError, InputError
from align3r.model import Align3RConfig, model_from_official_args, preset
from align3r.model.official_args import official_args_from_config

TRAIN_SH = ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', patch_embed_cls='ManyAR_PatchEmbed', img_size=(512, 512), "
            "head_type='dpt', output_mode='pts3d', depth_mode=('exp', -inf, inf), conf_mode=('exp', 1, inf), "
            "enc_embed_dim=1024, enc_depth=24, enc_num_heads=16, dec_embed_dim=768, dec_depth=12, dec_num_heads=12)")


def test_released_training_string_is_the_full_size_preset():
    assert model_from_official_args(TRAIN_SH) == preset("align3r-512-dpt")
    assert model_from_official_args(TRAIN_SH, with_prior=False) == preset("dust3r-512-dpt")
    training = model_from_official_args(TRAIN_SH, for_inference=False)
    assert training.patch_embed_cls == "ManyAR_PatchEmbed" and training.landscape_only  # official default True
    assert training.for_inference() == preset("align3r-512-dpt")


# The constructor strings stored in DUSt3R's released checkpoints (MonST3R's is the 512 DPT one).
DUST3R_224_LINEAR = ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', img_size=(224, 224), head_type='linear', "
                     "output_mode='pts3d', depth_mode=('exp', -inf, inf), conf_mode=('exp', 1, inf), "
                     "enc_embed_dim=1024, enc_depth=24, enc_num_heads=16, dec_embed_dim=768, dec_depth=12, "
                     "dec_num_heads=12)")
DUST3R_512_DPT = ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', patch_embed_cls='ManyAR_PatchEmbed', "
                  "img_size=(512, 512), head_type='dpt', output_mode='pts3d', depth_mode=('exp', -inf, inf), "
                  "conf_mode=('exp', 1, inf), enc_embed_dim=1024, enc_depth=24, enc_num_heads=16, "
                  "dec_embed_dim=768, dec_depth=12, dec_num_heads=12, landscape_only=False)")


@pytest.mark.parametrize(("string", "names"), [(DUST3R_224_LINEAR, ["dust3r-224-linear"]),
                                               (DUST3R_512_DPT, ["dust3r-512-dpt", "monst3r-512-dpt"])])
def test_released_dust3r_strings_are_the_full_size_presets(string, names):
    """The key-set tests on the meta device build these presets, so they cover the released files."""
    for name in names:
        assert model_from_official_args(string, with_prior=False) == preset(name)


def test_fixture_strings_give_the_tiny_presets(model_json):
    configs = model_json["configs"]
    assert model_from_official_args(configs["a3r_tiny_a"]["constructor"]) == preset("tiny-a")
    assert model_from_official_args(configs["a3r_tiny_b"]["constructor"]) == preset("tiny-b")
    linear = model_from_official_args(configs["dust3r_linear_tiny"]["constructor"], with_prior=False)
    assert linear == preset("tiny-dust3r-linear")
    # What the official load_model instantiates parses to the same network.
    for name in ("a3r_tiny_a", "a3r_tiny_b"):
        assert model_from_official_args(configs[name]["instantiated_by_load_model"]) == model_from_official_args(
            configs[name]["constructor"])


def test_omitted_keywords_take_the_official_defaults_not_ours():
    config = model_from_official_args("AsymmetricCroCo3DStereo(pos_embed='RoPE100', img_size=224)",
                                      with_prior=False)
    assert (config.head_type, config.enc_embed_dim, config.dec_embed_dim, config.dec_depth) == ("linear", 768, 512, 8)
    assert config.img_size == (224, 224) and config.conf_mode == ("exp", 1.0, math.inf)
    with pytest.raises(CheckpointError, match="RoPE"):  # official default pos_embed is 'cosine'
        model_from_official_args("AsymmetricCroCo3DStereo(img_size=224)")


@pytest.mark.parametrize("value", ["-inf", "-float('inf')", "float('-inf')", "-1e999"])
def test_infinity_spellings(value):
    text = f"AsymmetricCroCo3DStereo(pos_embed='RoPE100', head_type='dpt', depth_mode=('exp', {value}, inf), " \
           "dec_depth=12, enc_embed_dim=64, enc_num_heads=2, dec_embed_dim=64, dec_num_heads=2)"
    assert model_from_official_args(text).depth_mode == ("exp", -math.inf, math.inf)


@pytest.mark.parametrize(("text", "fragment"), [
    ("AsymmetricCroCo3DStereo(pos_embed=__import__('os').system('touch /tmp/x'))", "unsupported value"),
    ("AsymmetricCroCo3DStereo(pos_embed=os.environ)", "unsupported value"),
    ("AsymmetricCroCo3DStereo(pos_embed='RoPE' + '100')", "unsupported value"),
    ("AsymmetricCroCo3DStereo(pos_embed=[x for x in 'a'])", "unsupported value"),
    ("AsymmetricMASt3R(pos_embed='RoPE100')", "unsupported network class"),
    ("AsymmetricCroCo3DStereo('RoPE100')", "positional"),
    ("AsymmetricCroCo3DStereo(**kw)", "'\\*\\*'"),
    ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', two_confs=True)", "unknown constructor keywords \\['two_confs'\\]"),
    ("AsymmetricCroCo3DStereo(pos_embed='RoPE100', enc_embed_dim=100, enc_num_heads=3)", "multiple of"),
    ("AsymmetricCroCo3DStereo(pos_embed='RoPE100'", "cannot parse"),
    ("import os", "cannot parse|not a constructor"),
    ("net.AsymmetricCroCo3DStereo()", "not a constructor call"),
])
def test_anything_else_is_refused_with_a_clear_error(text, fragment):
    with pytest.raises(CheckpointError, match=fragment):
        model_from_official_args(text)


def test_mask_ratio_is_accepted_and_ignored():
    text = TRAIN_SH[:-1] + ", mask_ratio=0.9)"
    assert model_from_official_args(text) == preset("align3r-512-dpt")


@pytest.mark.parametrize("name", ["align3r-512-dpt", "dust3r-224-linear", "tiny-b"])
def test_config_round_trips_through_string_and_dict(name):
    config = preset(name)
    assert model_from_official_args(official_args_from_config(config), with_prior=config.with_prior) == config
    assert Align3RConfig.from_dict(config.to_dict()) == config


def test_config_validation_names_the_problem():
    with pytest.raises(InputError, match="head_type"):
        Align3RConfig(head_type="mlp")
    with pytest.raises(InputError, match="unknown network configuration keys \\['foo'\\]"):
        Align3RConfig.from_dict({"foo": 1})
    with pytest.raises(InputError, match="unknown network preset"):
        preset("dust4r")
    assert preset("tiny-a").num_prior_blocks == 3 and preset("dust3r-512-dpt").num_prior_blocks == 0

"""Recipe pieces: learning-rate schedule, trainable set, parameter groups, colour jitter, command."""

from __future__ import annotations

import argparse
import math
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from align3r.commands import train as train_command
from align3r.data.augment import adjust_hue, color_jitter
from align3r.errors import InputError
from align3r.model import Align3RNet, preset
from align3r.train import TrainConfig, learning_rate, parameter_groups, select_trainable, symmetrize_batch


def test_learning_rate_warmup_then_half_cosine():
    kw = {"lr": 5e-5, "min_lr": 1e-6, "warmup_epochs": 5, "epochs": 50}
    assert learning_rate(0.0, **kw) == 0.0
    assert learning_rate(2.5, **kw) == pytest.approx(2.5e-5)
    assert learning_rate(5.0, **kw) == pytest.approx(5e-5)
    assert learning_rate(27.5, **kw) == pytest.approx(1e-6 + (5e-5 - 1e-6) * 0.5)
    assert learning_rate(50.0, **kw) == pytest.approx(1e-6)
    e = 12.3
    assert learning_rate(e, **kw) == pytest.approx(1e-6 + 4.9e-5 * 0.5 * (1 + math.cos(math.pi * (e - 5) / 45)))


def test_official_trainable_set_and_decoder_embed_switch():
    net = Align3RNet(preset("tiny-a").for_training())
    names = set(select_trainable(net))
    assert "decoder_embed.weight" not in names and "enc_blocks.0.attn.qkv.weight" not in names
    assert "patch_embed.proj.weight" not in names and "mask_token" not in names and "enc_norm.weight" not in names
    for name in ("dec_blocks.0.attn.qkv.weight", "dec_blocks2.9.mlp.fc1.bias", "dec_norm.weight",
                 "dec_blocks_pc.2.attn.proj.weight", "patch_embed_point_cloud.proj.weight", "zero_convs.3.0.weight",
                 "downstream_head2.dpt.head.0.weight"):
        assert name in names
    assert not net.decoder_embed.weight.requires_grad
    names = set(select_trainable(net, train_decoder_embed=True))
    assert {"decoder_embed.weight", "decoder_embed.bias"} <= names and net.decoder_embed.weight.requires_grad


def test_no_weight_decay_for_biases_and_1d_parameters():
    net = Align3RNet(preset("tiny").replace(head_type="linear").for_training())
    select_trainable(net)
    decay, no_decay = parameter_groups(net, 0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    named = {id(p): n for n, p in net.named_parameters()}
    assert all(p.ndim > 1 and not named[id(p)].endswith(".bias") for p in decay["params"])
    assert all(p.ndim <= 1 or named[id(p)].endswith(".bias") for p in no_decay["params"])
    trainable = [p for p in net.parameters() if p.requires_grad]
    assert len(decay["params"]) + len(no_decay["params"]) == len(trainable)


def test_symmetrized_batch_interleaves_each_pair_with_its_swap():
    v1 = {"img": torch.tensor([1.0, 2.0]), "instance": ["a", "b"]}
    v2 = {"img": torch.tensor([10.0, 20.0]), "instance": ["A", "B"]}
    s1, s2 = symmetrize_batch(v1, v2)
    assert s1["img"].tolist() == [1, 10, 2, 20] and s2["img"].tolist() == [10, 1, 20, 2]
    assert s1["instance"] == ["a", "A", "b", "B"] and s2["instance"] == ["A", "a", "B", "b"]


def test_color_jitter_operations_equal_torchvision():
    tvf = pytest.importorskip("torchvision.transforms.functional")
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8))
    for shift in (-0.1, -0.037, 0.0, 0.05, 0.1):
        assert np.array_equal(np.asarray(adjust_hue(image, shift)), np.asarray(tvf.adjust_hue(image, shift)))
    # whole jitter: same as torchvision's ops applied with the parameters our generator drew
    out = color_jitter(image, np.random.default_rng(3))
    draw = np.random.default_rng(3)
    order, b, c, s, h = draw.permutation(4), draw.uniform(0.5, 1.5), draw.uniform(0.5, 1.5), draw.uniform(0.5, 1.5), \
        draw.uniform(-0.1, 0.1)
    ref = image
    for op in order:
        ref = [lambda x: tvf.adjust_brightness(x, b), lambda x: tvf.adjust_contrast(x, c),
               lambda x: tvf.adjust_saturation(x, s), lambda x: tvf.adjust_hue(x, h)][op](ref)
    assert np.array_equal(np.asarray(out), np.asarray(ref))


def test_bad_training_options_are_clear_errors():
    with pytest.raises(InputError, match="accum_iter"):
        TrainConfig(accum_iter=0)
    with pytest.raises(InputError, match="amp"):
        TrainConfig(amp="fp8")
    with pytest.raises(InputError, match="unknown training options"):
        TrainConfig.from_dict({"batchsize": 2})


def _args(*argv):
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_paper_config_composes_to_the_recipe(capsys):
    cfg = train_command.compose_config("align3r_depthpro", None, ["train.accum_iter=1"])
    assert cfg.train.optim.lr == 5e-5 and cfg.train.optim.min_lr == 1e-6 and cfg.train.optim.epochs == 50
    assert cfg.train.accum_iter == 1 and cfg.train.batch_size == 2 and list(cfg.train.optim.betas) == [0.9, 0.95]
    sizes = [d.size for d in cfg.data.train.datasets]
    assert sizes == [12500, 6250, 1000, 5000, 3000] and sum(sizes) == 27750
    assert sorted(cfg.data.test.datasets) == ["PointOdyssey", "SceneFlow", "Sintel", "Spring", "TartanAir"]
    da = train_command.compose_config("align3r_depthanything", None, [])
    assert da.prior_name == "depthanything" and da.data.train.common.prior_name == "depthanything"
    assert da.data.train.common.prior_input == da.data.test.common.prior_input == "pointmap"
    ablation = train_command.compose_config("align3r_depthpro", None, ["prior_input=depthmap"])
    assert ablation.data.train.common.prior_input == ablation.data.test.common.prior_input == "depthmap"
    assert train_command.run(_args("--config", "align3r_depthpro", "--print-config")) == 0
    assert "pointodyssey" in capsys.readouterr().out


def test_missing_data_root_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="data_root"):
        train_command.run(_args("--config", "tiny", f"output_dir={tmp_path}", f"data_root={tmp_path / 'absent'}"))
    with pytest.raises(InputError, match="no training config 'no_such_config'"):
        train_command.compose_config("no_such_config", None, [])


@pytest.mark.parametrize(("script", "gpus", "accum"), [("finetune_2gpu.sh", "2", "4"), ("finetune_8gpu.sh", "8", "1")])
def test_finetune_scripts_take_an_optional_prior_then_overrides(tmp_path, script, gpus, accum):
    fake = tmp_path / "torchrun"  # prints the arguments it was given, one per line
    fake.write_text('#!/bin/sh\nprintf "%s\\n" "$@"\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    path = Path(__file__).resolve().parents[2] / "scripts" / "train" / script

    def launch(*argv):
        return subprocess.run(["bash", str(path), *argv], env=env, capture_output=True, text=True, timeout=30)

    for argv, config in ((("data_root=/d",), "align3r_depthpro"), (("depthanything", "data_root=/d"),
                                                                   "align3r_depthanything")):
        done = launch(*argv)
        assert done.returncode == 0, done.stderr
        args = done.stdout.split("\n")[:-1]
        assert args[args.index("--config") + 1] == config and args[args.index("--nproc_per_node") + 1] == gpus
        assert f"train.accum_iter={accum}" in args and args[-1] == "data_root=/d"
    done = launch("depthpr0", "data_root=/d")
    assert done.returncode == 2 and not done.stdout
    assert "usage:" in done.stderr and "unknown prior depthpr0" in done.stderr

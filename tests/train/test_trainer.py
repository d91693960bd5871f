"""The trainer on CPU: real steps, process-count invariance, exact resume, falling loss.

The trainer-behaviour checks use the tiny Align3R with a linear head (~1 M parameters, 0.1 s a
step); the real tiny DPT network is trained for two steps in the first test. Every run goes
through ``align3r train`` (Hydra composition included); the two-process run through torchrun.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from align3r.commands import train as train_command
from align3r.data.io import FramePaths, read_metadata, write_metadata
from align3r.model import Align3RNet, preset
from align3r.train import OFFICIAL_TRAINABLE, checkpoint

LINEAR = "+model.overrides.head_type=linear"
AUGMENT = ["data.train.common.resolution=[[64,48],[64,32]]", "data.train.common.aug_crop=16",
           "data.train.common.aug_focal=true", "data.train.common.color_jitter=true"]


def train(data_root: Path, output_dir: Path, *overrides: str) -> None:
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    args = parser.parse_args(["--config", "tiny", f"data_root={data_root}", f"output_dir={output_dir}", *overrides])
    assert train_command.run(args) == 0


def torchrun_train(data_root: Path, output_dir: Path, *overrides: str,
                   timeout: float = 300) -> subprocess.CompletedProcess:
    """``align3r train --config tiny`` under torchrun with two CPU processes (gloo).

    A run still going after ``timeout`` seconds fails the test; torchrun gets SIGTERM, on which it
    stops its workers (they run in sessions of their own, so killing torchrun alone would leave
    them hanging).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "align3r.cli", "train", "--config", "tiny", f"data_root={data_root}", f"output_dir={output_dir}",
           *overrides]
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            stdout, stderr = proc.communicate(timeout=60)
            pytest.fail(f"torchrun still running after {timeout} s (hung?):\n{(stdout + stderr)[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


def final_weights(output_dir: Path) -> dict[str, torch.Tensor]:
    return checkpoint.load_checkpoint(output_dir / checkpoint.FINAL)["model"]


def train_log(output_dir: Path, kind: str = "train") -> list[dict]:
    lines = (output_dir / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == kind]


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, synth):
    root = tmp_path_factory.mktemp("tiny_set")
    synth.write_processed_sequence(root / "seq0", n=3, size=(96, 64))  # 3 pairs
    synth.write_processed_sequence(root / "seq1", n=2, size=(96, 64), seed=1)  # 1 pair
    return root


def official_is_symmetrized(view1: dict, view2: dict) -> bool:
    """The official detection (``dust3r/utils/misc.py``, ``is_symmetrized``): batch > 1 and each
    even pair followed by its swap, by ``instance`` names."""
    a, b = view1["instance"], view2["instance"]
    return len(a) > 1 and all(a[k] == b[k + 1] and a[k + 1] == b[k] for k in range(0, len(a), 2))


@pytest.mark.parametrize("symmetrize", [True, False])
def test_the_trainer_says_symmetrized_itself_on_the_batches_the_official_detection_fired_on(
        tiny_set, tmp_path, monkeypatch, symmetrize):
    """The network no longer reads ``instance`` names: the trainer passes ``symmetrized=`` (its
    ``train.symmetrize``) on every batch, and the symmetrized batches are those the official rule
    detects from the names."""
    calls = []
    forward = Align3RNet.forward

    def spy(self, view1, view2, *, symmetrized=False):
        calls.append((symmetrized, official_is_symmetrized(view1, view2)))
        return forward(self, view1, view2, symmetrized=symmetrized)

    monkeypatch.setattr(Align3RNet, "forward", spy)
    train(tiny_set, tmp_path / "run", LINEAR, "train.batch_size=2", "train.max_steps=2", "train.optim.epochs=2",
          f"train.symmetrize={str(symmetrize).lower()}")
    assert len(calls) >= 2 and all(flag is symmetrize for flag, _ in calls), calls
    if symmetrize:
        assert all(detected for _, detected in calls), calls


def test_two_steps_of_the_tiny_dpt_network(tiny_set, tmp_path):
    out = tmp_path / "run"
    train(tiny_set, out, "train.batch_size=1", "train.max_steps=2", "train.optim.epochs=2")
    state = checkpoint.load_checkpoint(out / checkpoint.LAST)
    assert (state["epoch"], state["step"], state["optimizer_steps"]) == (0, 2, 2)
    torch.manual_seed(0)
    init = Align3RNet(preset("tiny").for_training()).state_dict()
    trained = state["model"]
    for name, before in init.items():
        if not any(s in name for s in OFFICIAL_TRAINABLE):  # encoder, patch_embed, decoder_embed, mask_token
            assert torch.equal(trained[name], before), f"frozen {name} changed"
    for name in ("downstream_head1.dpt.head.4.weight", "dec_blocks.0.attn.qkv.weight", "dec_blocks2.3.mlp.fc2.weight",
                 "dec_norm.weight", "patch_embed_point_cloud.proj.weight"):
        assert not torch.equal(trained[name], init[name]), f"trainable {name} did not move"
    # the zero-initialised prior injections start learning
    assert torch.all(init["zero_convs.0.0.weight"] == 0) and trained["zero_convs.0.0.weight"].abs().sum() > 0
    losses = [r["loss"] for r in train_log(out)]
    assert len(losses) == 2 and all(0 < v < 100 for v in losses)


def test_two_processes_match_one_process(tiny_set, tmp_path):
    """Same global batch (2 pairs x 2 accumulation steps) split 1x2 or 2x1: same parameters."""
    common = [LINEAR, "train_pairs=8", "train.optim.epochs=2", "train.accum_iter=2", *AUGMENT]
    train(tiny_set, tmp_path / "one", *common, "train.batch_size=2")
    done = torchrun_train(tiny_set, tmp_path / "two", *common, "train.batch_size=1")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    one, two = final_weights(tmp_path / "one"), final_weights(tmp_path / "two")
    assert one.keys() == two.keys()
    diff = max((one[k] - two[k]).abs().max().item() for k in one)
    moved = max((one[k] - Align3RNet(preset("tiny").replace(head_type="linear").for_training()).state_dict()[k])
                .abs().max().item() for k in ("downstream_head1.proj.weight",))
    assert diff < 1e-6 < moved
    # every logged value is the window mean over all processes, the loss components as the loss
    log_one, log_two = train_log(tmp_path / "one"), train_log(tmp_path / "two")
    assert len(log_one) == len(log_two) == 4 and log_one[0].keys() == log_two[0].keys()
    for a, b in zip(log_one, log_two):
        for key in ("loss", "conf_loss_1", "conf_loss_2", "regr3d_1", "regr3d_2"):
            assert a[key] == pytest.approx(b[key], rel=1e-5), key
    # the linear head uses every trainable parameter: no find_unused_parameters, no DDP warning about it
    assert "find_unused_parameters" not in done.stderr
    test_one, test_two = train_log(tmp_path / "one", "test"), train_log(tmp_path / "two", "test")
    assert len(test_one) == len(test_two) == 2
    assert test_one[-1]["Tiny_loss_med"] == pytest.approx(test_two[-1]["Tiny_loss_med"], rel=1e-5)
    for run in ("one", "two"):  # the lowest median test loss so far is kept as checkpoint-best
        best = checkpoint.load_checkpoint(tmp_path / run / checkpoint.BEST)["best_test_loss"]
        assert best == pytest.approx(min(r["Tiny_loss_med"] for r in train_log(tmp_path / run, "test")))


def test_a_non_finite_loss_on_one_process_stops_every_process(tmp_path, synth):
    """Two one-pair sequences, one with a NaN camera pose: with one pair per process, exactly one
    process gets a NaN loss at the first step, and both must stop with the error together rather
    than leave the other waiting in the gradient all-reduce (a hang until the gloo/NCCL timeout)."""
    synth.write_processed_sequence(tmp_path / "set" / "good", n=2, size=(96, 64))
    synth.write_processed_sequence(tmp_path / "set" / "bad", n=2, size=(96, 64), seed=1)
    bad = FramePaths.of(tmp_path / "set" / "bad", "0001")
    write_metadata(bad.metadata, read_metadata(bad.metadata)[0], np.full((4, 4), np.nan))
    done = torchrun_train(tmp_path / "set", tmp_path / "run", LINEAR, "train_pairs=2", "train.batch_size=1",
                          timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert output.count("align3r train: error: the training loss is not finite") == 2, output[-3000:]
    assert "(this process: nan)" in output


def test_tensorboard_event_file_has_the_loss_curve(tiny_set, tmp_path):
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "run"
    train(tiny_set, out, LINEAR, "train.max_steps=2", "train.optim.epochs=2")
    events = list(out.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 0
    acc = event_accumulator.EventAccumulator(str(out))
    acc.Reload()
    assert {"train_loss", "train_lr"} <= set(acc.Tags()["scalars"])
    logged = train_log(out)
    loss = acc.Scalars("train_loss")
    assert [e.step for e in loss] == [int(1000 * r["epoch"]) for r in logged] == [0, 500]
    assert [e.value for e in loss] == pytest.approx([r["loss"] for r in logged], rel=1e-6)


def test_interrupted_and_resumed_run_continues_the_exact_trajectory(tiny_set, tmp_path):
    """Also: loader workers do not change samples (the straight run uses 2, the resumed one 0)."""
    common = [LINEAR, "train_pairs=8", "train.optim.epochs=2", "train.optim.warmup_epochs=1", *AUGMENT]
    train(tiny_set, tmp_path / "straight", *common, "train.num_workers=2")  # 4 steps per epoch, 8 in all
    resumed = tmp_path / "resumed"
    train(tiny_set, resumed, *common, "train.max_steps=3")  # stops mid-epoch 0
    state = checkpoint.load_checkpoint(resumed / checkpoint.LAST)
    assert (state["epoch"], state["step"], state["optimizer_steps"]) == (0, 3, 3)
    assert not (resumed / checkpoint.FINAL).exists()
    train(tiny_set, resumed, *common, "train.max_steps=4")  # stops at the end of epoch 0
    assert checkpoint.load_checkpoint(resumed / checkpoint.LAST)["epoch"] == 1
    train(tiny_set, resumed, *common)  # to the end
    straight, continued = final_weights(tmp_path / "straight"), final_weights(resumed)
    for key in straight:
        assert torch.equal(straight[key], continued[key]), key
    assert [r["loss"] for r in train_log(resumed)] == [r["loss"] for r in train_log(tmp_path / "straight")]


def test_loss_falls_when_overfitting_four_pairs(tiny_set, tmp_path):
    out = tmp_path / "overfit"
    train(tiny_set, out, LINEAR, "train.optim.epochs=12", "train.optim.lr=1e-3", "train.optim.min_lr=1e-4",
          "train.eval_freq=0")
    losses = [r["loss"] for r in train_log(out)]
    assert len(losses) == 24
    first, last = sum(losses[:4]) / 4, sum(losses[-4:]) / 4
    assert last < 0.5 * first, (first, last)
    # the final model is exported for inference
    from align3r.model import load_model

    net = load_model(out / checkpoint.FINAL_MODEL_DIR)
    assert net.config.patch_embed_cls == "PatchEmbedDust3R" and net.config.head_type == "linear"
    # the training checkpoints load for inference too (`align3r eval --model runs/x/checkpoint-final.pth`)
    for name in (checkpoint.FINAL, checkpoint.LAST):
        same = load_model(out / name)
        assert same.config == net.config, name
        theirs = same.state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(theirs[key], value), (name, key)


def test_initialises_from_an_official_dust3r_checkpoint(tiny_set, tmp_path, fixtures_dir):
    """The DUSt3R network of an official .pth seeds everything but the prior branch."""
    source = fixtures_dir / "model" / "dust3r_linear_tiny.pth"
    out = tmp_path / "run"
    train(tiny_set, out, LINEAR, f"model.pretrained={source}", "train.max_steps=1", "train.optim.epochs=2")
    from align3r.model import read_checkpoint

    dust3r = read_checkpoint(source).state_dict
    trained = checkpoint.load_checkpoint(out / checkpoint.LAST)["model"]
    frozen = [k for k in trained if not any(s in k for s in OFFICIAL_TRAINABLE)]
    assert "decoder_embed.weight" in frozen and "enc_blocks.1.mlp.fc2.weight" in frozen
    for key in frozen:  # untouched by training: exactly DUSt3R's
        assert torch.equal(trained[key], dust3r[key].to(trained[key].dtype)), key
    assert not any(k.startswith("zero_convs") for k in dust3r)
    # one step away from DUSt3R: close to it, not equal
    delta = (trained["dec_blocks.0.attn.qkv.weight"] - dust3r["dec_blocks.0.attn.qkv.weight"]).abs().max()
    assert 0 < delta < 1e-3

"""Stopping, interrupting, resuming and reporting a training run (CPU, tiny linear-head network).

Ctrl-C saves at the last completed optimizer step and the resumed run is bit-identical to an
uninterrupted one; max_steps re-runs do nothing; a crash after a checkpoint does not duplicate log
records; mid-epoch resumes with another accum_iter and architecture mismatches get one-line
errors; logged values are window means; the console says what happens.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from align3r import cli
from align3r.commands import train as train_command
from align3r.errors import CheckpointError, InputError
from align3r.model import Align3RNet, preset
from align3r.train import checkpoint
from align3r.train.params import select_trainable
from align3r.train.trainer import Trainer, sigint_deferred, unused_parameters

LINEAR = "+model.overrides.head_type=linear"
TRAIN_LOG = "align3r.train"  # the training package; its modules log under it (__name__)


def args_for(data_root: Path, output_dir: Path, *overrides: str) -> list[str]:
    return ["--config", "tiny", f"data_root={data_root}", f"output_dir={output_dir}", *overrides]


def train(data_root: Path, output_dir: Path, *overrides: str) -> None:
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    assert train_command.run(parser.parse_args(args_for(data_root, output_dir, *overrides))) == 0


def train_log(output_dir: Path, kind: str | None = "train") -> list[dict]:
    records = [json.loads(line) for line in (output_dir / "log.jsonl").read_text().splitlines()]
    return [r for r in records if kind is None or r["kind"] == kind]


def last_state(output_dir: Path) -> dict:
    return checkpoint.load_checkpoint(output_dir / checkpoint.LAST)


def interrupt_after_logged_steps(cmd: list[str], out: Path, start_s: float, finish_s: float) -> tuple[int, str]:
    """Run ``cmd``, send it SIGINT once ``out/log.jsonl`` holds 3 records (within ``start_s``), and
    return (exit code, stderr) after it ends (within ``finish_s``); it never outlives the test."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            deadline = time.monotonic() + start_s
            log_file = out / "log.jsonl"
            while not (log_file.is_file() and len(log_file.read_text().splitlines()) >= 3):
                assert proc.poll() is None and time.monotonic() < deadline, "no training steps logged"
                time.sleep(0.1)
            proc.send_signal(signal.SIGINT)
            _, stderr = proc.communicate(timeout=finish_s)
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.communicate(timeout=60)
    return proc.returncode, stderr


def assert_same_weights(a: Path, b: Path, name: str = checkpoint.FINAL) -> None:
    one, two = checkpoint.load_checkpoint(a / name)["model"], checkpoint.load_checkpoint(b / name)["model"]
    assert one.keys() == two.keys()
    for key in one:
        assert torch.equal(one[key], two[key]), key


def fail_at_micro_batch(monkeypatch, index: int, exc: BaseException, test: bool = False) -> None:
    """Make the ``index``-th training (or test) forward pass (0-based, this process) raise ``exc``."""
    original, calls = Trainer._forward_loss, {"n": 0}

    def forward_loss(self, model, batch, criterion):
        if criterion is (self.test_criterion if test else self.train_criterion):
            calls["n"] += 1
            if calls["n"] == index + 1:
                raise exc
        return original(self, model, batch, criterion)

    monkeypatch.setattr(Trainer, "_forward_loss", forward_loss)


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, synth):
    root = tmp_path_factory.mktemp("tiny_set")
    synth.write_processed_sequence(root / "seq0", n=3, size=(96, 64))
    synth.write_processed_sequence(root / "seq1", n=2, size=(96, 64), seed=1)
    return root


# --- Ctrl-C -------------------------------------------------------------------------------------
def test_sigint_is_held_back_until_the_optimizer_step_is_done():
    done = []
    with pytest.raises(KeyboardInterrupt):
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the signal is delivered here, and must not interrupt the block
            done.append(True)
    assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with pytest.raises(KeyboardInterrupt):  # a second Ctrl-C is not held back (e.g. a hung save)
        with sigint_deferred():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
            done.append(False)
    assert done == [True]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_ctrl_c_mid_window_saves_the_last_step_and_the_run_resumes_exactly(tiny_set, tmp_path, monkeypatch,
                                                                           caplog):
    """accum_iter=2, interrupted in the 2nd micro-batch of the 3rd window: checkpoint-last holds
    the state after 2 optimizer steps (batch 4), the half window is dropped, and the resumed run
    ends bit-identical to an uninterrupted one, with the same log."""
    caplog.set_level(logging.INFO, logger=TRAIN_LOG)
    common = [LINEAR, "train_pairs=16", "train.optim.epochs=2", "train.optim.warmup_epochs=1",
              "train.batch_size=1", "train.accum_iter=2"]
    train(tiny_set, tmp_path / "straight", *common)
    out = tmp_path / "interrupted"
    fail_at_micro_batch(monkeypatch, 5, KeyboardInterrupt())
    assert cli.main(["train", *args_for(tiny_set, out, *common)]) == 130
    monkeypatch.undo()
    state = last_state(out)
    assert (state["epoch"], state["step"], state["optimizer_steps"]) == (0, 4, 2)
    assert len(train_log(out)) == 2
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(TRAIN_LOG + ".")]
    assert any(f"interrupted; saved {out / checkpoint.LAST} at the last completed optimizer step, epoch 1/2, "
               "batch 4/16 (2 optimizer steps done): run the same command again to resume from there" in m
               for m in messages), messages
    train(tiny_set, out, *common)
    assert_same_weights(tmp_path / "straight", out)
    assert train_log(out, None) == train_log(tmp_path / "straight", None)


def test_ctrl_c_during_evaluation_resumes_with_the_evaluation(tiny_set, tmp_path, monkeypatch):
    """The epoch's batches are done, its evaluation is not: checkpoint-last stands at the last
    batch of the epoch, and the resumed run evaluates, then goes on as an uninterrupted one."""
    common = [LINEAR, "train_pairs=8", "train.optim.epochs=2"]
    train(tiny_set, tmp_path / "straight", *common)
    out = tmp_path / "interrupted"
    fail_at_micro_batch(monkeypatch, 1, KeyboardInterrupt(), test=True)
    assert cli.main(["train", *args_for(tiny_set, out, *common)]) == 130
    monkeypatch.undo()
    state = last_state(out)
    assert (state["epoch"], state["step"], state["optimizer_steps"]) == (0, 4, 4)
    assert train_log(out, "test") == []
    train(tiny_set, out, *common)
    assert_same_weights(tmp_path / "straight", out)
    assert_same_weights(tmp_path / "straight", out, checkpoint.BEST)
    assert train_log(out, None) == train_log(tmp_path / "straight", None)


def test_ctrl_c_before_any_step_saves_nothing(tiny_set, tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger=TRAIN_LOG)
    fail_at_micro_batch(monkeypatch, 0, KeyboardInterrupt())
    assert cli.main(["train", *args_for(tiny_set, tmp_path / "run", LINEAR)]) == 130
    assert not (tmp_path / "run" / checkpoint.LAST).exists()
    assert any("interrupted before the first optimizer step: nothing to save" in r.getMessage()
               for r in caplog.records)


def test_sigint_to_a_running_training_process(tiny_set, tmp_path):
    """A real SIGINT (Ctrl-C) to `align3r train`: rc 130, checkpoint-last at an optimizer-step
    boundary no earlier than the last logged step, and the command says how to resume."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "align3r.cli", "train", *args_for(tiny_set, out, LINEAR, "train_pairs=4000",
                                                                       "train.batch_size=1", "train.accum_iter=2")]
    returncode, stderr = interrupt_after_logged_steps(cmd, out, start_s=120, finish_s=60)
    assert returncode == 130, stderr[-2000:]
    state = last_state(out)
    logged = len(train_log(out))
    assert state["step"] == 2 * state["optimizer_steps"] and state["optimizer_steps"] >= logged >= 3
    assert "interrupted; saved" in stderr and "run the same command again to resume from there" in stderr
    assert f"batch {state['step']}/4000 ({state['optimizer_steps']} optimizer steps done)" in stderr


def test_ctrl_c_under_torchrun_saves_the_last_step_once(tiny_set, tmp_path):
    """torchrun forwards SIGINT to both processes; the first one writes checkpoint-last at its last
    completed optimizer step (the same state on both), and the run resumes from there."""
    out = tmp_path / "run"
    common = [LINEAR, "train_pairs=4000", "train.batch_size=1", "train.accum_iter=2"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "align3r.cli", "train", *args_for(tiny_set, out, *common)]
    _, stderr = interrupt_after_logged_steps(cmd, out, start_s=180, finish_s=90)
    state = last_state(out)
    assert state["step"] == 2 * state["optimizer_steps"] and state["optimizer_steps"] >= len(train_log(out)) >= 3
    assert stderr.count("interrupted; saved") == 1, stderr[-3000:]
    assert f"batch {state['step']}/2000 ({state['optimizer_steps']} optimizer steps done)" in stderr
    # one process with the same global batch resumes it
    train(tiny_set, out, *common, "train.batch_size=2", f"train.max_steps={state['optimizer_steps'] + 1}")
    assert last_state(out)["optimizer_steps"] == state["optimizer_steps"] + 1


# --- max_steps, accum_iter ----------------------------------------------------------------------
@pytest.mark.parametrize("max_steps", [3, 4])  # mid-epoch, and at the end of epoch 1 (4 steps per epoch)
def test_rerunning_with_max_steps_reached_does_nothing(tiny_set, tmp_path, caplog, max_steps):
    caplog.set_level(logging.INFO, logger=TRAIN_LOG)
    common = [LINEAR, "train_pairs=8", "train.optim.epochs=2", f"train.max_steps={max_steps}"]
    out = tmp_path / "run"
    train(tiny_set, out, *common)
    before = (out / checkpoint.LAST).read_bytes()
    caplog.clear()
    for _ in range(2):
        train(tiny_set, out, *common)
    assert last_state(out)["optimizer_steps"] == max_steps
    assert (out / checkpoint.LAST).read_bytes() == before
    assert len(train_log(out)) == max_steps
    said = [r.getMessage() for r in caplog.records if "is reached already" in r.getMessage()]
    assert len(said) == 2 and f"train.max_steps={max_steps} is reached already" in said[0]
    assert "nothing to do" in said[0]


def test_mid_epoch_resume_with_another_accum_iter_is_refused_with_the_way_out(tiny_set, tmp_path):
    common = [LINEAR, "train_pairs=16", "train.optim.epochs=2", "train.batch_size=1"]
    out = tmp_path / "run"
    train(tiny_set, out, *common, "train.accum_iter=2", "train.max_steps=3")  # batch 6 of 16
    with pytest.raises(InputError) as caught:
        train(tiny_set, out, *common, "train.accum_iter=4")
    message = str(caught.value)
    assert "stopped mid-epoch (epoch 1/2, batch 6/16) with train.accum_iter=2, this run has 4" in message
    assert "resume with train.accum_iter=2 (with train.max_steps=8 it stops at the end of the epoch" in message
    train(tiny_set, out, *common, "train.accum_iter=2", "train.max_steps=8")  # the advice works
    assert (last_state(out)["epoch"], last_state(out)["step"]) == (1, 0)
    train(tiny_set, out, *common, "train.accum_iter=4")  # and from the epoch start another accum_iter goes on
    assert last_state(out)["optimizer_steps"] == 8 + 4


# --- the log after a crash ------------------------------------------------------------------------
@pytest.mark.parametrize(("save_every", "crash_at", "saved"), [(4, 6, 4), (0, 11, 8)])
def test_a_crash_after_a_checkpoint_does_not_log_the_replayed_steps_twice(tiny_set, tmp_path, monkeypatch,
                                                                          save_every, crash_at, saved):
    """Steps after the last checkpoint are logged, then the run dies: the resumed run logs them
    again, so they leave log.jsonl and the TensorBoard curves first. Resumed mid-epoch (step 4
    of 8 per epoch), or at the end of epoch 1, where the kept test point lies on the purge step."""
    common = [LINEAR, "train_pairs=16", "train.optim.epochs=2", f"train.save_every_steps={save_every}"]
    train(tiny_set, tmp_path / "straight", *common)
    out = tmp_path / "crashed"
    fail_at_micro_batch(monkeypatch, crash_at, RuntimeError("simulated crash"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny_set, out, *common)
    monkeypatch.undo()
    assert len(train_log(out)) == crash_at and last_state(out)["optimizer_steps"] == saved
    train(tiny_set, out, *common)
    assert train_log(out, None) == train_log(tmp_path / "straight", None)
    event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

    def curves(run: Path) -> dict[str, list[tuple[int, float]]]:
        acc = event_accumulator.EventAccumulator(str(run))
        acc.Reload()
        return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}

    assert len(list(out.glob("events.out.tfevents.*"))) == 2
    assert curves(out) == curves(tmp_path / "straight")


# --- architecture mismatches ------------------------------------------------------------------------
def test_pretrained_of_another_architecture_names_the_preset_to_set(tiny_set, tmp_path, fixtures_dir):
    source = fixtures_dir / "model" / "a3r_tiny_a.pth"
    with pytest.raises(CheckpointError) as caught:
        train(tiny_set, tmp_path / "run", f"model.pretrained={source}")
    message = str(caught.value)
    assert "\n" not in message and len(message) < 1200
    assert message.startswith(f"model.pretrained {source} does not fit the network of this run (shapes differ: ")
    assert "(237 in all)" in message and "set model.preset=tiny-a and no other model.overrides" in message
    train(tiny_set, tmp_path / "ok", f"model.pretrained={source}", "model.preset=tiny-a", "train.max_steps=1",
          "train.optim.epochs=2")  # the advice works


def test_dust3r_pretrained_with_another_head_names_the_head_type(tiny_set, tmp_path, fixtures_dir):
    source = fixtures_dir / "model" / "dust3r_linear_tiny.pth"
    with pytest.raises(CheckpointError) as caught:
        train(tiny_set, tmp_path / "run", f"model.pretrained={source}")
    message = str(caught.value)
    assert "\n" not in message and f"model.pretrained {source} does not fit" in message
    assert "unknown keys downstream_head1.proj.bias" in message
    assert "set +model.overrides.head_type=linear" in message


def test_resuming_with_another_architecture_says_which(tiny_set, tmp_path):
    out = tmp_path / "run"
    train(tiny_set, out, LINEAR, "train.max_steps=1", "train.optim.epochs=2")
    with pytest.raises(CheckpointError) as caught:
        train(tiny_set, out, "train.optim.epochs=2")  # the DPT head of the preset
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{out / checkpoint.LAST} does not fit the network of this run")
    assert "missing: downstream_head1.dpt." in message and "extra: downstream_head1.proj.bias" in message
    assert "resume with +model.overrides.head_type=linear, or start a new output_dir" in message


# --- what is logged and printed ----------------------------------------------------------------------
def test_logged_components_are_means_of_the_same_window(tiny_set, tmp_path):
    """ConfLoss = conf_loss_1 + conf_loss_2 for each micro-batch, so for window means too; a
    component taken from one micro-batch of the window would break the sum."""
    out = tmp_path / "run"
    train(tiny_set, out, LINEAR, "train_pairs=8", "train.batch_size=1", "train.accum_iter=4", *[
        "data.train.common.resolution=[[64,48],[64,32]]", "data.train.common.aug_crop=16"])
    records = train_log(out)
    assert len(records) == 2
    for r in records:
        assert r["loss"] == pytest.approx(r["conf_loss_1"] + r["conf_loss_2"], rel=1e-6)


def test_console_reports_steps_and_test_losses_without_progress_bar(tiny_set, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger=TRAIN_LOG)
    out = tmp_path / "run"
    train(tiny_set, out, LINEAR, "train_pairs=8", "train.optim.epochs=2", "train.print_freq=3",
          "train.progress=false")
    messages = [r.getMessage() for r in caplog.records if r.name.startswith(TRAIN_LOG + ".")]
    steps = [m for m in messages if m.startswith("step ")]
    records = train_log(out)
    assert [int(m.split()[1]) for m in steps] == [3, 6] and len(records) == 2
    assert steps[0] == f"step 3 (epoch 1/2, batch 3/4): loss {records[0]['loss']:.4f}, lr {records[0]['lr']:.2e}"
    tests = [m for m in messages if m.startswith("test Tiny after")]
    logged = train_log(out, "test")
    assert tests == [f"test Tiny after epoch {k}/2: median loss {r['Tiny_loss_med']:.4f}, mean "
                     f"{r['Tiny_loss_avg']:.4f} (2 batches)" for k, r in zip((1, 2), logged)]


def test_progress_bar_shows_the_epoch_of_the_total(tiny_set, tmp_path, capsys):
    train(tiny_set, tmp_path / "run", LINEAR, "train.optim.epochs=2", "train.progress=true")
    err = capsys.readouterr().err
    assert "epoch 1/2" in err and "epoch 2/2" in err


def test_final_model_files_follow_the_umask(tiny_set, tmp_path):
    previous = os.umask(0o027)
    try:
        train(tiny_set, tmp_path / "run", LINEAR)
    finally:
        os.umask(previous)
    final = tmp_path / "run" / checkpoint.FINAL_MODEL_DIR
    for path in (final / "model.safetensors", final / "config.json", tmp_path / "run" / checkpoint.FINAL):
        assert path.stat().st_mode & 0o777 == 0o640, path


@pytest.mark.parametrize("head_type", ["dpt", "linear"])
def test_unused_parameters_are_exactly_those_without_gradient(head_type):
    """What DDP's find_unused_parameters is set from: the trainable parameters no forward uses."""
    torch.manual_seed(0)
    net = Align3RNet(preset("tiny").replace(head_type=head_type).for_training())
    select_trainable(net)
    b, h, w = 2, 48, 64
    views = [{"img": torch.randn(b, 3, h, w), "true_shape": torch.tensor([[h, w]] * b),
              "prior_pts3d": torch.rand(b, h, w, 3)} for _ in range(2)]
    res1, res2 = net(*views)
    (res1["pts3d"].sum() + res1["conf"].sum() + res2["pts3d_in_other_view"].sum() + res2["conf"].sum()).backward()
    no_grad = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert unused_parameters(net) == no_grad
    assert bool(no_grad) == (head_type == "dpt")

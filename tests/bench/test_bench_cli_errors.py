"""Behaviour of the bench targets on bad input, failures and dead workers: one clear line and a
non-zero exit status, never a traceback, a hang or a silent rc 0."""

from __future__ import annotations

import multiprocessing
import re
import signal
import sys
import time

import pytest
import torch

from align3r.bench import align as align_bench
from align3r.bench.model import _flop_unit
from align3r.cli import main


def _usage_error(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    return capsys.readouterr().err


# --- 1. a dead worker is reported, not waited on forever --------------------------------------

@pytest.mark.parametrize(("target", "args", "reason"), [
    (signal.raise_signal, (signal.SIGKILL,), "killed by SIGKILL"),
    (sys.exit, (3,), "exit code 3"),
])
def test_align_worker_that_dies_is_reported_as_died(target, args, reason):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=args)
    proc.start()
    t0 = time.perf_counter()
    rows = align_bench._collect(proc, queue, poll_s=0.2)
    assert time.perf_counter() - t0 < 60
    assert rows[0][0] == "died" and reason in rows[0][1]


# --- 2. bad arguments up front; a failed case → non-zero exit after the table ----------------

def test_align_rejects_a_size_without_height(capsys):
    assert "WIDTHxHEIGHT" in _usage_error(capsys, ["bench", "align", "--case", "flat", "--size", "64"])


def test_align_failed_case_gives_nonzero_exit_after_the_table(capsys):
    code = main(["bench", "align", "--case", "flat", "--size", "32x24", "--frames", "4", "--iters", "1",
                 "--graph", "no-such-graph", "--threads", "1"])
    captured = capsys.readouterr()
    assert code == 1
    assert re.search(r"^\| error \| ", captured.out, flags=re.M)
    assert "1 case(s) failed: flat" in captured.err


def test_align_presets_case_rejects_preset_and_iters(capsys):
    assert main(["bench", "align", "--case", "presets", "--iters", "5"]) == 2
    assert "--case presets" in capsys.readouterr().err


# --- 3. --device cuda without CUDA: one line, before any work --------------------------------

@pytest.mark.parametrize("argv", [
    ["bench", "model", "--preset", "tiny", "--size", "32x32", "--batch-sizes", "1"],
    ["bench", "train", "--preset", "tiny", "--size", "32x32", "--steps", "0"],
    ["bench", "align", "--case", "fixture"],
    ["bench", "flow", "--backend", "raft-small"],
    ["bench", "prior", "--models", "depthanything-small"],
    ["bench", "e2e"],
])
def test_cuda_without_a_gpu_is_a_clean_error(capsys, monkeypatch, argv):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main([*argv, "--device", "cuda"]) == 2
    captured = capsys.readouterr()
    assert "--device cuda: no CUDA device is available" in captured.err
    assert "machine:" not in captured.out  # nothing ran


# --- 6. input validation → usage errors, not tracebacks --------------------------------------

@pytest.mark.parametrize(("argv", "needle"), [
    (["bench", "decode", "--repeat", "0"], "must be at least 1"),
    (["bench", "flow", "--repeat", "0"], "must be at least 1"),
    (["bench", "model", "--repeat", "0"], "must be at least 1"),
    (["bench", "prior", "--frames", "0"], "must be at least 1"),
    (["bench", "train", "--data-pairs", "0"], "must be at least 1"),
    (["bench", "prior", "--size", "64"], "WIDTHxHEIGHT"),
    (["bench", "model", "--batch-sizes", "1,x"], "comma-separated positive integers"),
    (["bench", "e2e", "--size", "big"], "expected an integer"),
])
def test_bad_numbers_are_usage_errors(capsys, argv, needle):
    assert needle in _usage_error(capsys, argv)


def test_time_call_refuses_zero_repeats():
    from align3r.bench._common import time_call
    from align3r.errors import InputError

    with pytest.raises(InputError, match="repeat"):
        time_call(lambda: None, repeat=0)


def test_flow_checks_the_accuracy_image_before_benchmarking(capsys, tmp_path):
    code = main(["bench", "flow", "--backend", "dis", "--accuracy-image", str(tmp_path / "none.jpg")])
    captured = capsys.readouterr()
    assert code == 2 and "--accuracy-image" in captured.err
    assert "pairs / s" not in captured.out


# --- 9. runs that measure nothing are errors -------------------------------------------------

def test_model_skip_forward_alone_is_an_error(capsys):
    assert main(["bench", "model", "--preset", "tiny", "--skip-forward", "--device", "cpu"]) == 2
    assert "--flops" in capsys.readouterr().err


def test_train_skip_steps_alone_is_an_error(capsys):
    assert main(["bench", "train", "--skip-steps", "--device", "cpu"]) == 2
    assert "--data" in capsys.readouterr().err


# --- 7. FLOP units and --split at the largest batch -------------------------------------------

def test_flop_unit_is_adaptive():
    assert _flop_unit(3e12) == ("TFLOP", 1e12)
    assert _flop_unit(4e9) == ("GFLOP", 1e9)
    assert _flop_unit(5e6) == ("MFLOP", 1e6)


def test_model_flops_of_tiny_preset_are_not_zero_and_split_uses_largest_batch(capsys):
    code = main(["bench", "model", "--preset", "tiny", "--size", "32x32", "--batch-sizes", "2,1", "--warmup", "0",
                 "--repeat", "1", "--flops", "--split", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"\| part \| [GMk]?FLOP \|", out) and "TFLOP" not in out
    assert "| 0.000 |" not in out
    assert "split at 2 pairs" in out


# --- 5. decode ---------------------------------------------------------------------------------

def test_decode_missing_data_folder_is_an_error(capsys, tmp_path):
    assert main(["bench", "decode", "--data", str(tmp_path / "nonexist"), "--long-seconds", "0"]) == 2
    assert "--data" in capsys.readouterr().err


def test_decode_nothing_to_measure_is_an_error(capsys, tmp_path):
    assert main(["bench", "decode", "--data", str(tmp_path), "--long-seconds", "0"]) == 2
    assert "nothing to measure" in capsys.readouterr().err


def test_decode_failing_row_keeps_the_measured_rows_and_exits_nonzero(capsys, tmp_path):
    code = main(["bench", "decode", "--data", str(tmp_path), "--long-seconds", "0.5", "--repeat", "1"])
    captured = capsys.readouterr()
    assert code == 1 and "1 row(s) failed" in captured.err
    assert "| synthetic 0.5 s 1920x1080 H.264 | iter_frames (stream) | 15 |" in captured.out
    assert "| read_frames stride 30 | error | InputError: " in captured.out  # 15 frames, stride 30: one frame
    assert "| read_frames first 30 (no seek) | 15 |" in captured.out  # nothing sought: not labelled a seek


def test_decode_labels_fractional_seconds_and_the_real_seek(capsys, tmp_path):
    code = main(["bench", "decode", "--data", str(tmp_path), "--long-seconds", "2.5", "--repeat", "1"])
    out = capsys.readouterr().out
    assert code == 0
    assert "| synthetic 2.5 s 1920x1080 H.264 | iter_frames (stream) | 75 |" in out
    assert "| read_frames start 15 (seek) | 30 |" in out


# --- 10. help ----------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["align", "decode", "e2e", "flow", "model", "prior", "table4", "train"])
def test_every_bench_target_has_a_description_and_option_defaults(capsys, target):
    with pytest.raises(SystemExit):
        main(["bench", target, "--help"])
    out = capsys.readouterr().out
    assert "(default:" in out
    assert f"align3r bench {target}" in out  # the module description


def test_e2e_errors_name_the_bench_flags(capsys):
    assert main(["bench", "e2e", "--frames", "1", "--quiet", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "--frames 1 is below" in err and "max_frames=" not in err


def test_e2e_size_accepts_width_x_height():
    from align3r.bench.e2e import _size

    assert _size("512") == 512 and _size("512x288") == (512, 288)

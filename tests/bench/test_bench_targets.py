"""The benchmark commands run and print their tables (figures are never asserted: timing is
measured by hand and recorded in docs/benchmarks.md)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

from align3r.bench._common import peak_memory, peak_rss_gib, reset_peak_memory
from align3r.cli import main


def test_model_bench_prints_throughput_memory_and_load_time(capsys):
    code = main(["bench", "model", "--preset", "tiny", "--size", "64x64", "--batch-sizes", "1,2", "--warmup", "0",
                 "--repeat", "1", "--load"])
    out = capsys.readouterr().out
    assert code == 0
    rows = re.findall(r"^\| (\d+) \| [\d.]+ \| [\d.]+ \| [\d.]+ GiB", out, flags=re.M)
    assert rows == ["1", "2"]
    assert re.search(r"official \.pth \(weights_only\) \| [\d.]+ \|", out)
    assert re.search(r"ours \(safetensors\) \| [\d.]+ \|", out)


def test_align_bench_reproduces_the_fixture_problem(capsys, fixtures_dir, monkeypatch):
    monkeypatch.setenv("ALIGN3R_SHARED", str(fixtures_dir.parent))
    code = main(["bench", "align", "--case", "fixture", "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    ours, ref = map(float, re.search(r"final loss \| ([\d.]+) \(reference ([\d.]+)\)", out).groups())
    assert ref == 0.124216 and ours <= ref * (1 + 1e-3)
    assert re.search(r"ms / iteration \| [\d.]+ \(300 iterations\)", out)


def test_peak_memory_window_resets_between_rows():
    if not reset_peak_memory("cpu"):
        pytest.skip("this kernel does not let a process reset its peak RSS (/proc/self/clear_refs)")
    block = np.ones(2**26)  # 512 MiB
    block[::4096] = 2  # touch every page
    high = peak_rss_gib()
    del block
    reset_peak_memory("cpu")
    assert peak_rss_gib() < high - 0.25  # the next row does not inherit the 512 MiB peak
    assert peak_memory(torch.device("cpu")).endswith("(process peak RSS)")


def test_encoding_each_frame_once_saves_the_flops_the_readme_claims(capsys):
    """README and docs/architecture.md: 2.1x fewer FLOPs per pair at 4.5 pairs per frame, for the
    released architecture at 512x288 (counted on the meta device: nothing is computed)."""
    code = main(["bench", "model", "--preset", "align3r-512-dpt", "--size", "512x288", "--flops", "--skip-forward",
                 "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    pair = float(re.search(r"\| full pair forward \| ([\d.]+) \|", out).group(1))
    per_edge = float(re.search(r"\| per edge, each frame encoded once, 4.5 edges/frame \| ([\d.]+) \|", out).group(1))
    assert round(pair / per_edge, 1) >= 2.1

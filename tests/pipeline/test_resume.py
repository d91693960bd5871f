"""An interrupted `align3r infer` (kill -9) resumes from its caches and gives identical outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def _infer(clip: Path, out: Path, overrides: list[str]) -> subprocess.Popen:
    # One thread: the alignment is then bitwise deterministic, so outputs can be compared exactly.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "align3r", "infer", str(clip), "--out", str(out), "--quiet",
                             *overrides], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _core_arrays(out: Path) -> dict[str, np.ndarray]:
    arrays = {p.relative_to(out).as_posix(): np.load(p) for p in sorted(out.rglob("*.npy"))}
    arrays["trajectory"] = np.array((out / "cameras" / "trajectory_tum.txt").read_text())
    return arrays


def test_kill_midway_then_rerun_finishes_from_the_caches_with_identical_outputs(tmp_path, clip, fast_overrides):
    overrides = fast_overrides("formats=[ply]", "graph=grouped", "max_frames=12", "stride=2")
    out = tmp_path / "run"
    cache = tmp_path / "run.cache"

    # 1. Start, and kill -9 as soon as the first network predictions are cached.
    proc = _infer(clip, out, overrides)
    deadline = time.monotonic() + 300
    while not list((cache / "pairs").glob("pairs-*.safetensors")):
        assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
        assert time.monotonic() < deadline, "no prediction cache appeared"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "the run was killed before writing outputs"
    survived = {p: p.stat().st_mtime_ns for p in cache.rglob("*.safetensors")}
    assert survived

    # 2. Rerun: it completes, reusing (not rewriting) every cached chunk.
    proc = _infer(clip, out, overrides)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert all(p.stat().st_mtime_ns == t for p, t in survived.items())

    # 3. An uninterrupted run from scratch gives the same outputs, bit for bit.
    fresh = tmp_path / "fresh"
    proc = _infer(clip, fresh, overrides)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    resumed, reference = _core_arrays(out), _core_arrays(fresh)
    assert resumed.keys() == reference.keys() and len(resumed) > 20
    for name in reference:
        np.testing.assert_array_equal(resumed[name], reference[name], err_msg=name)

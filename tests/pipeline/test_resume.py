"""An interrupted `align3r infer` (kill -9) resumes from its caches and gives identical outputs."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from align3r.atomic import TEMP_TAG

from .conftest import comparable_outputs


def _infer(clip: Path, out: Path, overrides: list[str]) -> subprocess.Popen:
    # One thread: the alignment is then bitwise deterministic, so outputs can be compared exactly.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "align3r", "infer", str(clip), "--out", str(out), "--quiet",
                             *overrides], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _cache_files(cache: Path) -> dict[str, int]:
    """Finished cache files (relative name -> mtime); temporaries a kill -9 left behind are not cache entries."""
    return {p.relative_to(cache).as_posix(): p.stat().st_mtime_ns for p in sorted(cache.rglob("*"))
            if p.is_file() and TEMP_TAG not in p.name}




def test_kill_midway_then_rerun_finishes_from_the_caches_with_identical_outputs(tmp_path, clip, fast_overrides):
    overrides = fast_overrides("formats=[depth_png,depth_preview,confidence_png,original_depth,ply,glb]",
                               "graph=grouped", "max_frames=12", "stride=2")
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
    survived = _cache_files(cache)
    assert any(name.startswith("pairs/") for name in survived) and any(name.startswith("priors/") for name in survived)

    # 2. Rerun: it completes without rewriting any cached entry.
    proc = _infer(clip, out, overrides)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    resumed_cache = _cache_files(cache)
    assert {name: resumed_cache.get(name) for name in survived} == survived

    # 3. An uninterrupted run from scratch (its own cache) gives the same outputs, byte for byte, and
    #    the same cache entries: the rerun looked up the very keys the killed run had stored (a key
    #    that changed between runs would have added new entries beside the survivors).
    fresh = tmp_path / "fresh"
    proc = _infer(clip, fresh, overrides)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    assert resumed_cache.keys() == _cache_files(tmp_path / "fresh.cache").keys()
    resumed, reference = comparable_outputs(out), comparable_outputs(fresh)
    assert resumed.keys() == reference.keys() and len(resumed) > 100
    for name in reference:
        assert resumed[name] == reference[name], name

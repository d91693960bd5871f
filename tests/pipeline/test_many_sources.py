"""`align3r infer SOURCE... --out DIR`: many sources in one process and in a two-process torchrun
give identical outputs; kill -9 then rerun skips finished sources and resumes the interrupted one;
a corrupt video is recorded as failed while the others finish."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from align3r.atomic import TEMP_TAG

from .conftest import comparable_outputs

GOOD = ["a", "a-2", "frames"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # bitwise-deterministic alignment


@pytest.fixture(scope="module")
def sources(tmp_path_factory, clip, frames_dir) -> list[str]:
    """Two videos with the same name (a clash), an image folder of 24 frames, a corrupt video."""
    root = tmp_path_factory.mktemp("sources")
    (root / "sub").mkdir()
    shutil.copy(clip, root / "a.mp4")
    shutil.copy(clip, root / "sub" / "a.mp4")
    (root / "frames").mkdir()
    for image in sorted(frames_dir.glob("*.jpg"))[:24]:
        shutil.copy(image, root / "frames" / image.name)
    (root / "bad.mp4").write_bytes(b"\x00not a video" * 100)
    return [str(root / "a.mp4"), str(root / "sub" / "a.mp4"), str(root / "frames"), str(root / "bad.mp4")]


@pytest.fixture(scope="module")
def overrides(fast_overrides) -> list[str]:
    return fast_overrides("formats=[depth_png,confidence_png]", "max_frames=4", "align_settings.iterations=10")


def _infer(args: list[str], *, torchrun: bool = False) -> subprocess.Popen:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m",
                 "align3r.cli"] if torchrun else [sys.executable, "-m", "align3r"])
    return subprocess.Popen([*launcher, "infer", *args, "--quiet"], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def _finish(proc: subprocess.Popen) -> tuple[int, str]:
    out, err = proc.communicate(timeout=600)
    return proc.returncode, out + err




@pytest.fixture(scope="module")
def one_process(tmp_path_factory, sources, overrides) -> tuple[Path, int, str]:
    out = tmp_path_factory.mktemp("one") / "out"
    code, log = _finish(_infer([*sources, "--out", str(out), *overrides]))
    return out, code, log


def test_one_process_records_every_source_and_the_corrupt_one_as_failed(one_process):
    out, code, log = one_process
    assert code == 1, log[-3000:]  # one source failed
    summary = json.loads((out / "summary.json").read_text())
    status = {r["name"]: r["status"] for r in summary["records"]}
    assert status == {"a": "ok", "a-2": "ok", "frames": "ok", "bad": "failed"}
    assert summary["ok"] == 3 and summary["failed"] == 1 and summary["missing"] == []
    assert summary["renamed"] and "a-2" in summary["renamed"][0]
    bad = next(r for r in summary["records"] if r["name"] == "bad")
    assert "cannot be read as a video" in bad["error"] and "\n" not in bad["error"]
    assert bad["output"] is None and not (out / "bad").exists()
    for record in summary["records"]:
        if record["status"] == "ok":
            assert record["frames"] == 4 and record["pairs"] > 0 and record["seconds"]["align"] > 0
            assert record["peak_memory_gib"] > 0 and Path(record["output"]) == out / record["name"]
            assert record["total_s"] >= sum(record["seconds"].values()) - record["seconds"]["load"] > 0
            assert (out / record["name"] / "manifest.json").is_file()
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [r["name"] for r in rows] == [r["name"] for r in summary["records"]]
    assert {r["name"]: r["status"] for r in rows} == status
    assert "bad" in log and "failed" in log


def test_the_library_yields_finished_and_failed_sources_as_skipped_without_loading_weights(
        one_process, sources, overrides, monkeypatch):
    from align3r.commands.infer import compose, pipeline_config
    from align3r.many import reconstruct_many

    def fail(*args, **kwargs):
        raise AssertionError("nothing is left to run: no weights should be loaded")

    monkeypatch.setattr("align3r.loaded_models.load_models", fail)
    out = one_process[0]
    config = pipeline_config(compose(overrides)).replace(progress=False)
    runs = list(reconstruct_many(sources, out=out, config=config))
    assert [(r.name, r.status, r.skipped, r.result) for r in runs] == [
        ("a", "ok", True, None), ("a-2", "ok", True, None), ("frames", "ok", True, None), ("bad", "failed", True, None)]
    assert runs[3].error.startswith("video ") and runs[1].out == out / "a-2"
    assert json.loads((out / "summary.json").read_text())["failed"] == 1


def test_two_process_torchrun_shares_the_sources_and_gives_identical_outputs(tmp_path, sources, overrides,
                                                                          one_process):
    reference = one_process[0]
    out = tmp_path / "out"
    code, log = _finish(_infer([*sources, "--out", str(out), *overrides], torchrun=True))
    assert code != 0, log[-3000:]  # the corrupt video fails its rank
    summary = json.loads((out / "summary.json").read_text())
    assert {r["name"]: r["status"] for r in summary["records"]} == {"a": "ok", "a-2": "ok", "frames": "ok",
                                                                     "bad": "failed"}
    assert {r["rank"] for r in summary["records"]} == {0, 1}  # merged over the ranks
    for name in GOOD:
        mine, theirs = comparable_outputs(out / name), comparable_outputs(reference / name)
        assert mine.keys() == theirs.keys() and len(mine) > 10
        for file in theirs:
            assert mine[file] == theirs[file], (name, file)


def _cache_files(cache: Path) -> dict[str, int]:
    return {p.relative_to(cache).as_posix(): p.stat().st_mtime_ns for p in sorted(cache.rglob("*"))
            if p.is_file() and TEMP_TAG not in p.name}


def test_kill_then_rerun_skips_finished_sources_and_resumes_the_interrupted_one(tmp_path, sources, overrides,
                                                                                one_process):
    reference = one_process[0]
    out = tmp_path / "out"
    args = [*sources, "--out", str(out), *overrides]
    proc = _infer(args)
    deadline = time.monotonic() + 300
    # the first source finished, the second one's first predictions cached: kill -9
    while not ((out / "a" / "manifest.json").exists() and list((out / "a-2.cache" / "pairs").glob("pairs-*"))):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "a-2").exists() and not (out / "summary.json").exists()
    finished = {p: p.stat().st_mtime_ns for p in (out / "a").rglob("*")}
    survived = _cache_files(out / "a-2.cache")

    code, log = _finish(_infer(args))
    assert code == 1, log[-3000:]
    assert "a: done earlier" in log
    assert {p: p.stat().st_mtime_ns for p in (out / "a").rglob("*")} == finished  # skipped, untouched
    resumed = _cache_files(out / "a-2.cache")
    assert {name: resumed.get(name) for name in survived} == survived  # resumed from its cache
    for name in GOOD:
        mine, theirs = comparable_outputs(out / name), comparable_outputs(reference / name)
        assert mine.keys() == theirs.keys()
        for file in theirs:
            assert mine[file] == theirs[file], (name, file)

    # --retry-failed runs only the failed source again
    code, log = _finish(_infer([*args, "--retry-failed"]))
    assert code == 1 and "bad: failed:" in log and "a-2: done earlier" in log, log[-3000:]

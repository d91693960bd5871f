"""Outputs are never half-overwritten: full disk, no permission, crashes, existing directories."""

import errno
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from align3r import atomic
from align3r.errors import OutputError
from align3r.export import load_reconstruction, write_reconstruction


def snapshot(folder):
    """{relative path: sha256} of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(folder):
    return sorted(p.name for p in folder.parent.iterdir() if atomic.STAGING_TAG in p.name or atomic.ASIDE_TAG in p.name)


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture
def previous(tmp_path, wall, rgb, names):
    """An existing complete output directory and its file snapshot."""
    out = write_reconstruction(tmp_path / "out", wall, rgb=rgb, names=names, formats=["depth_png", "ply"])
    return out, snapshot(out)


def fail_on_call(monkeypatch, k: int, exc: OSError):
    """Make the k-th atomic file write raise ``exc`` (simulates the disk filling up midway)."""
    real = atomic.write_bytes
    calls = {"n": 0}

    def flaky(path, data, **kw):
        calls["n"] += 1
        if calls["n"] == k:
            raise exc
        return real(path, data, **kw)

    monkeypatch.setattr("align3r.export.writer.write_bytes", flaky)
    return calls


@pytest.mark.parametrize("k", [1, 17, 40])
def test_disk_full_midway_keeps_previous_outputs_and_cleans_up(previous, monkeypatch, make_wall, rgb, names, k):
    out, before = previous
    calls = fail_on_call(monkeypatch, k, OSError(errno.ENOSPC, "No space left on device", "x.png"))
    newer = make_wall(seed=1)
    newer.depth *= 2
    with pytest.raises(OutputError) as info:
        write_reconstruction(out, newer, rgb=rgb, names=names, overwrite=True)
    assert calls["n"] >= k  # other worker threads may finish their file first
    message = str(info.value)
    assert "disk full" in message and "free some space" in message and "previous outputs" in message
    assert "need about" in message
    assert isinstance(info.value.__cause__, OSError) and info.value.__cause__.errno == errno.ENOSPC
    assert snapshot(out) == before
    assert leftovers(out) == []
    assert torch.equal(load_reconstruction(out).reconstruction.depth, make_wall().depth)


def test_real_enospc_from_the_video_encoder(previous, monkeypatch, wall, rgb, names):
    """FFmpeg's own ENOSPC (writing to /dev/full) surfaces as OutputError, outputs intact."""
    from align3r.export import video

    real = video.write_video
    monkeypatch.setattr("align3r.export.writer.write_video",
                        lambda path, frames, fps, **kw: real(Path("/dev/full"), frames, fps, **kw))
    out, before = previous
    with pytest.raises(OutputError, match="disk full while writing /dev/full"):
        write_reconstruction(out, wall, rgb=rgb, names=names, overwrite=True)
    assert snapshot(out) == before and leftovers(out) == []


def test_permission_denied_is_a_clear_error(previous, monkeypatch, wall, rgb, names):
    out, before = previous
    fail_on_call(monkeypatch, 3, PermissionError(errno.EACCES, "Permission denied", "depth/00001.npy"))
    with pytest.raises(OutputError, match=r"cannot write .*Permission denied.*writable output directory"):
        write_reconstruction(out, wall, rgb=rgb, names=names, overwrite=True)
    assert snapshot(out) == before and leftovers(out) == []


def test_an_interrupt_or_bug_midway_also_leaves_previous_outputs(previous, monkeypatch, wall, rgb, names):
    out, before = previous

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("align3r.export.writer.glb_bytes", boom)
    with pytest.raises(KeyboardInterrupt):
        write_reconstruction(out, wall, rgb=rgb, names=names, overwrite=True)
    assert snapshot(out) == before and leftovers(out) == []


def test_existing_outputs_need_overwrite_and_foreign_folders_are_never_replaced(previous, tmp_path, wall, rgb):
    out, before = previous
    with pytest.raises(OutputError, match=r"already exists; allow replacing it \(align3r infer: overwrite=true, align3r export: --overwrite"):
        write_reconstruction(out, wall, rgb=rgb)
    assert snapshot(out) == before
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"precious")
    with pytest.raises(OutputError, match="not an align3r output"):
        write_reconstruction(foreign, wall, rgb=rgb, overwrite=True)
    assert (foreign / "holiday.jpg").read_bytes() == b"precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        write_reconstruction(tmp_path / "file", wall, rgb=rgb, overwrite=True)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_overwrite_replaces_the_whole_directory(previous, monkeypatch, make_wall, rgb, names, exchange):
    out, _ = previous
    (out / "stale.txt").write_text("from an older run")
    if not exchange:
        monkeypatch.setattr(atomic, "_exchange", lambda a, b: False)
    newer = make_wall(seed=3)
    write_reconstruction(out, newer, rgb=rgb, names=names, formats=["glb"], overwrite=True)
    assert not (out / "stale.txt").exists() and not (out / "pointclouds").exists() and (out / "scene.glb").exists()
    assert torch.equal(load_reconstruction(out).reconstruction.conf, newer.conf)
    assert leftovers(out) == []


def test_crash_between_the_two_renames_is_repaired(previous):
    out, before = previous
    aside = out.with_name(f"{out.name}{atomic.ASIDE_TAG}{dead_pid()}")
    os.rename(out, aside)  # what a crash right after "old aside" leaves
    stale = out.with_name(f"{out.name}{atomic.STAGING_TAG}{dead_pid()}")
    stale.mkdir()
    (stale / "half.npy").write_bytes(b"\x93NUMPY")
    atomic.recover_interrupted_swap(out)
    assert snapshot(out) == before and leftovers(out) == []


def test_staging_directories_of_live_writers_are_left_alone(previous):
    out, _ = previous
    live = out.with_name(f"{out.name}{atomic.STAGING_TAG}{os.getppid()}")
    live.mkdir()
    atomic.recover_interrupted_swap(out)
    assert live.exists()


def test_atomic_file_write_keeps_the_old_file_on_failure(tmp_path):
    path = tmp_path / "a.txt"
    atomic.write_text(path, "old")
    with pytest.raises(RuntimeError), atomic.atomic_path(path) as tmp:
        tmp.write_text("half")
        raise RuntimeError
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]

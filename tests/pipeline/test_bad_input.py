"""Bad input to `align3r infer`: a clear one-line error, exit code 2, and the previous outputs intact."""

from __future__ import annotations

import errno
import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from align3r.cli import main


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def good_output(tmp_path_factory, clip, fast_overrides) -> Path:
    out = tmp_path_factory.mktemp("good") / "out"
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides("formats=[]")]) == 0
    return out


@pytest.fixture
def previous(tmp_path, good_output):
    """A copy of a finished output directory and the digest of every file in it."""
    out = tmp_path / "out"
    shutil.copytree(good_output, out)
    return out, _digest(out)


def _fails(capsys, args: list[str], *needles: str) -> str:
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = err.strip().splitlines()[-1]  # progress bars of third-party loaders may precede it
    assert line.startswith("align3r infer: error: "), err
    for needle in needles:
        assert needle in line, line
    return line


def _all_frames(overrides: list[str]) -> list[str]:
    """The fast settings, but every frame of a short folder."""
    return [o for o in overrides if not o.startswith(("stride=", "max_frames="))]


def _frames(folder: Path, sizes: list[tuple[int, int]]) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k, (w, h) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(folder / f"{k:05d}.png")
    return folder


@pytest.mark.parametrize("content", [b"", b"this is a text file, not a video\n", b"\x00\x00\x00\x18ftypmp42" + bytes(200)],
                         ids=["empty", "text", "truncated-mp4"])
def test_unreadable_video(tmp_path, previous, capsys, fast_overrides, content):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(content)
    out, before = previous
    _fails(capsys, ["infer", str(bad), "--out", str(out), *fast_overrides()], str(bad))
    assert _digest(out) == before


def test_folder_without_images(tmp_path, previous, capsys, fast_overrides):
    empty = tmp_path / "frames"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    out, before = previous
    _fails(capsys, ["infer", str(empty), "--out", str(out), *fast_overrides()], "no images")
    assert _digest(out) == before


def test_mixed_resolutions(tmp_path, previous, capsys, fast_overrides):
    folder = _frames(tmp_path / "frames", [(320, 240), (320, 240), (256, 256)])
    out, before = previous
    _fails(capsys, ["infer", str(folder), "--out", str(out), *_all_frames(fast_overrides())], "00002")
    assert _digest(out) == before


def test_one_frame(tmp_path, previous, capsys, fast_overrides):
    folder = _frames(tmp_path / "frames", [(320, 240)])
    out, before = previous
    _fails(capsys, ["infer", str(folder), "--out", str(out), *_all_frames(fast_overrides())], "1 frame")
    assert _digest(out) == before


def test_missing_weights_offline_names_the_repo_and_the_folder(tmp_path, previous, capsys, clip, fast_overrides,
                                                              monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty_hub"))
    monkeypatch.setenv("ALIGN3R_CHECKPOINTS", str(tmp_path / "empty_checkpoints"))
    out, before = previous
    overrides = [o for o in fast_overrides() if not o.startswith("model=")] + ["model=align3r-depthpro"]
    repo = "cyun9286/Align3R_DepthPro_ViTLarge_BaseDecoder_512_dpt"
    # the Hub repo, the file to fetch, the local folder it goes into, and the Hub cache it is looked up in
    _fails(capsys, ["infer", str(clip), "--out", str(out), *overrides], f"Hub repo '{repo}'", "'align3r_depthpro.pth'",
           f"into '{tmp_path / 'empty_checkpoints'}'", f"HF_HUB_CACHE={tmp_path / 'empty_hub'}")
    assert _digest(out) == before


def test_unknown_output_format_fails_before_any_work(previous, capsys, clip, fast_overrides, monkeypatch):
    def no_work(*args, **kwargs):
        raise AssertionError("weights were loaded or frames decoded before the formats were checked")

    monkeypatch.setattr("align3r.model.build.read_checkpoint", no_work)
    monkeypatch.setattr("align3r.pipeline.prepare_input", no_work)
    out, before = previous
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides("formats=[ply,mesh]")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == ("align3r infer: error: unknown output formats ['mesh']; choose from depth_png, depth_preview, "
                   "confidence_png, original_depth, ply, glb, colmap, colmap_bin, nerfstudio, rerun, video, or all "
                   "(the core is always written)")
    assert _digest(out) == before


def test_a_checkpoint_of_the_wrong_kind(tmp_path, previous, capsys, clip, fast_overrides):
    wrong = tmp_path / "raft_things.pth"
    torch.save({"feature_encoder.convnormrelu.0.weight": torch.zeros(64, 3, 7, 7)}, wrong)
    out, before = previous
    overrides = [o for o in fast_overrides() if not o.startswith("model=")] + [f"model={wrong}"]
    _fails(capsys, ["infer", str(clip), "--out", str(out), *overrides], str(wrong))
    assert _digest(out) == before


@pytest.mark.parametrize("bad", ["nan", "zero", "negative"])
def test_bad_depth_priors(tmp_path, previous, capsys, fast_overrides, bad):
    folder = _frames(tmp_path / "frames", [(320, 240)] * 3)
    priors = tmp_path / "depth"
    priors.mkdir()
    for k in range(3):
        depth = np.full((240, 320), {"nan": np.nan, "zero": 0.0, "negative": -2.0}[bad], np.float32)
        np.save(priors / f"{k:05d}.npy", depth)
    out, before = previous
    err = _fails(capsys, ["infer", str(folder), "--out", str(out), *_all_frames(fast_overrides()),
                          f"prior=external:{priors}"])
    assert "depth" in err.lower() and "00000" in err
    assert _digest(out) == before


def test_full_disk_keeps_the_previous_outputs(previous, capsys, clip, fast_overrides, monkeypatch):
    import align3r.export.writer as writer

    real, calls = writer.write_bytes, {"n": 0}

    def disk_fills_up(path, data, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data, **kw)

    monkeypatch.setattr(writer, "write_bytes", disk_fills_up)
    out, before = previous
    _fails(capsys, ["infer", str(clip), "--out", str(out), *fast_overrides("formats=[]")], "disk full")
    assert _digest(out) == before
    assert not [p for p in out.parent.iterdir() if p.name.startswith("out.tmp")]


def _oom_above(real, limit: int, seen: list[int]):
    """``real`` (a network method) that raises CUDA's out-of-memory error for batches above ``limit``."""

    def limited(self, first, *rest):
        seen.append(len(first))
        if len(first) > limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, first, *rest)

    return limited


@pytest.fixture(scope="module")
def tiny_problem(tiny_net_dir):
    """A tiny network, 4 random 64x64 views with priors, their complete graph and its predictions."""
    from align3r.inference import PairPredictor
    from align3r.model import load_model
    from align3r.pairs import make_graph

    torch.manual_seed(0)
    n = 4
    net = load_model(tiny_net_dir)
    inputs = (torch.rand(n, 3, 64, 64) * 2 - 1, torch.tensor([[64, 64]] * n), torch.rand(n, 64, 64, 3))
    graph = make_graph("complete", n)
    reference = PairPredictor(net, *inputs, batch_size=12, progress=False)(graph)
    return net, inputs, graph, reference


@pytest.mark.parametrize("method", ["encode_frames", "decode_pairs"])
def test_gpu_out_of_memory_backs_off_then_explains(monkeypatch, tiny_problem, method):
    """OOM while encoding frames or decoding pairs halves the batch and retries; OOM at one item
    says what to change."""
    from align3r.inference import OutOfMemory, PairPredictor
    from align3r.model import Align3RNet

    net, inputs, graph, reference = tiny_problem
    real, seen = getattr(Align3RNet, method), []
    monkeypatch.setattr(Align3RNet, method, _oom_above(real, 1 if method == "encode_frames" else 3, seen))
    preds = PairPredictor(net, *inputs, batch_size=12, progress=False)(graph)
    assert seen[:3] == ([4, 2, 1] if method == "encode_frames" else [12, 6, 3])
    assert preds.num_edges == graph.num_edges
    torch.testing.assert_close(preds.pts3d_i, reference.pts3d_i)
    torch.testing.assert_close(preds.conf_j, reference.conf_j)

    monkeypatch.setattr(Align3RNet, method, _oom_above(real, 0, []))
    with pytest.raises(OutOfMemory, match=r"one (frame|pair) per batch .*size=224.*max_frames.*device=cpu"):
        PairPredictor(net, *inputs, batch_size=4, progress=False)(graph)



@pytest.mark.parametrize("kind", ["foreign-folder", "existing-output-no-overwrite", "existing-file"])
def test_a_refused_output_directory_fails_before_any_work_and_gets_no_cache(tmp_path, previous, capsys, clip,
                                                                           fast_overrides, no_work, kind):
    out, before = previous
    extra = []
    if kind == "foreign-folder":
        out = tmp_path / "notdir"
        out.mkdir()
        (out / "notes.txt").write_text("my notes")
        needle = "is a non-empty directory that is not an align3r output"
    elif kind == "existing-output-no-overwrite":
        extra = ["overwrite=false"]
        needle = "already exists; allow replacing it"
    else:
        out = tmp_path / "fake.mp4"
        out.write_bytes(b"not mine to replace")
        needle = "exists and is not a directory"
    line = _fails(capsys, ["infer", str(clip), "--out", str(out), *fast_overrides(*extra)], str(out), needle)
    assert "choose another output" in line
    assert not out.with_name(out.name + ".cache").exists()
    if kind == "foreign-folder":
        assert (out / "notes.txt").read_text() == "my notes"
    elif kind == "existing-file":
        assert out.read_bytes() == b"not mine to replace"
    else:
        assert _digest(out) == before


def test_the_current_directory_is_refused_as_output(tmp_path, capsys, clip, fast_overrides, no_work, monkeypatch):
    """``--out .`` used to crash in ``RunCache.beside`` (PosixPath('.') has an empty name); the output
    replaces its directory as a whole, so the cwd (even empty) is refused, with no cache beside it."""
    from align3r.cache import RunCache

    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert RunCache.beside(".").root == tmp_path / "here.cache"
    assert RunCache.beside("a/..").root == tmp_path / "here.cache"
    _fails(capsys, ["infer", str(clip), "--out", ".", *fast_overrides()], f"{here} is the current directory",
           "--out ./reconstruction")
    _fails(capsys, ["infer", str(clip), "--out", "..", *fast_overrides()], f"contains the current directory {here}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"] and not any(here.iterdir())


def test_an_unknown_graph_fails_before_any_work(previous, capsys, clip, fast_overrides, no_work):
    out, before = previous
    line = _fails(capsys, ["infer", str(clip), "--out", str(out), *fast_overrides("graph=swin-two")],
                  "graph=swin-two", "unknown pair graph", "swinstride-K", "grouped-paper")
    assert "Traceback" not in line
    assert _digest(out) == before

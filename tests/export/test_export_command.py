"""`align3r export`: (re)write formats of a saved reconstruction, atomically."""

import argparse
import errno
import hashlib
import json

import pytest
import torch
import trimesh

from align3r.errors import OutputError
from align3r.export import export_formats, load_reconstruction, write_reconstruction


def snapshot(folder):
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def core_only(tmp_path, wall, rgb, names, timestamps):
    out = write_reconstruction(tmp_path / "run", wall, rgb=rgb, names=names, timestamps=timestamps, formats=[],
                               manifest={"settings": {"model": "m"}})
    return out, wall


def test_adding_formats_keeps_the_core_and_updates_the_manifest(core_only):
    out, recon = core_only
    before = snapshot(out)
    export_formats(out, ["colmap", "ply"])
    after = snapshot(out)
    assert {k: v for k, v in after.items() if k in before and k != "manifest.json"} == \
        {k: v for k, v in before.items() if k != "manifest.json"}
    assert (out / "colmap" / "sparse" / "0" / "images.txt").exists() and (out / "pointclouds" / "frames").is_dir()
    m = json.loads((out / "manifest.json").read_text())
    assert m["export"]["formats"] == ["ply", "colmap"] and m["settings"] == {"model": "m"}
    assert set(m["timings"]["export_s"]) >= {"core", "ply", "colmap"}
    assert m["timestamps"] == "seconds" and m["frames"][2]["timestamp"] == pytest.approx(2 / 30)
    saved = load_reconstruction(out)
    assert torch.equal(saved.reconstruction.depth, recon.depth) and saved.timestamps_are_seconds
    export_formats(out, ["video"])
    assert json.loads((out / "manifest.json").read_text())["export"]["formats"] == ["ply", "colmap", "video"]


def test_export_to_a_new_directory_leaves_the_source_alone(core_only, tmp_path):
    out, _ = core_only
    before = snapshot(out)
    copy = export_formats(out, "all", out_dir=tmp_path / "copy")
    assert snapshot(out) == before
    assert (copy / "scene.glb").exists() and (copy / "preview.mp4").exists()
    with pytest.raises(OutputError, match="already exists"):
        export_formats(out, ["glb"], out_dir=copy)


def test_disk_full_during_export_leaves_the_directory_as_it_was(core_only, monkeypatch):
    out, _ = core_only
    export_formats(out, ["ply"])
    before = snapshot(out)

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    # Rewriting ply replaces hard-linked files in the staging copy: the originals must not change.
    monkeypatch.setattr("align3r.export.writer.glb_bytes", full)
    with pytest.raises(OutputError, match="disk full"):
        export_formats(out, ["ply", "glb"], options=None)
    assert snapshot(out) == before
    assert [p.name for p in out.parent.iterdir()] == ["run"]


def test_export_command_line(core_only, capsys):
    from align3r.commands import export

    out, _ = core_only
    parser = argparse.ArgumentParser()
    export.add_arguments(parser)
    assert export.run(parser.parse_args([str(out), "--format", "ply", "--min-conf", "1"])) == 0
    assert capsys.readouterr().out.strip() == str(out)
    frame = trimesh.load(out / "pointclouds" / "frames" / "00000.ply")
    assert len(frame.vertices) == 48 * 64  # every pixel passes conf >= 1
    assert json.loads((out / "manifest.json").read_text())["outputs"]["ply"]["min_conf"] == 1.0
    with pytest.raises(SystemExit):
        parser.parse_args([str(out), "--format", "obj"])


def test_rewriting_colmap_keeps_the_original_resolution(tmp_path, wall, rgb, names, timestamps, caplog):
    """The original frames live only in colmap/images: a re-export reads them back instead of
    silently writing a network-resolution model; without them it says so."""
    import numpy as np

    from align3r.export import OriginalResolution

    h, w = rgb.shape[1:3]
    original = OriginalResolution.from_resize_crop((2 * h, 2 * w), (h, w))
    frames = np.repeat(np.repeat(rgb, 2, axis=1), 2, axis=2)
    out = write_reconstruction(tmp_path / "run", wall, rgb=rgb, names=names, timestamps=timestamps,
                               formats=["colmap"], original=OriginalResolution.from_resize_crop(
                                   (2 * h, 2 * w), (h, w), frames=frames))
    before = (out / "colmap" / "sparse" / "0" / "cameras.txt").read_text()
    assert f"PINHOLE {2 * w} {2 * h}" in before

    export_formats(out, ["colmap"], options=None)
    assert (out / "colmap" / "sparse" / "0" / "cameras.txt").read_text() == before
    assert json.loads((out / "manifest.json").read_text())["outputs"]["colmap"]["resolution"] == "original"

    plain = write_reconstruction(tmp_path / "plain", wall, rgb=rgb, names=names, timestamps=timestamps,
                                 formats=[], original=original)
    with caplog.at_level("WARNING"):
        export_formats(plain, ["colmap"])
    assert "network resolution" in caplog.text and "rerun `align3r infer`" in caplog.text
    assert f"PINHOLE {w} {h}" in (plain / "colmap" / "sparse" / "0" / "cameras.txt").read_text()

"""write_reconstruction -> load_reconstruction reproduces the reconstruction exactly."""

import hashlib
import json

import numpy as np
import pytest
import torch

import align3r
from align3r.errors import InputError
from align3r.export import load_reconstruction, write_reconstruction
from align3r.export.reader import SavedReconstruction


def test_round_trip_is_exact(written):
    out, recon, rgb, _ = written
    saved = load_reconstruction(out)
    assert isinstance(saved, SavedReconstruction)
    got = saved.reconstruction
    for name in ("depth", "cam2world", "intrinsics", "conf", "dynamic_mask", "frame_ids"):
        a, b = getattr(got, name), getattr(recon, name)
        assert a.dtype == b.dtype and torch.equal(a, b), name
    assert got.loss_history == recon.loss_history and got.loss_terms == recon.loss_terms
    assert np.array_equal(saved.rgb, rgb)
    assert saved.names == [f"{i:05d}.jpg" for i in range(6)]
    assert saved.stems == [f"{i:05d}" for i in range(6)]
    assert saved.timestamps.tolist() == [i / 30 for i in range(6)] and saved.timestamps_are_seconds
    assert saved.original.size == (96, 136) and saved.original.scale == (2.0, 2.0)


def test_defaults_without_names_timestamps_or_frame_ids(tmp_path, make_wall, rgb):
    recon = make_wall()
    recon.frame_ids = None
    recon.loss_history = []
    recon.loss_terms = {}
    out = write_reconstruction(tmp_path / "o", recon, rgb=torch.from_numpy(rgb), formats=[])
    saved = load_reconstruction(out)
    assert saved.reconstruction.frame_ids is None and saved.reconstruction.loss_history == []
    assert saved.reconstruction.loss_terms == {}
    assert saved.stems == [f"{i:06d}" for i in range(6)]
    assert saved.timestamps.tolist() == list(range(6)) and not saved.timestamps_are_seconds
    assert torch.equal(saved.reconstruction.depth, recon.depth)
    # Without optional formats only the core exists.
    assert not (out / "preview.mp4").exists() and not (out / "scene.glb").exists()
    assert json.loads((out / "manifest.json").read_text())["export"]["formats"] == []


def test_manifest_records_inputs_settings_versions_timings(tmp_path, wall, rgb, data_dir):
    video = data_dir / "davis_lady_running" / "demo_data" / "lady-running.mp4"
    out = write_reconstruction(
        tmp_path / "o", wall, rgb=rgb, formats=["depth_png"],
        manifest={"inputs": [video], "settings": {"model": "align3r_depthpro", "depth_max": float("inf"),
                                                  "resolution": (512, 288)},
                  "timings": {"inference_s": 1.25}})
    m = json.loads((out / "manifest.json").read_text())  # strict JSON: no NaN / Infinity literals
    assert m["format"] == "align3r-reconstruction" and m["format_version"] == 1
    assert m["inputs"] == [{"path": str(video), "bytes": video.stat().st_size,
                            "sha256": "sha256:" + hashlib.sha256(video.read_bytes()).hexdigest()}]
    assert m["settings"] == {"model": "align3r_depthpro", "depth_max": "inf", "resolution": [512, 288]}
    assert m["timings"]["inference_s"] == 1.25 and m["timings"]["export_s"]["depth_png"] >= 0
    assert m["versions"]["align3r"] == align3r.__version__ and "torch" in m["versions"]
    assert "metres up to one unknown global scale" in m["depth_units"]
    assert m["frames"][1] == {"index": 1, "name": "000002", "stem": "000002", "timestamp": 2.0, "frame_id": 2}
    listed = set(m["files"])
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} - {"manifest.json"}
    assert listed == on_disk


def test_bad_inputs_are_rejected_before_touching_disk(tmp_path, wall, rgb):
    with pytest.raises(ValueError, match="rgb must be"):
        write_reconstruction(tmp_path / "o", wall, rgb=rgb[:, :10])
    with pytest.raises(ValueError, match="unknown output formats"):
        write_reconstruction(tmp_path / "o", wall, rgb=rgb, formats=["obj"])
    with pytest.raises(ValueError, match="manifest keys"):
        write_reconstruction(tmp_path / "o", wall, rgb=rgb, manifest={"outputs": {}})
    wall.cam2world[2, 0, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        write_reconstruction(tmp_path / "o", wall, rgb=rgb)
    assert not (tmp_path / "o").exists()


def test_reader_errors_say_what_to_do(tmp_path, written):
    with pytest.raises(InputError, match="not a directory"):
        load_reconstruction(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not an align3r output"):
        load_reconstruction(tmp_path / "empty")
    import shutil

    out = shutil.copytree(written[0], tmp_path / "copy")
    (out / "depth" / "00003.npy").unlink()
    with pytest.raises(InputError, match=r"00003.npy is missing .*re-run"):
        load_reconstruction(out)
    m = json.loads((out / "manifest.json").read_text())
    m["format_version"] = 99
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(InputError, match="upgrade align3r"):
        load_reconstruction(out)


def test_frame_stems_are_safe_and_unique():
    from align3r.export.layout import frame_stems

    assert frame_stems(["a/00001.JPG", "b/x y.png", "z.tar"]) == ["00001", "x_y", "z.tar"]
    # Same name in two folders would collide: fall back to indices.
    assert frame_stems(["a/0.jpg", "b/0.jpg"]) == ["00000", "00001"]

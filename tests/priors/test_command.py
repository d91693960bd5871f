"""``align3r prior``: official-layout files from image folders, videos and processed datasets; resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from align3r.cli import main
from align3r.priors.depth_anything import DepthAnythingPrior
from align3r.priors.depth_pro import DepthProPrior


@pytest.fixture
def image_folder(tmp_path, frames) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames[:2]):
        Image.fromarray(frame).save(folder / f"{i:05d}.png")
    return folder


def test_image_folder_to_official_files_and_resume(image_folder, tmp_path, tiny_depth_pro, frames, capsys):
    out = tmp_path / "out"
    args = ["prior", str(image_folder), "--model", "depthpro", "--weights", str(tiny_depth_pro), "--out", str(out)]
    assert main(args) == 0
    assert "wrote 2 prior file(s), kept 0" in capsys.readouterr().out
    expected = DepthProPrior(str(tiny_depth_pro), progress=False).predict(frames[:2])
    for i, prior in enumerate(expected):
        stored = np.load(out / f"{i:05d}_pred_depth_depthpro.npz")
        assert sorted(stored.files) == ["depth", "focallength_px"]
        assert stored["depth"].shape == (40, 72) and stored["focallength_px"].shape == ()
        np.testing.assert_allclose(stored["depth"], prior.depth, rtol=1e-6)
        assert stored["focallength_px"] == pytest.approx(prior.focal_px, rel=1e-6)

    # a second run keeps complete files and recomputes a damaged one
    damaged = out / "00001_pred_depth_depthpro.npz"
    damaged.write_bytes(damaged.read_bytes()[:50])
    kept = (out / "00000_pred_depth_depthpro.npz").stat().st_mtime_ns
    assert main(args) == 0
    assert "wrote 1 prior file(s), kept 1" in capsys.readouterr().out
    assert (out / "00000_pred_depth_depthpro.npz").stat().st_mtime_ns == kept
    np.testing.assert_allclose(np.load(damaged)["depth"], expected[1].depth, rtol=1e-6)


def test_video_frames_with_depth_anything(data_dir, tmp_path, tiny_depth_anything):
    video = data_dir / "davis_lady_running" / "demo_data" / "lady-running.mp4"
    out = tmp_path / "out"
    assert main(["prior", str(video), "--model", "depthanything", "--weights", str(tiny_depth_anything),
                 "--out", str(out), "--max-frames", "2", "--stride", "3"]) == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["frame_000000_pred_depth_depthanything.npz", "frame_000003_pred_depth_depthanything.npz"]
    stored = np.load(out / files[1])
    assert stored.files == ["depth"] and stored["depth"].shape == (1, 480, 854)  # official rank, image size
    assert stored["depth"].min() >= 0


def test_processed_dataset_layout(tmp_path, tiny_depth_anything, frames):
    scene = tmp_path / "proc" / "scene_a"
    scene.mkdir(parents=True)
    Image.fromarray(frames[0]).save(scene / "0000_rgb.jpg", quality=95)
    Image.fromarray(frames[1]).save(scene / "0001_rgb.png")
    Image.fromarray(frames[2]).save(scene / "0001_mask.png")  # not a frame
    intrinsics = np.array([[512.0, 0, 36], [0, 512.0, 20], [0, 0, 1]], np.float32)
    np.savez(scene / "0000_metadata.npz", camera_intrinsics=intrinsics, camera_pose=np.eye(4, dtype=np.float32))
    assert main(["prior", "--dataset", str(tmp_path / "proc"), "--model", "depthanything",
                 "--weights", str(tiny_depth_anything)]) == 0
    written = sorted(p.name for p in scene.glob("*_pred_depth_*"))
    assert written == ["0000_rgb_pred_depth_depthanything.npz", "0001_rgb_pred_depth_depthanything.npz"]
    with_metadata = np.load(scene / written[0])
    assert with_metadata["focallength_px"] == 512.0  # the ground-truth fx, as the official training files
    assert "focallength_px" not in np.load(scene / written[1]).files
    png = np.asarray(Image.open(scene / "0001_rgb.png").convert("RGB"))
    expected = DepthAnythingPrior(str(tiny_depth_anything), progress=False).predict([png])[0]
    np.testing.assert_allclose(np.load(scene / written[1])["depth"][0], expected.depth, rtol=1e-6)


def test_argument_errors_are_one_line(tmp_path, capsys):
    assert main(["prior", "--model", "depthpro"]) == 2
    assert "either FRAMES" in capsys.readouterr().err
    assert main(["prior", "--dataset", str(tmp_path)]) == 2
    assert "no *rgb.jpg" in capsys.readouterr().err

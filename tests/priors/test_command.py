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


def test_processed_dataset_layout(tmp_path, tiny_depth_anything, frames, caplog):
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
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "1 frame(s) have no _metadata.npz" in warnings[0]
    assert warnings[0].endswith("focallength_px (which the official training code reads): scene_a/0001_rgb.png")
    png = np.asarray(Image.open(scene / "0001_rgb.png").convert("RGB"))
    expected = DepthAnythingPrior(str(tiny_depth_anything), progress=False).predict([png])[0]
    np.testing.assert_allclose(np.load(scene / written[1])["depth"][0], expected.depth, rtol=1e-6)


def test_argument_errors_are_one_line(tmp_path, capsys):
    assert main(["prior", "--model", "depthpro"]) == 2
    assert "either FRAMES" in capsys.readouterr().err
    assert main(["prior", "--dataset", str(tmp_path)]) == 2
    assert "no *rgb.jpg" in capsys.readouterr().err
    for extra, named in ((["--out", str(tmp_path / "o")], "--out"), (["--max-frames", "2"], "--max-frames"),
                         (["--stride", "2", "--max-frames", "2"], "--stride and --max-frames")):
        assert main(["prior", "--dataset", str(tmp_path), *extra]) == 2
        assert capsys.readouterr().err.strip().startswith(f"align3r prior: error: {named} apply to FRAMES only")


def test_help_names_infers_own_syntax(capsys):
    with pytest.raises(SystemExit):
        main(["prior", "--help"])
    text = capsys.readouterr().out
    assert "prior=official-cache:<name>" in text and "--prior" not in text


def test_an_output_folder_that_is_a_file_fails_before_the_model_runs(image_folder, tmp_path, capsys, monkeypatch):
    import align3r.commands.prior as command

    monkeypatch.setattr(command, "_build_prior", lambda args: pytest.fail("the model was built"))
    afile = tmp_path / "afile"
    afile.write_text("x")
    for out in (afile, afile / "x"):
        assert main(["prior", str(image_folder), "--out", str(out)]) == 2
        assert f"{afile} is a file, not a folder" in capsys.readouterr().err
    assert afile.read_text() == "x"


def test_device_errors_use_the_option_syntax(image_folder, tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert main(["prior", str(image_folder), "--device", "cuda", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "--device cuda: no CUDA device" in err and "use --device cpu or --device auto" in err
    assert "device=" not in err


def test_progress_moves_once_per_frame(image_folder, tiny_depth_pro, tmp_path, monkeypatch):
    """Not once per 16-frame chunk: with a slow model on the CPU that is minutes between updates."""
    import align3r.commands.prior as command
    import align3r.priors.jobs as jobs

    events = []
    build = command._build_prior

    def recording_prior(args):
        prior = build(args)
        predict_iter = prior.predict_iter

        def predict(*a, **k):
            for result in predict_iter(*a, **k):
                events.append("frame")
                yield result
        prior.predict_iter = predict
        return prior

    class Bar:
        def __init__(self, **kwargs):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, n):
            events.append(("update", n))

    monkeypatch.setattr(command, "_build_prior", recording_prior)
    monkeypatch.setattr(jobs, "tqdm", Bar)  # the progress bar of align3r.priors.jobs.write_prior_files
    assert main(["prior", str(image_folder), "--weights", str(tiny_depth_pro), "--out", str(tmp_path / "o"),
                 "--batch-size", "1"]) == 0
    assert events == ["frame", ("update", 1), "frame", ("update", 1)]
    events.clear()
    assert main(["prior", str(image_folder), "--weights", str(tiny_depth_pro), "--out", str(tmp_path / "o")]) == 0
    assert events == [("update", 2)]  # kept files move it at once


def test_kept_files_note_that_the_model_is_not_checked(image_folder, tiny_depth_pro, tmp_path, capsys):
    args = ["prior", str(image_folder), "--weights", str(tiny_depth_pro), "--out", str(tmp_path / "o")]
    assert main(args) == 0
    assert "whichever model" not in capsys.readouterr().out
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "kept 2 complete one(s) (existing files are kept whichever model wrote them" in out
    assert "--overwrite recomputes them" in out

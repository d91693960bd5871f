"""`align3r infer` settings: typed values, unknown keys, the keys infer.yaml exposes, the device,
progress bars, logging and Ctrl-C."""

from __future__ import annotations

import logging
import subprocess
import sys

import numpy as np
import pytest
import torch

from align3r.cli import main
from align3r.errors import InputError


def _error_line(capsys, args: list[str]) -> str:
    assert main([*args, "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("align3r infer: error: "), err
    return lines[0].removeprefix("align3r infer: error: ")


@pytest.mark.parametrize(("override", "expected"), [
    ("max_frames=abc", "max_frames=abc: expected an integer or null"),
    ("size=abc", "size=abc: expected an integer"),
    ("align_settings.iterations=abc", "align_settings.iterations=abc: expected an integer"),
    ("min_conf=abc", "min_conf=abc: expected a number"),
    ("stride=1.5", "stride=1.5: expected an integer"),
    ("overwrite=yes", "overwrite=yes: expected true or false"),
    ("intrinsics=[500,500,320]", "intrinsics must be [fx, fy, cx, cy], got [500,500,320]"),
    ("align_settings.schedule=cos", "align_settings.schedule=cos: expected one of cosine, linear"),
    ("prior_input=depth", "prior_input=depth: expected one of auto, pointmap, depthmap"),
    ("batch_size=0", "batch_size=0: expected a positive integer or auto"),
])
def test_a_value_of_the_wrong_type_is_one_line_before_any_work(tmp_path, capsys, clip, fast_overrides, no_work,
                                                                override, expected):
    out = tmp_path / "out"
    assert _error_line(capsys, ["infer", str(clip), "--out", str(out), *fast_overrides("formats=[ply]", override)]) \
        == expected
    assert not out.exists() and not (tmp_path / "out.cache").exists()


@pytest.mark.parametrize(("override", "expected"), [
    ("max_frame=3", "unknown setting 'max_frame'; did you mean max_frames?"),
    ("+max_frame=3", "unknown setting 'max_frame'; did you mean max_frames?"),  # Hydra's own hint
    ("align_settings.iteration=3", "unknown setting 'align_settings.iteration'; did you mean "
                                   "align_settings.iterations or align_settings.pnp_iterations or "
                                   "align_settings.warmup_iterations?"),
    ("+colour=red", "unknown setting 'colour'; known: "),
])
def test_unknown_keys_name_the_close_matches(tmp_path, capsys, clip, fast_overrides, no_work, override, expected):
    line = _error_line(capsys, ["infer", str(clip), "--out", str(tmp_path / "out"), *fast_overrides(override)])
    assert line.startswith(expected), line
    if override == "+colour=red":
        assert "max_frames" in line and "align_settings" in line


def test_values_are_converted_to_the_field_types():
    from align3r.commands.infer import compose, pipeline_config

    config = pipeline_config(compose(["fps=10", "min_conf=2", "intrinsics=[500,500,320,240]", "batch_size=8",
                                      "align_settings.lr=1", "model=123", "folder_fps=30", "crop=false",
                                      "prior_input=depthmap", "keep_cache=false"]))
    assert config.fps == 10.0 and isinstance(config.fps, float) and isinstance(config.min_conf, float)
    assert config.intrinsics == (500.0, 500.0, 320.0, 240.0)
    assert config.batch_size == 8 and config.model == "123" and config.align_overrides == {"lr": 1.0}
    assert (config.folder_fps, config.crop, config.prior_input, config.keep_cache) == (30.0, False, "depthmap", False)
    # the shipped infer.yaml holds every PipelineConfig setting (align_overrides is align_settings)
    from dataclasses import fields

    from align3r.pipeline import PipelineConfig
    keys = set(compose([]).keys())
    assert keys == {f.name for f in fields(PipelineConfig)} - {"align_overrides"} | {"align_settings"}


def test_a_size_the_networks_were_not_trained_at_warns_with_the_view_size(clip, caplog):
    from align3r.pipeline import PipelineConfig

    with caplog.at_level(logging.WARNING, logger="align3r.io.view_geometry"):
        PipelineConfig(size=300).check(clip)  # 854x480
    assert "size=300 is not a resolution the released networks were trained at" in caplog.text
    assert "854x480 frames become 288x160 views" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="align3r.io.view_geometry"):
        PipelineConfig(size=224).check(clip)
        PipelineConfig(size=512).check(clip)
    assert caplog.text == ""
    with pytest.raises(InputError, match="at least 16 pixels"):
        PipelineConfig(size=8).check(clip)


def test_folder_fps_gives_an_image_folder_timestamps_and_fps_sampling(frames_dir):
    from align3r.pipeline import PipelineConfig, prepare_input

    config = PipelineConfig(size=224, folder_fps=30, fps=10, max_frames=3, progress=False)
    prepared = prepare_input(frames_dir, config)
    assert prepared.indices.tolist() == [0, 3, 6]
    np.testing.assert_allclose(prepared.timestamps, [0.0, 0.1, 0.2])
    with pytest.raises(InputError, match="pass folder_fps to sample it by fps"):
        prepare_input(frames_dir, PipelineConfig(size=224, fps=10, max_frames=3, progress=False))


def test_cuda_without_a_gpu_is_an_input_error(monkeypatch, capsys, tmp_path, clip, fast_overrides):
    from align3r.device import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(InputError, match=r"no CUDA device is available \(torch.cuda.is_available\(\) is False\); "
                                             "use device=cpu or device=auto"):
            resolve_device(name)
    assert resolve_device("auto") == torch.device("cpu")
    line = _error_line(capsys, ["infer", str(clip), "--out", str(tmp_path / "o"), *fast_overrides("device=cuda")])
    assert line.startswith("device=cuda: no CUDA device is available")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(InputError, match=r"device=cuda:3: this machine has 1 CUDA device\(s\) \(cuda:0..cuda:0\)"):
        resolve_device("cuda:3")


def test_quiet_run_shows_no_progress_bar_and_keep_cache_false_deletes_the_cache(tmp_path, capsys, clip,
                                                                              fast_overrides):
    from transformers.utils import logging as transformers_logging

    out = tmp_path / "out"
    assert transformers_logging.is_progress_bar_enabled()
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides("formats=[]", "keep_cache=false")]) \
        == 0
    err = capsys.readouterr().err
    assert "Loading weights" not in err and "it/s" not in err and "%|" not in err, err
    assert transformers_logging.is_progress_bar_enabled()  # restored after the run
    assert (out / "manifest.json").is_file() and not (tmp_path / "out.cache").exists()


def test_ctrl_c_says_how_to_resume(tmp_path, capsys, clip, fast_overrides, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("align3r.pipeline.align_views", interrupted)  # after the priors are cached
    out = tmp_path / "out"
    assert main(["infer", str(clip), "--out", str(out), "--quiet", *fast_overrides()]) == 130
    cache = tmp_path / "out.cache"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"interrupted; run the same command again to resume from the run cache {cache}")
    assert any((cache / "priors").rglob("*.npz")) and not out.exists()

    # without a cache there is nothing to resume from
    assert main(["infer", str(clip), "--out", str(tmp_path / "o2"), "--quiet", *fast_overrides("cache_dir=none")]) \
        == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "interrupted"


def test_each_library_warning_is_printed_once():
    code = ("import logging, huggingface_hub\n"
            "from align3r.commands._logging import setup_logging\n"
            "setup_logging(logging.WARNING, '%(levelname)s %(name)s: %(message)s')\n"
            "logging.getLogger('huggingface_hub.utils._http').warning('Retrying in 1s [Retry 1/5].')\n"
            "logging.getLogger('align3r.pipeline').warning('ours')\n")
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert err.count("Retrying in 1s") == 1, err
    assert "WARNING align3r.pipeline: ours" in err and err.count("ours") == 1, err

"""A network fine-tuned with `align3r train` carries the prior it was trained with: `align3r infer`
with prior=auto and the default prior_input use it; explicit settings that contradict it warn."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from align3r.cli import main
from align3r.model.checkpoint import training_metadata
from align3r.model.checkpoints.read import read_checkpoint
from align3r.model.checkpoints.write import write_checkpoint
from align3r.pipeline import PipelineConfig, effective_prior_input, resolve_prior_input, resolve_prior_name

from .conftest import _tiny_models_module

RECORDED = {"prior": "depthanything", "prior_input": "depthmap"}


@pytest.fixture(scope="module")
def finetuned(tmp_path_factory, tiny_net_dir) -> Path:
    """``<run>/final_model`` as `align3r train` writes it for a Depth Anything, depth-map fine-tune."""
    loaded = read_checkpoint(tiny_net_dir)
    folder = tmp_path_factory.mktemp("run") / "final_model"
    write_checkpoint(loaded.config, loaded.state_dict, folder, metadata=RECORDED)
    return folder


@pytest.fixture(scope="module")
def tiny_depth_anything_dir(tmp_path_factory) -> Path:
    return _tiny_models_module().save_tiny_depth_anything(tmp_path_factory.mktemp("tiny_da"))


def test_the_recorded_prior_is_read_back_and_resolves_auto(finetuned, tiny_net_dir, caplog):
    assert json.loads((finetuned / "config.json").read_text())["training"] == RECORDED
    assert read_checkpoint(finetuned).training == RECORDED
    assert training_metadata(finetuned) == training_metadata(str(finetuned / "model.safetensors")) == RECORDED
    assert training_metadata(tiny_net_dir) == {}  # not an align3r train output: unknown
    assert resolve_prior_name(str(finetuned), "auto") == "depthanything"
    assert resolve_prior_name(str(tiny_net_dir), "auto") == "depthpro"  # unknown: Depth Pro, as before
    assert resolve_prior_name("align3r-depthanything", "auto") == "depthanything"
    assert effective_prior_input(PipelineConfig(model=str(finetuned))) == "depthmap"
    assert effective_prior_input(PipelineConfig(model=str(tiny_net_dir))) == "pointmap"
    with caplog.at_level(logging.WARNING, logger="align3r.pipeline"):
        assert resolve_prior_input(str(finetuned), "auto", "auto") == "depthmap"
        assert not caplog.text
        assert resolve_prior_input(str(finetuned), "pointmap", "depthpro") == "pointmap"  # explicit: kept, warned
    assert "prior_input=pointmap, but model" in caplog.text and "with depthmap priors" in caplog.text
    assert "prior=depthpro, but model" in caplog.text and "with depthanything priors" in caplog.text


def test_infer_uses_the_recorded_prior_and_representation(finetuned, tiny_depth_anything_dir, clip, tmp_path,
                                                           monkeypatch, capsys):
    import align3r.io
    import align3r.priors

    seen = {"inputs": [], "priors": []}
    make_views, load_prior = align3r.io.make_views, align3r.priors.load_prior

    def spy_views(*args, **kwargs):
        seen["inputs"].append(kwargs.get("prior_input"))
        return make_views(*args, **kwargs)

    def spy_prior(name, **kwargs):
        seen["priors"].append(name)
        return load_prior(name, **kwargs)

    monkeypatch.setattr(align3r.io, "make_views", spy_views)
    monkeypatch.setattr(align3r.priors, "load_prior", spy_prior)
    out = tmp_path / "out"
    settings = [f"model={finetuned}", f"prior_model={tiny_depth_anything_dir}", "max_frames=4", "stride=8",
                "size=224", "flow=dis", "graph=swin-2-noncyclic", "align_settings.iterations=5", "formats=[]",
                "cache_dir=none"]
    assert main(["infer", str(clip), "--out", str(out), *settings, "--quiet"]) == 0, capsys.readouterr().err
    assert seen["priors"] == ["depthanything"] and set(seen["inputs"]) == {"depthmap"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["pipeline"]["prior_input"] == "depthmap"
    assert manifest["settings"]["pipeline"]["prior"] == "auto"
    assert "prior_input=" not in capsys.readouterr().err  # nothing contradicts the recording: no warning

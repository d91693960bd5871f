"""A network fine-tuned with `align3r train` carries the prior it was trained with: `align3r infer`
with prior=auto and the default prior_input use it; explicit settings that contradict it warn."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from align3r.cli import main

from .conftest import _tiny_models_module


@pytest.fixture(scope="module")
def tiny_depth_anything_dir(tmp_path_factory) -> Path:
    return _tiny_models_module().save_tiny_depth_anything(tmp_path_factory.mktemp("tiny_da"))


def test_infer_uses_the_recorded_prior_and_representation(finetuned_net_dir, tiny_depth_anything_dir, clip, tmp_path,
                                                           monkeypatch, capsys):
    import align3r.io
    import align3r.priors.registry

    seen = {"inputs": [], "priors": []}
    make_views, load_prior = align3r.io.make_views, align3r.priors.registry.load_prior

    def spy_views(*args, **kwargs):
        seen["inputs"].append(kwargs.get("prior_input"))
        return make_views(*args, **kwargs)

    def spy_prior(name, **kwargs):
        seen["priors"].append(name)
        return load_prior(name, **kwargs)

    monkeypatch.setattr(align3r.io, "make_views", spy_views)
    monkeypatch.setattr(align3r.priors.registry, "load_prior", spy_prior)
    out = tmp_path / "out"
    settings = [f"model={finetuned_net_dir}", f"prior_model={tiny_depth_anything_dir}", "max_frames=4", "stride=8",
                "size=224", "flow=dis", "graph=swin-2-noncyclic", "align_settings.iterations=5", "formats=[]",
                "cache_dir=none"]
    assert main(["infer", str(clip), "--out", str(out), *settings, "--quiet"]) == 0, capsys.readouterr().err
    assert seen["priors"] == ["depthanything"] and set(seen["inputs"]) == {"depthmap"}
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["settings"]["pipeline"]["prior_input"] == "depthmap"
    assert manifest["settings"]["pipeline"]["prior"] == "auto"
    assert "prior_input=" not in capsys.readouterr().err  # nothing contradicts the recording: no warning

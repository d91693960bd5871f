"""Tiny random depth priors saved like real ones (the tiny network: ``tests/conftest.py``), and a short real clip."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tiny_models_module():
    spec = importlib.util.spec_from_file_location("tiny_prior_models", ROOT / "priors" / "tiny_models.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



def comparable_outputs(out: Path) -> dict[str, bytes | dict]:
    """Every output file's bytes under ``out``; the manifest parsed, without what differs between
    any two runs (creation time, timings, export time): for "identical outputs" checks."""
    files: dict[str, bytes | dict] = {p.relative_to(out).as_posix(): p.read_bytes()
                                      for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = json.loads(files.pop("manifest.json"))
    for key in ("created", "timings"):
        del manifest[key]
    del manifest["export"]["updated"]
    files["manifest.json"] = manifest
    return files

@pytest.fixture(scope="session")
def tiny_depth_pro_dir(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny_depth_pro")
    return _tiny_models_module().save_tiny_depth_pro(folder)


@pytest.fixture(scope="session")
def clip(data_dir) -> Path:
    """The real DAVIS lady-running mp4 (65 frames, 854x480)."""
    return data_dir / "davis_lady_running" / "demo_data" / "lady-running.mp4"


@pytest.fixture(scope="session")
def frames_dir(data_dir) -> Path:
    return data_dir / "davis_lady_running" / "demo_data" / "lady-running"


@pytest.fixture(scope="session")
def fast_overrides(tiny_net_dir, tiny_depth_pro_dir):
    """Settings that keep a CPU run to a few seconds: 6 frames at 224, DIS flow, 20 iterations."""

    def overrides(*extra: str) -> list[str]:
        return [f"model={tiny_net_dir}", f"prior_model={tiny_depth_pro_dir}", "max_frames=6", "stride=4",
                "size=224", "flow=dis", "graph=swin-2-noncyclic", "align_settings.iterations=20", *extra]

    return overrides


@pytest.fixture
def no_work(monkeypatch):
    """Loading weights, computing priors or decoding frames fails the test: for errors that must come first."""

    def fail(*args, **kwargs):
        raise AssertionError("weights were loaded, priors computed or frames decoded before the error")

    monkeypatch.setattr("align3r.model.build.read_checkpoint", fail)
    monkeypatch.setattr("align3r.priors.registry.load_prior_source", fail)
    monkeypatch.setattr("align3r.pipeline.prepare_input", fail)

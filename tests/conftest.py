"""Shared test setup: the golden fixtures of the official code (``../shared/fixtures``), the real
sample data (``../shared/data``), deterministic CPU torch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("ALIGN3R_SHARED", ROOT.parent / "shared"))
FIXTURES = SHARED / "fixtures"
DATA = SHARED / "data"

# Parity fixtures were produced in plain float32 on the CPU: never let TF32 creep in.
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
# pytest-xdist runs one worker per core; keep each worker single-threaded.
if os.environ.get("PYTEST_XDIST_WORKER"):
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"golden fixtures not found at {FIXTURES} (set ALIGN3R_SHARED)")
    return FIXTURES


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared sample data not found at {DATA} (set ALIGN3R_SHARED)")
    return DATA


@pytest.fixture(scope="session")
def metrics_reference(fixtures_dir: Path) -> dict:
    """``metrics/metrics.json``: outputs of the official evaluation code."""
    return json.loads((fixtures_dir / "metrics" / "metrics.json").read_text())


@pytest.fixture(scope="session")
def metrics_inputs(fixtures_dir: Path) -> dict[str, np.ndarray]:
    """``metrics/metrics_inputs.npz``: the depth sequences and trajectories fed to it."""
    with np.load(fixtures_dir / "metrics" / "metrics_inputs.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.fixture(scope="session")
def tum_trajectory_dir(data_dir: Path) -> Path:
    """Real TUM RGB-D trajectories (ground truth and SLAM estimates) from evo's test data."""
    return data_dir / "evo_tum_trajectories" / "test" / "data"


@pytest.fixture(scope="session")
def tiny_net_dir(tmp_path_factory) -> Path:
    """A small Align3R (prior branch, linear head) in our config + safetensors format."""
    from align3r.model import Align3RConfig, Align3RNet

    torch.manual_seed(0)
    cfg = Align3RConfig(enc_embed_dim=64, enc_depth=2, enc_num_heads=2, dec_embed_dim=64, dec_depth=4,
                        dec_num_heads=2, head_type="linear")
    net = Align3RNet(cfg)
    with torch.no_grad():  # untrained heads put half the points behind the camera: bias z forward
        for head in (net.downstream_head1, net.downstream_head2):
            head.proj.weight.mul_(0.2)
            head.proj.bias[2 * 256:3 * 256] = 1.5  # channel-major (x, y, z, conf) x 16², then pixel shuffle
            head.proj.bias[3 * 256:] = 1.5  # confidence 1 + e^1.5 ≈ 5.5, above the clouds' threshold 3
    folder = tmp_path_factory.mktemp("tiny_net")
    net.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def finetuned_net_dir(tiny_net_dir, tmp_path_factory) -> Path:
    """``<run>/final_model`` as `align3r train` writes it for a Depth Anything, depth-map fine-tune
    of the tiny network: its ``config.json`` records ``{"prior": "depthanything", "prior_input":
    "depthmap"}``."""
    from align3r.model.checkpoints.read import read_checkpoint
    from align3r.model.checkpoints.write import write_checkpoint

    loaded = read_checkpoint(tiny_net_dir)
    folder = tmp_path_factory.mktemp("run") / "final_model"
    write_checkpoint(loaded.config, loaded.state_dict, folder,
                     metadata={"prior": "depthanything", "prior_input": "depthmap"})
    return folder


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch, tmp_path_factory):
    """Tests never touch the network: the Hub is offline and its cache is private."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("ALIGN3R_OFFLINE", "1")  # torchvision / torch-hub weight downloads too


def pytest_collection_modifyitems(config, items):
    """``@pytest.mark.cuda`` tests run only where a CUDA device exists (never in CI)."""
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="no CUDA device")
    for item in items:
        if item.get_closest_marker("cuda") is not None:
            item.add_marker(skip)

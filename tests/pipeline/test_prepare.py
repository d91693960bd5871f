"""The pipeline's per-frame stage and its bookkeeping: which files the manifest says were read,
progress totals, and weights checked before the expensive stages."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from align3r.export.manifest import checkpoint_entry, input_entries
from align3r.model import load_model
from align3r.pipeline import PipelineConfig, prepare_input, run_pipeline


def _sha256(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def folder_with_priors(tmp_path) -> tuple[Path, Path]:
    """4 frames 00000..00003.png (64x48) and a depth file named after each."""
    frames, depth = tmp_path / "frames", tmp_path / "depth"
    frames.mkdir()
    depth.mkdir()
    rng = np.random.default_rng(0)
    for k in range(4):
        Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(frames / f"{k:05d}.png")
        np.save(depth / f"{k:05d}.npy", rng.uniform(1, 5, (48, 64)).astype(np.float32))
    return frames, depth


def test_manifest_inputs_are_the_frame_and_prior_files_read(folder_with_priors, tiny_net_dir):
    from align3r.priors import load_prior

    frames, depth = folder_with_priors
    config = PipelineConfig(size=224, stride=2, progress=False)  # frames 0 and 2 only
    prepared = prepare_input(frames, config, load_prior(f"external:{depth}"))
    entries = input_entries(prepared.source, prepared.files, prepared.prior_sources)
    read = [frames / "00000.png", frames / "00002.png", depth / "00000.npy", depth / "00002.npy"]
    assert entries == [{"role": role, "path": str(p.absolute()), "bytes": p.stat().st_size, "sha256": _sha256(p)}
                       for role, p in zip(["frame", "frame", "depth_prior", "depth_prior"], read)]

    net, checkpoint = load_model(str(tiny_net_dir), torch.device("cpu"), with_source=True)
    entry = checkpoint_entry(net, checkpoint)
    assert entry["role"] == "checkpoint" and entry["path"] == str(tiny_net_dir.absolute())
    assert entry["kind"] == "align3r" and len(entry["weights_fingerprint"]) == 32


def test_frame_progress_bar_knows_the_number_of_frames(folder_with_priors, monkeypatch):
    import tqdm.auto

    totals: dict[str, int | None] = {}
    real = tqdm.auto.tqdm

    def recording(*args, **kwargs):
        totals[kwargs.get("desc", "")] = kwargs.get("total")
        return real(*args, **kwargs)

    monkeypatch.setattr(tqdm.auto, "tqdm", recording)
    frames, _ = folder_with_priors
    prepare_input(frames, PipelineConfig(size=224, stride=2, progress=False))
    assert [total for desc, total in totals.items() if desc.startswith("frames")] == [2]


def test_missing_raft_weights_offline_fail_before_any_prior_is_computed(clip, tiny_net_dir, tmp_path, monkeypatch):
    from align3r.errors import OfflineError
    from align3r.model import load_model

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))  # no RAFT file in torch hub's cache
    calls: list[int] = []

    class RecordingPrior:
        def predict(self, images, **kwargs):
            calls.append(len(images))
            raise AssertionError("a depth prior was computed before the flow weights were checked")

    with pytest.raises(OfflineError, match="raft_large"):
        run_pipeline(clip, net=load_model(tiny_net_dir), prior_source=RecordingPrior(), flow="raft",
                     size=224, max_frames=4, device="cpu", progress=False)
    assert calls == []

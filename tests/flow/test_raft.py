"""torchvision RAFT backend with random weights: padding, batching, weights loading, offline errors."""

from __future__ import annotations

import urllib.error

import pytest
import torch
import torch.nn.functional as F
from torchvision.models.optical_flow import Raft_Large_Weights, Raft_Small_Weights, raft_small

from align3r.errors import CheckpointError, OfflineError
from align3r.flow import load_flow_backend
from align3r.flow.padding import CentredPadding
from align3r.flow.raft import RaftBackend, final_raft_flow
from align3r.flow.raft_weights import torch_hub_checkpoint_path

UPDATES = 3


def _random_small(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return raft_small(weights=None).train(False)


@pytest.fixture(scope="module")
def small_backend() -> RaftBackend:
    return RaftBackend(_random_small(), name="raft-small", num_flow_updates=UPDATES)


def _images(b: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Smooth random images in [-1, 1] (RAFT's input range)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand(b, 3, h // 4 + 2, w // 4 + 2, generator=g)
    return (F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * 2 - 1).clamp(-1, 1)


@pytest.mark.parametrize("variant", ["raft-small", "raft-large"])
def test_final_flow_equals_torchvision_forward(variant):
    torch.manual_seed(1)
    model = load_flow_backend(variant, weights=None, device="cpu").model
    x, y = _images(1, 128, 136, 0), _images(1, 128, 136, 1)
    with torch.no_grad():
        expected = model(x, y, num_flow_updates=UPDATES)[-1]
        ours = final_raft_flow(model, x, y, UPDATES)
    assert torch.equal(ours, expected)


@pytest.mark.parametrize("size", [(130, 145), (36, 52)])
def test_padding_then_crop_equals_flow_of_hand_padded_input(small_backend, size):
    """Our padding is centred edge replication: the crop of the hand-padded result is our result."""
    h, w = size
    x, y = _images(1, h, w, 2), _images(1, h, w, 3)
    flow = small_backend(x, y)
    assert flow.shape == (1, 2, h, w) and flow.dtype == torch.float32 and torch.isfinite(flow).all()
    pad = CentredPadding.for_size(h, w, multiple=8, min_size=128)
    by_hand = small_backend(pad.pad(x), pad.pad(y))   # already valid: no further padding
    assert by_hand.shape[-2:] == (h + pad.top + pad.bottom, w + pad.left + pad.right)
    torch.testing.assert_close(flow, pad.crop(by_hand), rtol=0, atol=1e-5)


def test_batch_equals_one_pair_at_a_time(small_backend):
    x, y = _images(3, 128, 128, 4), _images(3, 128, 128, 5)
    together = small_backend(x, y)
    alone = torch.cat([small_backend(x[k:k + 1], y[k:k + 1]) for k in range(3)])
    assert together.abs().max() > 0.1  # random weights still give a non-trivial field
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-4)


def test_local_pth_gives_the_same_flow(tmp_path, small_backend):
    x, y = _images(1, 128, 128, 6), _images(1, 128, 128, 7)
    expected = small_backend(x, y)
    state = small_backend.model.state_dict()
    torch.save(state, tmp_path / "plain.pth")
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "wrapped.pth")
    for name in ("plain.pth", "wrapped.pth"):
        loaded = load_flow_backend("raft-small", weights=tmp_path / name, num_flow_updates=UPDATES, device="cpu")
        assert torch.equal(loaded(x, y), expected)
        assert loaded.model is not small_backend.model
    fresh = load_flow_backend("raft-small", weights=None, num_flow_updates=UPDATES, device="cpu")
    assert not torch.allclose(fresh(x, y), expected)  # the weights, not the architecture, decide


def test_torchvision_weights_are_read_from_the_hub_cache(tmp_path, monkeypatch, small_backend):
    """The real torchvision weights API path, with a random file placed where torch hub caches it."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = torch_hub_checkpoint_path(Raft_Small_Weights.DEFAULT)
    assert cached == tmp_path / "hub" / "checkpoints" / "raft_small_C_T_V2-01064c6d.pth"
    cached.parent.mkdir(parents=True)
    torch.save(small_backend.model.state_dict(), cached)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    x, y = _images(1, 128, 128, 8), _images(1, 128, 128, 9)
    expected = small_backend(x, y)
    for weights in ("DEFAULT", Raft_Small_Weights.C_T_V2):
        backend = load_flow_backend("raft-small", weights=weights, num_flow_updates=UPDATES, device="cpu")
        assert torch.equal(backend(x, y), expected)


def _no_download(*args, **kwargs):
    raise AssertionError("a test tried to download weights")


def test_offline_error_names_url_destination_and_dis(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "download_url_to_file", _no_download)
    with pytest.raises(OfflineError) as err:  # HF_HUB_OFFLINE=1 (conftest) disables downloads
        load_flow_backend("raft-large")
    message = str(err.value)
    weights = Raft_Large_Weights.DEFAULT
    assert weights.url in message
    assert str(tmp_path / "hub" / "checkpoints" / "raft_large_C_T_SKHT_V2-ff5fadd5.pth") in message
    assert "TORCH_HOME" in message and "'dis'" in message


def test_failed_download_becomes_offline_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def unreachable(url, dst, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", unreachable)
    with pytest.raises(OfflineError, match=r"download failed.*raft_small_C_T_V2-01064c6d\.pth"):
        load_flow_backend("raft-small", download=True, progress=False)


def test_damaged_cache_file_says_delete_it(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    cached = torch_hub_checkpoint_path(Raft_Small_Weights.DEFAULT)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="damaged: delete it"):
        load_flow_backend("raft-small")


def test_weight_file_errors(tmp_path, small_backend):
    torch.save(small_backend.model.state_dict(), tmp_path / "small.pth")
    with pytest.raises(CheckpointError, match="are a raft-small checkpoint, not raft-large: use backend 'raft-small'"):
        load_flow_backend("raft-large", weights=tmp_path / "small.pth", device="cpu")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_flow_backend("raft-small", weights=tmp_path / "missing.pth", device="cpu")
    (tmp_path / "junk.pth").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="cannot read RAFT weights"):
        load_flow_backend("raft-small", weights=tmp_path / "junk.pth", device="cpu")
    partial = dict(small_backend.model.state_dict())
    partial.pop(next(iter(partial)))
    torch.save(partial, tmp_path / "partial.pth")
    with pytest.raises(CheckpointError, match="1 missing"):
        load_flow_backend("raft-small", weights=tmp_path / "partial.pth", device="cpu")
    with pytest.raises(CheckpointError, match="another network"):
        load_flow_backend("raft-small", weights=Raft_Large_Weights.DEFAULT, device="cpu")
    with pytest.raises(CheckpointError, match="C_T_V2"):
        load_flow_backend("raft-small", weights="sintel", device="cpu")

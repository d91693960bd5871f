"""Depth Pro prior: the official output formula, on tiny random models loaded like the real one."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from align3r.errors import CheckpointError, InputError, OfflineError
from align3r.priors.depth_pro import DEPTH_PRO_HUB_ID, DepthProPrior, focal_from_fov, metric_depth

from .tiny_models import DEPTH_PRO_NET_SIZE, FAKE_COMMIT, install_in_hub_cache, save_tiny_depth_pro


def _raw_outputs(prior: DepthProPrior, frames):
    """The network's raw outputs, computed here from the official preprocessing written out:
    ToTensor, Normalize(0.5, 0.5), bilinear (align_corners=False) to the network size."""
    x = torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 255.0
    x = (x - 0.5) / 0.5
    x = F.interpolate(x, size=(DEPTH_PRO_NET_SIZE, DEPTH_PRO_NET_SIZE), mode="bilinear", align_corners=False)
    with torch.no_grad():
        out = prior.model(pixel_values=x)
    return x, out.predicted_depth.double().numpy(), out.field_of_view.double().numpy()


# --- the formula alone ------------------------------------------------------------------------

def test_metric_depth_constant_inverse_depth_known_value():
    # canonical inverse depth c, fov 60 deg: f = 0.5 W / tan(30 deg), depth = f / (c W)
    c, width, height = 0.25, 854, 480
    canonical = torch.full((1, 16, 16), c)
    depth, focal = metric_depth(canonical, (height, width), fov_deg=torch.tensor([60.0]))
    expected_focal = 0.5 * width / math.tan(math.radians(30))
    assert depth.shape == (1, height, width)
    assert focal.item() == pytest.approx(expected_focal, rel=1e-6)
    assert torch.allclose(depth, torch.tensor(0.5 / (math.tan(math.radians(30)) * c)), rtol=1e-6)


def test_metric_depth_known_focal_overrides_fov_and_scales_depth():
    canonical = torch.rand(2, 8, 8) + 0.1
    fov = torch.tensor([50.0, 70.0])
    depth_fov, focal_fov = metric_depth(canonical, (8, 8), fov_deg=fov)
    known = torch.tensor([300.0, float("nan")])
    depth_known, focal_known = metric_depth(canonical, (8, 8), fov_deg=fov, focal_px=known)
    assert focal_known[0].item() == 300.0 and focal_known[1].item() == pytest.approx(focal_fov[1].item())
    # depth is proportional to the focal: depth = f / (canonical * W)
    ratio = (depth_known[0] / depth_fov[0]).double()
    assert torch.allclose(ratio, torch.tensor(300.0 / focal_fov[0].item(), dtype=torch.float64), rtol=1e-5)
    assert torch.equal(depth_known[1], depth_fov[1])


def test_metric_depth_clamps_inverse_depth():
    canonical = torch.tensor([[[0.0, 1e9], [1.0, 1.0]]])
    depth, _ = metric_depth(canonical, (2, 2), focal_px=torch.tensor([2.0]))  # W / f = 1
    assert depth[0, 0, 0].item() == pytest.approx(1e4)  # 1 / 1e-4
    assert depth[0, 0, 1].item() == pytest.approx(1e-4)  # 1 / 1e4
    assert depth[0, 1, 0].item() == pytest.approx(1.0)


def test_metric_depth_without_fov_needs_a_focal():
    with pytest.raises(CheckpointError, match="focal"):
        metric_depth(torch.ones(1, 4, 4), (4, 4))


def test_focal_from_fov_90_degrees_is_half_width():
    assert focal_from_fov(torch.tensor([90.0]), 640).item() == pytest.approx(320.0, rel=1e-6)


# --- the tiny model through the real loading path -------------------------------------------

@pytest.fixture(scope="module")
def prior(tiny_depth_pro) -> DepthProPrior:
    """The tiny model loaded once for this module (batches of 2)."""
    return DepthProPrior(str(tiny_depth_pro), progress=False, batch_size=2)


@pytest.fixture(scope="module")
def fov_priors(prior, frames):
    """Priors of ``frames`` with the focal from the FoV head."""
    return prior.predict(frames)


def test_preprocessing_matches_official(prior, frames):
    ours = prior.processor(images=frames, return_tensors="pt", device=prior.device,
                           input_data_format="channels_last")["pixel_values"]
    official, _, _ = _raw_outputs(prior, frames)
    assert ours.shape == (3, 3, DEPTH_PRO_NET_SIZE, DEPTH_PRO_NET_SIZE)
    assert torch.allclose(ours, official, atol=1e-6)


def test_depth_is_official_formula_of_raw_outputs(prior, fov_priors, tiny_depth_pro, frames):
    priors = fov_priors
    _, canonical, fov = _raw_outputs(prior, frames)
    height, width = frames[0].shape[:2]
    for i, p in enumerate(priors):
        # independent float64 computation: f from the fov, inverse depth * W / f, bilinear
        # (OpenCV's half-pixel bilinear = torch align_corners=False), 1 / clamp
        focal = 0.5 * width / math.tan(0.5 * math.radians(fov[i]))
        inverse = cv2.resize(canonical[i] * width / focal, (width, height), interpolation=cv2.INTER_LINEAR)
        expected = 1.0 / np.clip(inverse, 1e-4, 1e4)
        assert p.kind == "depth" and p.depth.dtype == np.float32 and p.depth.shape == (height, width)
        assert p.focal_px == pytest.approx(focal, rel=1e-5)
        np.testing.assert_allclose(p.depth, expected, rtol=1e-4)
        assert p.source.startswith(str(tiny_depth_pro))


def test_exif_focal_scales_depth_exactly(prior, fov_priors, frames):
    from_fov = fov_priors
    given = prior.predict(frames[:2], focal_px=[100.0, None])
    assert given[0].focal_px == 100.0
    np.testing.assert_allclose(given[0].depth / from_fov[0].depth, 100.0 / from_fov[0].focal_px, rtol=1e-5)
    np.testing.assert_array_equal(given[1].depth, from_fov[1].depth)
    assert given[1].focal_px == from_fov[1].focal_px


def test_constant_network_gives_closed_form_depth(tmp_path, frames):
    folder = save_tiny_depth_pro(tmp_path / "const")
    # make the network output constant: canonical inverse depth 0.25, field of view 60 deg
    from safetensors.torch import load_file, save_file

    weights = load_file(folder / "model.safetensors")
    head_conv = max(k for k in weights if k.startswith("head.layers.") and k.endswith(".weight"))
    weights[head_conv].zero_()
    weights[head_conv.replace("weight", "bias")].fill_(0.25)
    fov_conv = max(k for k in weights if k.startswith("fov_model.head.layers.") and k.endswith(".weight"))
    weights[fov_conv].zero_()
    weights[fov_conv.replace("weight", "bias")].fill_(60.0)
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})

    priors = DepthProPrior(str(folder), progress=False).predict(frames[:1], focal_px=None)
    width = frames[0].shape[1]
    assert priors[0].focal_px == pytest.approx(0.5 * width / math.tan(math.radians(30)), rel=1e-6)
    np.testing.assert_allclose(priors[0].depth, 0.5 / (math.tan(math.radians(30)) * 0.25), rtol=1e-6)
    exif = DepthProPrior(str(folder), progress=False).predict(frames[:1], focal_px=[500.0])
    np.testing.assert_allclose(exif[0].depth, 500.0 / (0.25 * width), rtol=1e-6)


def test_mixed_sizes_and_batching_keep_order(prior, fov_priors, frames):
    """Batches of 2 split at the size change: [0], [odd], [1, 2]; results equal the batch-of-2 run."""
    odd = np.random.default_rng(3).integers(0, 256, (30, 50, 3), dtype=np.uint8)
    mixed = prior.predict([frames[0], odd, frames[1], frames[2]])
    assert [p.depth.shape for p in mixed] == [(40, 72), (30, 50), (40, 72), (40, 72)]
    for a, b in zip([mixed[0], *mixed[2:]], fov_priors):
        np.testing.assert_allclose(a.depth, b.depth, rtol=1e-4)
        assert a.focal_px == pytest.approx(b.focal_px, rel=1e-5)
    assert mixed[1].focal_px == pytest.approx(0.5 * 50 / math.tan(math.radians(30)), rel=1e-2)  # fov ~60 deg


def test_loads_from_the_hub_cache_by_id(tmp_path, tiny_depth_pro, fov_priors, frames):
    install_in_hub_cache(tiny_depth_pro, tmp_path / "hub", DEPTH_PRO_HUB_ID)
    from_hub = DepthProPrior(cache_dir=tmp_path / "hub", progress=False)  # the default id, offline
    assert from_hub.identity == f"depthpro/v1|{DEPTH_PRO_HUB_ID}@{FAKE_COMMIT}|float32"
    result = from_hub.predict(frames[:1])[0]
    assert result.source == f"{DEPTH_PRO_HUB_ID}@{FAKE_COMMIT}"
    np.testing.assert_allclose(result.depth, fov_priors[0].depth, rtol=1e-5)


def test_missing_weights_offline_is_a_clear_error(tmp_path):
    prior = DepthProPrior(cache_dir=tmp_path / "empty-hub", progress=False)
    with pytest.raises(OfflineError, match="hf download apple/DepthPro-hf") as info:
        _ = prior.identity
    assert f"copy the cache into {tmp_path / 'empty-hub'};" in str(info.value)  # the cache actually used


def test_offline_message_names_the_cache_in_use(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "my-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OfflineError) as info:
        _ = DepthProPrior("nothere", progress=False).identity
    message = str(info.value)
    assert f"into {tmp_path / 'my-cache'};" in message and "~/.cache" not in message
    assert "there is no folder 'nothere' here" in message


def test_bad_model_locations(tmp_path, tiny_depth_anything):
    for missing in (tmp_path / "nope" / "model.safetensors", tmp_path / "nope", "./nothere", "~/nothere", "a/b/c"):
        with pytest.raises(CheckpointError, match=f"no such folder: {missing}") as info:
            _ = DepthProPrior(str(missing)).identity
        assert "hf download" not in str(info.value)
    (tmp_path / "model.safetensors").write_bytes(b"x")
    with pytest.raises(CheckpointError, match="is a file, not a folder"):
        _ = DepthProPrior(str(tmp_path / "model.safetensors")).identity
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        _ = DepthProPrior(str(tmp_path / "empty")).identity
    with pytest.raises(CheckpointError, match="'depth_anything' model, not 'depth_pro'"):
        DepthProPrior(str(tiny_depth_anything)).load()


def test_model_without_fov_head_needs_focal(tmp_path, frames):
    folder = save_tiny_depth_pro(tmp_path / "nofov", use_fov_model=False)
    prior = DepthProPrior(str(folder), progress=False)
    with pytest.raises(CheckpointError, match="field-of-view"):
        prior.predict(frames[:1])
    assert prior.predict(frames[:1], focal_px=[80.0])[0].focal_px == 80.0


def test_bad_input_is_reported(prior, tiny_depth_pro, frames):
    with pytest.raises(InputError, match="uint8"):
        prior.predict([frames[0].astype(np.float32)])
    with pytest.raises(InputError, match="alpha"):
        prior.predict([np.zeros((8, 8, 4), np.uint8)])
    with pytest.raises(InputError, match="focal lengths for"):
        prior.predict(frames, focal_px=[100.0])
    with pytest.raises(InputError, match="positive"):
        prior.predict(frames[:1], focal_px=[-3.0])
    with pytest.raises(InputError, match="dtype"):
        DepthProPrior(str(tiny_depth_pro), dtype="int8")


def test_in_memory_model_matches_the_loaded_one_and_has_its_own_identity(prior, fov_priors, tiny_depth_pro, frames):
    from transformers import AutoImageProcessor, DepthProForDepthEstimation

    model = DepthProForDepthEstimation.from_pretrained(tiny_depth_pro)
    processor = AutoImageProcessor.from_pretrained(tiny_depth_pro)
    in_memory = DepthProPrior.from_loaded(model, processor, progress=False)
    assert in_memory.identity.startswith("depthpro/v1|memory:")
    np.testing.assert_allclose(in_memory.predict(frames[:1])[0].depth, fov_priors[0].depth, rtol=1e-5)
    with torch.no_grad():
        model.head.layers[-2].bias.add_(0.1)
    assert DepthProPrior.from_loaded(model, processor).identity != in_memory.identity

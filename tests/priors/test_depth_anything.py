"""Depth Anything V2 prior: relative disparity at the image's resolution, tiny random models."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

from align3r.errors import CheckpointError
from align3r.priors import load_prior
from align3r.priors.depth_anything import DEPTH_ANYTHING_HUB_IDS, DepthAnythingPrior

from .tiny_models import FAKE_COMMIT, install_in_hub_cache

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406])
IMAGENET_STD = np.array([0.229, 0.224, 0.225])


@pytest.fixture(scope="module")
def prior(tiny_depth_anything) -> DepthAnythingPrior:
    return DepthAnythingPrior(str(tiny_depth_anything), progress=False, batch_size=2)


@pytest.fixture(scope="module")
def big_frames() -> list[np.ndarray]:
    """Two 180x100 frames: the 70 px processor keeps the aspect at 126x70 (height fitted), so
    the network output is upsampled to the frame."""
    rng = np.random.default_rng(11)
    return [rng.integers(0, 256, (100, 180, 3), dtype=np.uint8) for _ in range(2)]


def _raw_output(prior: DepthAnythingPrior, frame: np.ndarray) -> np.ndarray:
    """Network output computed from the 4.41.2 preprocessing written out: PIL bicubic resize of
    the uint8 image, /255, ImageNet normalisation."""
    resized = np.asarray(Image.fromarray(frame).resize((126, 70), Image.BICUBIC), dtype=np.float64) / 255.0
    x = torch.from_numpy(((resized - IMAGENET_MEAN) / IMAGENET_STD).astype(np.float32)).permute(2, 0, 1)[None]
    with torch.no_grad():
        return prior.model(pixel_values=x).predicted_depth[0].double().numpy()


def test_disparity_is_bilinear_upsampling_of_the_network_output(prior, big_frames):
    priors = prior.predict(big_frames)
    for frame, p in zip(big_frames, priors):
        raw = _raw_output(prior, frame)
        assert raw.shape == (70, 126)
        expected = cv2.resize(raw, (180, 100), interpolation=cv2.INTER_LINEAR)  # half-pixel bilinear
        assert p.kind == "disparity" and p.focal_px is None and p.depth.dtype == np.float32
        assert p.depth.shape == (100, 180)
        np.testing.assert_allclose(p.depth, expected, rtol=1e-4, atol=1e-5)
        # bilinear never leaves the output's range (no negative disparity next to zeros)
        assert raw.min() - 1e-6 <= p.depth.min() and p.depth.max() <= raw.max() + 1e-6
        assert (raw == 0).any() and p.depth.min() >= 0


def test_shrinking_is_antialiased_and_stays_in_range(prior, frames):
    """40x72 frames → a 42x70 network output, i.e. shrinking in height: still the frame's size and range."""
    p = prior.predict(frames[:1])[0]
    raw = prior.model(pixel_values=prior.processor(images=frames[:1], return_tensors="pt")["pixel_values"])
    raw = raw.predicted_depth.detach()
    assert raw.shape[-2:] == (42, 70)
    assert p.depth.shape == (40, 72)
    assert float(raw.min()) - 1e-6 <= p.depth.min() <= p.depth.max() <= float(raw.max()) + 1e-6


def test_official_processor_resolution():
    """The released processor settings give the resolution the official caches hold (official
    ``third_party/ml-depth-pro/infer_test_set.py``: the ``depth-estimation`` pipeline's
    ``predicted_depth``)."""
    from transformers import DPTImageProcessorPil

    processor = DPTImageProcessorPil(size={"height": 518, "width": 518}, keep_aspect_ratio=True,
                                     ensure_multiple_of=14, resample=3)
    for (height, width), expected in (((480, 854), (518, 924)), ((436, 1024), (518, 1218))):
        image = np.zeros((height, width, 3), np.uint8)
        assert processor(images=image, return_tensors="pt")["pixel_values"].shape[-2:] == expected


def test_size_names_select_the_hub_ids():
    assert load_prior("depthanything").model_name == DEPTH_ANYTHING_HUB_IDS["large"]
    assert load_prior("depthanything-small").model_name == "depth-anything/Depth-Anything-V2-Small-hf"
    assert DepthAnythingPrior("Base").model_name == "depth-anything/Depth-Anything-V2-Base-hf"


def test_loads_from_the_hub_cache_by_id(tmp_path, tiny_depth_anything, prior, big_frames):
    install_in_hub_cache(tiny_depth_anything, tmp_path / "hub", DEPTH_ANYTHING_HUB_IDS["large"])
    from_hub = load_prior("depthanything", cache_dir=tmp_path / "hub", progress=False)
    assert from_hub.identity == (f"depthanything/v1|{DEPTH_ANYTHING_HUB_IDS['large']}@{FAKE_COMMIT}|float32"
                                 "|processor=pil")
    np.testing.assert_allclose(from_hub.predict(big_frames[:1])[0].depth, prior.predict(big_frames[:1])[0].depth,
                               rtol=1e-6)


def test_wrong_checkpoint_is_refused(tiny_depth_pro):
    with pytest.raises(CheckpointError, match="'depth_pro' model, not 'depth_anything'"):
        DepthAnythingPrior(str(tiny_depth_pro)).load()

"""Tiny random ``transformers`` depth models saved like the real ones (folder or Hub cache).

Nothing is downloaded: configs are built here with the real architectures' structure and tiny
widths, saved with ``save_pretrained`` next to a ``preprocessor_config.json`` carrying the real
processor settings (except a small network resolution, to keep the tests fast), and loaded
back through the same ``from_pretrained`` path the released weights take.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

FAKE_COMMIT = "0123456789abcdef0123456789abcdef01234567"
DEPTH_PRO_NET_SIZE = 128  # network input side; the real model uses 1536 (= 4 x its 384 patch)
DEPTH_ANYTHING_NET_SIZE = 70  # the real model uses 518 (= 37 x 14)


def _dinov2(patch_size: int, image_size: int, **extra) -> dict:
    return dict(model_type="dinov2", hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                intermediate_size=32, patch_size=patch_size, image_size=image_size, **extra)


def save_tiny_depth_pro(folder: Path, seed: int = 0, use_fov_model: bool = True,
                        fov_bias: float | None = 60.0) -> Path:
    """A tiny Depth Pro (FoV head on) + the real DepthProImageProcessor settings at 128 px.

    ``fov_bias`` sets the FoV head's last bias so the field of view is a sane angle (random
    weights give any sign); None keeps the random head."""
    from transformers import DepthProConfig, DepthProForDepthEstimation, DepthProImageProcessor

    patch = DEPTH_PRO_NET_SIZE // 4
    sub = _dinov2(8, patch)
    config = DepthProConfig(patch_size=patch, fusion_hidden_size=16, intermediate_hook_ids=[1, 0],
                            intermediate_feature_dims=[8, 8], scaled_images_feature_dims=[16, 16, 8],
                            use_fov_model=use_fov_model, image_model_config=dict(sub),
                            patch_model_config=dict(sub), fov_model_config=dict(sub))
    torch.manual_seed(seed)
    model = DepthProForDepthEstimation(config).eval()
    with torch.no_grad():
        # the real head ends in a ReLU; a positive bias keeps the random inverse depth away from 0
        model.head.layers[-2].bias.fill_(0.5)
        if use_fov_model and fov_bias is not None:
            last = model.fov_model.head.layers[-1]
            last.weight.mul_(0.01)
            last.bias.fill_(fov_bias)
    model.save_pretrained(folder)
    DepthProImageProcessor(size={"height": DEPTH_PRO_NET_SIZE, "width": DEPTH_PRO_NET_SIZE}).save_pretrained(folder)
    return folder


def save_tiny_depth_anything(folder: Path, seed: int = 0) -> Path:
    """A tiny Depth Anything V2 (relative) + the real DPTImageProcessor settings at 70 px."""
    from transformers import AutoModelForDepthEstimation, DepthAnythingConfig, DPTImageProcessor

    backbone = _dinov2(14, 518, out_indices=[1, 2], reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, neck_hidden_sizes=[8, 16], reassemble_factors=[2, 1],
                                 fusion_hidden_size=8, head_hidden_size=8, reassemble_hidden_size=16,
                                 depth_estimation_type="relative", initializer_range=0.2)
    torch.manual_seed(seed)
    model = AutoModelForDepthEstimation.from_config(config).eval()
    with torch.no_grad():  # disparities of O(1) with some exact zeros (ReLU), like a sky
        model.head.conv3.bias.fill_(-0.8)
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": DEPTH_ANYTHING_NET_SIZE, "width": DEPTH_ANYTHING_NET_SIZE},
                      keep_aspect_ratio=True, ensure_multiple_of=14, resample=3, do_pad=False,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    return folder


def install_in_hub_cache(folder: Path, cache_dir: Path, repo_id: str, commit: str = FAKE_COMMIT) -> None:
    """Lay ``folder`` out as the Hugging Face cache does after ``hf download repo_id``."""
    repo = cache_dir / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in folder.iterdir():
        shutil.copy(file, snapshot / file.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)

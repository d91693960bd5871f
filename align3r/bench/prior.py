"""``align3r bench prior``: seconds per frame and frames/s of each depth prior, and peak memory.

The networks are the real architectures at full size (Depth Pro: three ViT-L/16 encoders at
1536², 952 M parameters; Depth Anything V2 Small/Base/Large at 518) with random weights built
from their configs, so nothing is downloaded; speed does not depend on the weight values. Each
runs through the prior's own ``predict`` (processor, network, post-processing to the image's
resolution), exactly the path the released weights take.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from align3r.bench._common import (
    machine_description,
    nonneg_int,
    peak_memory,
    positive_int,
    reset_peak_memory,
    resolve,
    size_arg,
    synchronize,
)
from align3r.errors import InputError

HELP = "frames/s of Depth Pro / Depth Anything V2 at full size (random weights, nothing downloaded)"

# Architecture of the released Depth Anything V2 checkpoints (their config.json values).
DEPTH_ANYTHING_SIZES = {
    "small": dict(hidden_size=384, num_hidden_layers=12, num_attention_heads=6, out_indices=[3, 6, 9, 12],
                  neck_hidden_sizes=[48, 96, 192, 384], fusion_hidden_size=64),
    "base": dict(hidden_size=768, num_hidden_layers=12, num_attention_heads=12, out_indices=[3, 6, 9, 12],
                 neck_hidden_sizes=[96, 192, 384, 768], fusion_hidden_size=128),
    "large": dict(hidden_size=1024, num_hidden_layers=24, num_attention_heads=16, out_indices=[5, 12, 18, 24],
                  neck_hidden_sizes=[256, 512, 1024, 1024], fusion_hidden_size=256),
}
# smallest first: on the CPU the peak memory column is the process's peak so far
MODELS = (*(f"depthanything-{size}" for size in DEPTH_ANYTHING_SIZES), "depthpro")


def build_depth_pro():
    """Depth Pro at full size (ViT-L/16 patch, image and FoV encoders; 1536² input), random weights."""
    from transformers import DepthProConfig, DepthProForDepthEstimation, DepthProImageProcessor

    vit_large = dict(model_type="dinov2", hidden_size=1024, num_hidden_layers=24, num_attention_heads=16,
                     patch_size=16, image_size=384)
    config = DepthProConfig(use_fov_model=True, image_model_config=dict(vit_large),
                            patch_model_config=dict(vit_large), fov_model_config=dict(vit_large))
    return DepthProForDepthEstimation(config), DepthProImageProcessor()


def build_depth_anything(size: str):
    """Depth Anything V2 (relative) of ``size`` at full size, random weights, the released processor
    settings with the PIL backend (what :class:`DepthAnythingPrior` loads by default)."""
    from transformers import AutoModelForDepthEstimation, DepthAnythingConfig, DPTImageProcessorPil

    arch = dict(DEPTH_ANYTHING_SIZES[size])
    backbone = dict(model_type="dinov2", hidden_size=arch.pop("hidden_size"),
                    num_hidden_layers=arch.pop("num_hidden_layers"), num_attention_heads=arch.pop("num_attention_heads"),
                    out_indices=arch.pop("out_indices"), patch_size=14, image_size=518, reshape_hidden_states=False)
    config = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=backbone["hidden_size"],
                                 head_hidden_size=32, depth_estimation_type="relative", **arch)
    processor = DPTImageProcessorPil(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
                                  resample=3, do_pad=False, image_mean=[0.485, 0.456, 0.406],
                                  image_std=[0.229, 0.224, 0.225])
    return AutoModelForDepthEstimation.from_config(config), processor


def build_prior(name: str, **settings):
    """The prior ``name`` around a full-size random-weight model (see module doc)."""
    from align3r.priors.depth_anything import DepthAnythingPrior
    from align3r.priors.depth_pro import DepthProPrior

    torch.manual_seed(0)
    if name == "depthpro":
        model, processor = build_depth_pro()
        return DepthProPrior.from_loaded(model, processor, label="random Depth Pro", **settings)
    size = name.removeprefix("depthanything-")
    model, processor = build_depth_anything(size)
    return DepthAnythingPrior.from_loaded(model, processor, label=f"random Depth Anything V2 {size}", **settings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)} (all of them)")
    parser.add_argument("--size", type=size_arg, default="854x480", help="frame size WIDTHxHEIGHT (DAVIS's)")
    parser.add_argument("--frames", type=positive_int, default=2, help="frames per timed run")
    parser.add_argument("--repeat", type=positive_int, default=1, help="timed runs; the median is printed")
    parser.add_argument("--warmup", type=nonneg_int, default=1,
                        help="untimed batches before timing (0 saves minutes for Depth Pro on a CPU)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA if available)")
    parser.add_argument("--dtype", choices=("float32", "float16", "bfloat16"),
                        help="None: float16 on CUDA, float32 on CPU")
    parser.add_argument("--batch-size", type=positive_int,
                        help="frames per forward pass (None: 4 on CUDA, 1 on CPU)")


def run(args: argparse.Namespace) -> int:
    device = resolve(args.device)
    width, height = args.size
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(MODELS))
    if unknown or not names:
        raise InputError(f"--models: unknown models {unknown}; choose from {', '.join(MODELS)}")
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(args.frames)]
    rows = []
    for name in names:
        t0 = time.perf_counter()
        prior = build_prior(name, device=str(device), dtype=args.dtype, batch_size=args.batch_size, progress=False)
        build_s = time.perf_counter() - t0
        device = prior.device
        params = sum(p.numel() for p in prior.model.parameters()) / 1e6
        reset_peak_memory(device)
        for _ in range(max(0, args.warmup)):  # allocator, kernels, lazy init
            prior.predict(frames[: prior.batch_size])
        times = []
        for _ in range(max(1, args.repeat)):
            synchronize(device)
            t0 = time.perf_counter()
            out = prior.predict(frames)
            synchronize(device)
            times.append(time.perf_counter() - t0)
        assert out[0].depth.shape == (height, width)
        seconds = sorted(times)[len(times) // 2] / len(frames)
        memory = peak_memory(device)
        rows.append((name, f"{params:.0f} M", str(prior.dtype).removeprefix("torch."), prior.batch_size,
                     f"{seconds:.2f}", f"{1 / seconds:.3f}", memory, f"{build_s:.0f} s"))
        del prior, out
    print(f"machine: {machine_description(device)}")
    print(f"frames: {len(frames)} x {width}x{height} per run, median of {max(1, args.repeat)} run(s) after "
          f"{max(0, args.warmup)} warm-up batch(es)")
    print("| prior | params | dtype | batch | s/frame | frames/s | peak memory | build |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(str(v) for v in row) + " |")
    return 0

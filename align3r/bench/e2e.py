"""``align3r bench e2e``: end-to-end time per stage of ``align3r infer`` with random weights.

``--scale tiny`` (CPU-friendly): a small Align3R (2+4 layers, linear head) and a small random Depth
Pro; ``--scale full``: the released architectures (Align3R ViT-L/DPT, Depth Pro ViT-L, RAFT-large)
with random weights — the real cost of a run, nothing downloaded. Prints the stage times.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from align3r.bench._common import machine_description, peak_memory

HELP = "end-to-end time per stage of align3r infer (random weights, tiny or full size)"
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "lady-running.mp4"


def tiny_depth_pro():
    from transformers import DepthProConfig, DepthProForDepthEstimation, DepthProImageProcessor

    sub = dict(model_type="dinov2", hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=64, patch_size=8, image_size=64)
    config = DepthProConfig(patch_size=64, fusion_hidden_size=32, intermediate_hook_ids=[1, 0],
                            intermediate_feature_dims=[16, 16], scaled_images_feature_dims=[32, 32, 16],
                            use_fov_model=True, image_model_config=dict(sub), patch_model_config=dict(sub),
                            fov_model_config=dict(sub))
    return DepthProForDepthEstimation(config), DepthProImageProcessor(size={"height": 256, "width": 256})


def build(scale: str, device: torch.device):
    from align3r.bench.prior import build_depth_pro
    from align3r.model import Align3RConfig, Align3RNet, preset
    from align3r.priors.depth_pro import DepthProPrior

    torch.manual_seed(0)
    if scale == "tiny":
        net = Align3RNet(Align3RConfig(enc_embed_dim=64, enc_depth=2, enc_num_heads=2, dec_embed_dim=64,
                                       dec_depth=4, dec_num_heads=2, head_type="linear"))
        model, processor = tiny_depth_pro()
    else:
        net = Align3RNet(preset("align3r-512-dpt"))
        model, processor = build_depth_pro()
    with torch.no_grad():  # random heads: put the points in front of the camera (sane focals)
        for head in (net.downstream_head1, net.downstream_head2):
            last = head.proj if hasattr(head, "proj") else head.dpt.head[-1]
            z = slice(2 * 256, 3 * 256) if hasattr(head, "proj") else slice(2, 3)
            last.bias[z] = 1.5
        # random Depth Pro: a sane field of view (60°) and an inverse depth away from 0
        model.head.layers[-2].bias.fill_(0.5)
        fov = model.fov_model.head.layers[-1]
        fov.weight.mul_(0.01)
        fov.bias.fill_(60.0)
    prior = DepthProPrior.from_loaded(model, processor, label=f"random Depth Pro ({scale})", device=device)
    return net.to(device).eval(), prior


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=("tiny", "full"), default="tiny")
    parser.add_argument("--source", default=str(SAMPLE), help="video or folder (default: the sample clip)")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--graph", default="grouped")
    parser.add_argument("--flow", default=None, help="dis | raft-large | raft-small | none "
                        "(default: dis on CPU, raft-large with random weights on CUDA)")
    parser.add_argument("--align", default="paper")
    parser.add_argument("--iters", type=int, default=None, help="alignment iterations (default: the preset's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--export", action="store_true", help="also write every output format")


def run(args: argparse.Namespace) -> int:
    from align3r.device import resolve_device
    from align3r.pipeline import PipelineConfig, run_pipeline

    device = resolve_device(args.device)
    flow = args.flow or ("raft-large" if device.type == "cuda" else "dis")
    net, prior = build(args.scale, device)
    overrides = {"iterations": args.iters} if args.iters else {}
    config = PipelineConfig(model="(random)", max_frames=args.frames, size=args.size, graph=args.graph, flow=flow,
                            flow_weights=None, align=args.align, align_overrides=overrides, device=str(device),
                            cache_dir="none", progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = run_pipeline(args.source, out=Path(tmp) / "out" if args.export else None, config=config,
                              net=net, prior_source=prior)
        total = time.perf_counter() - t0
    print(f"machine: {machine_description(device)}")
    print(f"align3r bench e2e --scale {args.scale}: {result.summary()}")
    print("| stage | seconds |\n|---|---|")
    for stage, seconds in result.timings.items():
        print(f"| {stage} | {seconds:.2f} |")
    print(f"| **total** | **{total:.2f}** |")
    print(f"memory: {peak_memory(device)}")
    return 0

"""``align3r bench e2e``: end-to-end time per stage of ``align3r infer`` with random weights.

``--scale tiny`` (CPU-friendly): a small Align3R (2+4 layers, linear head) and a small random Depth
Pro; ``--scale full``: the released architectures (Align3R ViT-L/DPT, Depth Pro ViT-L, RAFT-large)
with random weights — the real cost of a run, nothing downloaded. Prints the stage times.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from pathlib import Path

import torch

from align3r.bench._common import machine_description, peak_memory, positive_int, resolve, size_arg
from align3r.errors import InputError

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


def build(scale: str, device: torch.device, progress: bool = False):
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
    prior = DepthProPrior.from_loaded(model, processor, label=f"random Depth Pro ({scale})", device=device,
                                      progress=progress)
    return net.to(device).eval(), prior


def _size(text: str) -> int | tuple[int, int]:
    """``--size``: an integer (the pipeline's network size: 512 = long side 512, 224 = square) or
    WIDTHxHEIGHT like the other targets (its long side is the network size)."""
    if "x" in str(text).lower():
        return size_arg(text)
    return positive_int(text)


# infer's key=value names in the pipeline's messages → this command's flags
_FLAGS = {"max_frames": "--frames", "graph": "--graph", "size": "--size", "flow": "--flow", "align": "--align",
          "device": "--device"}


def _in_bench_terms(message: str) -> str:
    return re.sub(r"\b(" + "|".join(_FLAGS) + r")=", lambda m: _FLAGS[m.group(1)] + " ", message)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=("tiny", "full"), default="tiny",
                        help="tiny: small random networks (CPU-friendly); full: the released architectures")
    parser.add_argument("--source", default=str(SAMPLE), help="video or folder (the sample clip)")
    parser.add_argument("--frames", type=positive_int, default=30, help="frames read from the source (at most)")
    parser.add_argument("--size", type=_size, default="512",
                        help="network size: 512 (long side 512), 224 (square) or WIDTHxHEIGHT (its long side)")
    parser.add_argument("--graph", default="grouped", help="pair graph (as infer's graph=)")
    parser.add_argument("--flow", default=None, help="dis | raft-large | raft-small | none "
                        "(None: dis on CPU, raft-large with random weights on CUDA)")
    parser.add_argument("--align", default="paper", help="alignment preset")
    parser.add_argument("--iters", type=positive_int, default=None, help="alignment iterations (None: the preset's)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA if available)")
    parser.add_argument("--export", action="store_true", help="also write every output format (then deleted)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars on stderr")
    parser.add_argument("--sources", type=positive_int, default=None,
                        help="run the source N times as N sources (align3r.reconstruct_many, outputs written "
                        "then deleted): videos per hour and each stage's share")


def run(args: argparse.Namespace) -> int:
    from align3r.commands._logging import quiet_third_party
    from align3r.pipeline import PipelineConfig, run_pipeline

    device = resolve(args.device)
    flow = args.flow or ("raft-large" if device.type == "cuda" else "dis")
    size = max(args.size) if isinstance(args.size, tuple) else args.size
    overrides = {"iterations": args.iters} if args.iters else {}
    config = PipelineConfig(model="(random)", max_frames=args.frames, size=size, graph=args.graph, flow=flow,
                            flow_weights=None, align=args.align, align_overrides=overrides, device=str(device),
                            cache_dir="none", progress=not args.quiet)
    try:
        net, prior = build(args.scale, device, progress=not args.quiet)
        if args.sources:
            return _many(args, config, net, prior, device)
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            with quiet_third_party(not args.quiet):
                result = run_pipeline(args.source, out=Path(tmp) / "out" if args.export else None,
                                      config=config, net=net, prior_source=prior)
            total = time.perf_counter() - t0
    except InputError as exc:
        raise InputError(_in_bench_terms(str(exc))) from None
    result.out = None  # the temporary export folder is gone: do not print its path
    print(f"machine: {machine_description(device)}")
    views_h, views_w = result.prepared.views.rgb.shape[1:3]
    if isinstance(args.size, tuple) and (views_w, views_h) != args.size:
        print(f"note: --size {args.size[0]}x{args.size[1]} ran as network size {size}; the views are "
              f"{views_w}x{views_h} (the pipeline keeps the source's aspect)")
    print(f"align3r bench e2e --scale {args.scale}{' (outputs written, then deleted)' if args.export else ''}: "
          f"{result.summary()}")
    print("| stage | seconds |\n|---|---|")
    for stage, seconds in result.timings.items():
        print(f"| {stage} | {seconds:.2f} |")
    print(f"| **total** | **{total:.2f}** |")
    print(f"memory: {peak_memory(device)}")
    return 0


def _many(args: argparse.Namespace, config, net, prior, device: torch.device) -> int:
    """``--sources N``: N links to the source run as N sources in one process (weights loaded once)."""
    from align3r.commands._logging import quiet_third_party
    from align3r.many import reconstruct_many
    from align3r.many.records import STAGES
    from align3r.sharding import Shard

    source = Path(args.source).resolve()
    with tempfile.TemporaryDirectory() as tmp:
        links = [Path(tmp) / "in" / f"source{i}{source.suffix}" for i in range(args.sources)]
        links[0].parent.mkdir()
        for link in links:
            link.symlink_to(source, target_is_directory=source.is_dir())
        t0 = time.perf_counter()
        with quiet_third_party(not args.quiet):
            runs = list(reconstruct_many(links, out=Path(tmp) / "out", config=config, shard=Shard(),
                                         net=net, prior_source=prior))
        total = time.perf_counter() - t0
    failed = [r for r in runs if r.status != "ok"]
    if failed:
        raise InputError(_in_bench_terms(f"{failed[0].name}: {failed[0].error}"))
    seconds = {stage: sum(r.record["seconds"].get(stage, 0.0) for r in runs) for stage in STAGES}
    staged = sum(seconds.values()) or 1.0
    frames = runs[0].record["frames"]
    print(f"machine: {machine_description(device)}")
    print(f"align3r bench e2e --scale {args.scale} --sources {args.sources}: {args.sources} sources of {frames} "
          f"frames in {total:.1f} s = {args.sources / total * 3600:.0f} videos per hour (outputs written, then deleted)")
    print("| stage | seconds | share |\n|---|---|---|")
    for stage, value in seconds.items():
        print(f"| {stage} | {value:.2f} | {100 * value / staged:.1f}% |")
    print(f"| **total** | **{total:.2f}** | |")
    print(f"memory: {peak_memory(device)}")
    return 0

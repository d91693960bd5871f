"""``align3r bench train``: training throughput (pairs/s) and peak memory, and the data pipeline.

A training step is exactly the trainer's: both orders of every pair (symmetrised batch),
autocast forward, ConfLoss, backward, AdamW step on the official trainable set. Inputs are
synthetic (random images and priors, GT on a plane), weights random: no download. ``--data``
also times the per-view pipeline on a synthetic processed set (682x384 frames, the paper's
augmentations), i.e. what one data-loader worker delivers. Prints Markdown; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

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

HELP = "training step pairs/s and peak memory (full-size network by default), data-pipeline pairs/s"
AMP = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA if available)")
    parser.add_argument("--preset", default="align3r-512-dpt", help="network preset (tiny for a CPU dry run)")
    parser.add_argument("--size", type=size_arg, default="512x288", help="WIDTHxHEIGHT of the training views")
    parser.add_argument("--batch-size", type=positive_int, default=2, help="pairs per step (x2 after symmetrisation)")
    parser.add_argument("--steps", type=nonneg_int, default=3,
                        help="timed steps (median reported); 0 = only the computed static memory")
    parser.add_argument("--warmup", type=nonneg_int, default=1, help="untimed steps first")
    parser.add_argument("--amp", choices=sorted(AMP), default=None,
                        help="autocast dtype (None: bf16 on CUDA, none on CPU)")
    parser.add_argument("--data", action="store_true", help="also time the data pipeline (one worker)")
    parser.add_argument("--data-pairs", type=positive_int, default=8, help="pairs built for --data")
    parser.add_argument("--skip-steps", action="store_true", help="only --data")


def _batch(batch: int, height: int, width: int, device: torch.device) -> tuple[dict, dict]:
    """B synthetic pairs: random image/prior, GT = a fronto-parallel plane seen by identity cameras."""
    def view(tag: str) -> dict:
        v, u = torch.meshgrid(torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32),
                              indexing="ij")
        z = torch.full((height, width), 3.0)
        pts = torch.stack(((u - width / 2) * z / 400, (v - height / 2) * z / 400, z), dim=-1)
        return {"img": torch.rand(batch, 3, height, width, device=device) * 2 - 1,
                "true_shape": torch.tensor([[height, width]] * batch, dtype=torch.int32, device=device),
                "prior_pts3d": torch.rand(batch, height, width, 3, device=device),
                "pts3d": pts.expand(batch, -1, -1, -1).contiguous().to(device),
                "valid_mask": torch.ones(batch, height, width, 2, dtype=torch.bool, device=device),
                "camera_pose": torch.eye(4, device=device).expand(batch, 4, 4).contiguous(),
                "instance": [f"{tag}{i}" for i in range(batch)]}

    return view("a"), view("b")


def _memory_breakdown(net) -> str:
    total = sum(p.numel() for p in net.parameters())
    trainable = sum(p.numel() for p in net.parameters() if p.requires_grad)
    return (f"parameters {total / 1e6:.1f} M ({trainable / 1e6:.1f} M trainable): fp32 weights "
            f"{total * 4 / 2**30:.2f} GiB + grads and AdamW moments {trainable * 12 / 2**30:.2f} GiB (computed)")


def bench_steps(args: argparse.Namespace) -> None:
    from align3r.model import Align3RNet, preset
    from align3r.train import ConfLoss, parameter_groups, select_trainable, symmetrize_batch

    device = torch.device(args.device)
    width, height = args.size
    amp = AMP[args.amp or ("bf16" if device.type == "cuda" else "none")]
    with torch.device("meta"):  # the static memory needs no real tensors
        shapes = Align3RNet(preset(args.preset).for_training())
    select_trainable(shapes)
    print(f"{args.preset}: {_memory_breakdown(shapes)}")
    if args.steps < 1:
        return
    torch.manual_seed(0)
    net = Align3RNet(preset(args.preset).for_training()).to(device)
    select_trainable(net)
    optimizer = torch.optim.AdamW(parameter_groups(net, 0.05), lr=1e-5, betas=(0.9, 0.95))
    criterion = ConfLoss(alpha=0.2)
    view1, view2 = symmetrize_batch(*_batch(args.batch_size, height, width, device))
    reset_peak_memory(device)

    def step() -> float:
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            pred1, pred2 = net(view1, view2, symmetrized=True)
        loss, _ = criterion(view1, view2, pred1, pred2)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    for _ in range(args.warmup):
        step()
    times = []
    for _ in range(args.steps):
        synchronize(device)
        t0 = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - t0)
    seconds = statistics.median(times)
    peak = peak_memory(device)
    print(f"\ntraining step, {args.preset}, {width}x{height}, batch {args.batch_size} pairs "
          f"({2 * args.batch_size} after symmetrisation), autocast {args.amp or ('bf16' if amp else 'none')}, "
          f"median of {args.steps} after {args.warmup} warm-up\n")
    print("| s/step | pairs/s | forward pairs/s | peak memory |")
    print("|---:|---:|---:|---|")
    print(f"| {seconds:.3f} | {args.batch_size / seconds:.2f} | {2 * args.batch_size / seconds:.2f} | {peak} |")


def bench_data(args: argparse.Namespace) -> None:
    from PIL import Image

    from align3r.data import ProcessedPairs
    from align3r.data.io import FramePaths, write_mask, write_metadata, write_pfm

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "seq"
        folder.mkdir()
        k = np.array([[600.0, 0, 341], [0, 600.0, 192], [0, 0, 1]])
        for i in range(6):
            paths = FramePaths.of(folder, f"{i:04d}")
            Image.fromarray(rng.integers(0, 256, (384, 682, 3), dtype=np.uint8)).save(paths.rgb)
            depth = rng.uniform(1, 20, (384, 682)).astype(np.float32)
            write_pfm(paths.depth, depth)
            write_mask(paths.mask, depth < 400)
            write_metadata(paths.metadata, k, np.eye(4))
            np.savez(paths.prior("depthpro"), depth=depth, focallength_px=np.float32(600))
        ds = ProcessedPairs(Path(tmp), resolution=[(512, 288), (512, 336), (512, 256)], aug_crop=16, aug_focal=True,
                            color_jitter=True)
        n = args.data_pairs
        t0 = time.perf_counter()
        for i in range(n):
            ds.get_pair(i % len(ds), i % 3, np.random.default_rng(i))
        seconds = (time.perf_counter() - t0) / n
    print(f"\ndata pipeline, one worker, 682x384 processed frames → 512x(288|336|256), paper augmentations, "
          f"{n} pairs, torch threads {torch.get_num_threads()}\n")
    print("| ms/pair | pairs/s per worker |")
    print("|---:|---:|")
    print(f"| {seconds * 1e3:.1f} | {1 / seconds:.1f} |")


def run(args: argparse.Namespace) -> int:
    device = resolve(args.device)
    args.device = str(device)
    if args.skip_steps and not args.data:
        raise InputError("--skip-steps leaves nothing to measure: add --data (the data-pipeline timing)")
    print(f"machine: {machine_description(device)}\n")
    if not args.skip_steps:
        bench_steps(args)
    if args.data:
        bench_data(args)
    return 0

"""``align3r bench model``: forward speed and memory of the network, FLOPs, checkpoint load time.

Random weights (no download). Prints Markdown tables and the machine; asserts nothing.
"""

from __future__ import annotations

import argparse
import argparse as _argparse
import tempfile
import time
from pathlib import Path

import torch

from align3r.bench._common import (
    int_list,
    machine_description,
    nonneg_int,
    peak_memory,
    positive_int,
    reset_peak_memory,
    resolve,
    size_arg,
    synchronize,
    time_call,
)
from align3r.errors import InputError

HELP = "network pairs/s and peak memory per batch size, encoder share (FLOPs), checkpoint load time"
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA if available)")
    parser.add_argument("--dtype", choices=sorted(DTYPES), default="fp32",
                        help="autocast dtype of the transformer (heads always fp32)")
    parser.add_argument("--batch-sizes", type=int_list, default="1,2,4,8,16",
                        help="pairs per forward call, comma-separated")
    parser.add_argument("--size", type=size_arg, default="512x288",
                        help="WIDTHxHEIGHT of both views (multiples of 16)")
    parser.add_argument("--preset", default="align3r-512-dpt", help="network preset (e.g. tiny for a dry run)")
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed calls per batch size (median reported)")
    parser.add_argument("--warmup", type=nonneg_int, default=1, help="untimed calls per batch size first")
    parser.add_argument("--flops", action="store_true", help="count FLOPs per pair / per frame (meta device)")
    parser.add_argument("--split", action="store_true",
                        help="also time encode_frames and decode_pairs separately at the largest batch size "
                             "that fitted in memory")
    parser.add_argument("--load", action="store_true",
                        help="time load_model on a random checkpoint written to a temporary folder")
    parser.add_argument("--skip-forward", action="store_true", help="only --flops / --load")


def _views(batch: int, height: int, width: int, device: torch.device, with_prior: bool) -> tuple[dict, dict]:
    def view() -> dict:
        v = {"img": torch.rand(batch, 3, height, width, device=device) * 2 - 1,
             "true_shape": torch.tensor([[height, width]] * batch, device=device)}
        if with_prior:
            v["prior_pts3d"] = torch.rand(batch, height, width, 3, device=device)
        return v

    return view(), view()


def _autocast(device: torch.device, dtype: torch.dtype | None):
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _size(size: tuple[int, int]) -> tuple[int, int]:
    """``--size`` (width, height) → (height, width)."""
    width, height = size
    return height, width


def _flop_unit(largest: float) -> tuple[str, float]:
    """A unit in which ``largest`` FLOPs reads as at least 1 (TFLOP for the full network)."""
    for name, scale in (("TFLOP", 1e12), ("GFLOP", 1e9), ("MFLOP", 1e6), ("kFLOP", 1e3)):
        if largest >= scale:
            return name, scale
    return "FLOP", 1.0


def bench_forward(args: argparse.Namespace, net, device: torch.device) -> None:
    height, width = _size(args.size)
    dtype = DTYPES[args.dtype]
    print(f"\nforward `net(view1, view2)`, {width}x{height}, autocast {args.dtype}, preset {args.preset}\n")
    print("| pairs/call | ms/call | pairs/s | peak memory |")
    print("|---:|---:|---:|---|")
    fitted = []
    for batch in args.batch_sizes:
        v1, v2 = _views(batch, height, width, device, net.config.with_prior)
        reset_peak_memory(device)

        def call(v1=v1, v2=v2):
            with torch.no_grad(), _autocast(device, dtype):
                return net(v1, v2)

        try:
            seconds = time_call(call, device, warmup=args.warmup, repeat=args.repeat)
        except torch.OutOfMemoryError:
            print(f"| {batch} | out of memory | | |")
            continue
        fitted.append(batch)
        print(f"| {batch} | {seconds * 1e3:.1f} | {batch / seconds:.2f} | {peak_memory(device)} |", flush=True)
    if args.split and fitted:
        bench_split(args, net, device, max(fitted), height, width, dtype)


def bench_split(args, net, device, batch, height, width, dtype) -> None:
    """Time the per-frame half and the per-pair half separately at one batch size."""
    v1, v2 = _views(batch, height, width, device, net.config.with_prior)
    img = torch.cat((v1["img"], v2["img"]))
    prior = torch.cat((v1["prior_pts3d"], v2["prior_pts3d"])) if net.config.with_prior else None
    with torch.no_grad(), _autocast(device, dtype):
        frames = net.encode_frames(img, None, prior)
        f1, f2 = frames.split(batch)

        def encode():
            return net.encode_frames(img, None, prior)

        def decode():
            return net.decode_pairs(f1, f2)

        t_enc = time_call(encode, device, warmup=args.warmup, repeat=args.repeat)
        t_dec = time_call(decode, device, warmup=args.warmup, repeat=args.repeat)
    frac = t_enc / (t_enc + t_dec)
    per_frame, per_pair = t_enc / (2 * batch), t_dec / batch
    cached = per_pair + per_frame / 4.5  # graph with 4.5 edges per frame: each frame encoded once
    print(f"\nsplit at {batch} pairs: encode_frames {t_enc * 1e3:.1f} ms for {2 * batch} frames "
          f"({per_frame * 1e3:.1f} ms/frame), decode_pairs {t_dec * 1e3:.1f} ms ({per_pair * 1e3:.1f} ms/pair); "
          f"per-frame half = {100 * frac:.1f} % of a pair forward. Encoding each frame once at 4.5 edges/frame: "
          f"{cached * 1e3:.1f} ms/edge vs {(per_pair + 2 * per_frame) * 1e3:.1f} ms/edge "
          f"({(per_pair + 2 * per_frame) / cached:.2f}x).")


def bench_flops(args: argparse.Namespace, config) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from align3r.model import Align3RNet

    height, width = _size(args.size)
    with torch.device("meta"):
        net = Align3RNet(config).eval()
        v1, v2 = _views(1, height, width, torch.device("meta"), config.with_prior)
        img = torch.cat((v1["img"], v2["img"]))
        prior = torch.cat((v1["prior_pts3d"], v2["prior_pts3d"])) if config.with_prior else None
        with torch.no_grad():
            with FlopCounterMode(display=False) as total:
                net(v1, v2)
            with FlopCounterMode(display=False) as enc_img:
                net.encode_images(img[:1])
            with FlopCounterMode(display=False) as enc_frame:
                frames = net.encode_frames(img, None, prior)
            with FlopCounterMode(display=False) as dec:
                f1, f2 = frames.split(1)
                net.decode_pairs(f1, f2)
    unit, tf = _flop_unit(total.get_total_flops())
    pair, frame, image, decode = (total.get_total_flops() / tf, enc_frame.get_total_flops() / 2 / tf,
                                  enc_img.get_total_flops() / tf, dec.get_total_flops() / tf)
    edges_per_frame = 4.5
    cached = decode + frame / edges_per_frame
    print(f"\nFLOPs at {width}x{height} ({args.preset}), 1 FLOP = 1 multiply or add:\n")
    print(f"| part | {unit} |")
    print("|---|---:|")
    print(f"| full pair forward | {pair:.3f} |")
    print(f"| image encoder, per frame | {image:.3f} |")
    print(f"| per-frame half (encoder + decoder_embed + prior branch), per frame | {frame:.3f} |")
    print(f"| per-pair half (decoders + heads), per pair | {decode:.3f} |")
    print(f"| per edge, each frame encoded once, {edges_per_frame} edges/frame | {cached:.3f} |")
    print(f"\nper-frame half = {100 * 2 * frame / pair:.1f} % of a pair forward; encoding once per frame "
          f"saves {100 * (1 - cached / pair):.1f} % of the FLOPs ({pair / cached:.2f}x fewer).")


def bench_load(args: argparse.Namespace, config) -> None:
    from align3r.model import Align3RNet, load_model
    from align3r.model.official_args import official_args_from_config

    with tempfile.TemporaryDirectory(prefix="align3r-bench-") as tmp:
        net = Align3RNet(config)
        ours = net.save_pretrained(Path(tmp) / "ours")
        pth = Path(tmp) / "official.pth"
        torch.save({"args": _argparse.Namespace(model=official_args_from_config(config)), "model": net.state_dict()},
                   pth)
        size_gb = pth.stat().st_size / 1e9
        del net
        print(f"\ncheckpoint load time, {args.preset} ({size_gb:.2f} GB), to {args.device}:\n")
        print("| format | seconds |")
        print("|---|---:|")
        for label, path in (("official .pth (weights_only)", pth), ("ours (safetensors)", ours)):
            t0 = time.perf_counter()
            loaded = load_model(path, device=args.device)
            synchronize(args.device)
            print(f"| {label} | {time.perf_counter() - t0:.2f} |", flush=True)
            del loaded


def run(args: argparse.Namespace) -> int:
    from align3r.model import Align3RNet, preset

    device = resolve(args.device)
    args.device = str(device)
    if args.skip_forward and not (args.flops or args.load):
        raise InputError("--skip-forward leaves nothing to measure: add --flops and/or --load")
    config = preset(args.preset)
    print(f"machine: {machine_description(device)}")
    if args.flops:
        bench_flops(args, config)
    if not args.skip_forward:
        net = Align3RNet(config).to(device).eval()
        bench_forward(args, net, device)
        del net
    if args.load:
        bench_load(args, config)
    return 0

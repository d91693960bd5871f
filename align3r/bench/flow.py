"""``align3r bench flow``: optical-flow throughput (image pairs per second) and peak memory.

RAFT runs with random weights (the cost does not depend on the weights, and no download is
needed); DIS needs none. Each run computes both directions of ``--pairs / 2`` edges through
:func:`align3r.flow.compute_pair_flow`, forward-backward validity included.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from align3r.bench._common import (
    machine_description,
    peak_memory,
    positive_int,
    reset_peak_memory,
    resolve,
    synchronize,
    time_call,
)
from align3r.errors import InputError
from align3r.flow import compute_pair_flow, load_flow_backend
from align3r.flow.padding import CentredPadding
from align3r.flow.raft import RAFT_MIN_SIZE, RaftBackend

HELP = "optical flow: pairs/s and peak memory for DIS and RAFT large/small (random weights)"
BACKENDS = ("dis", "raft-small", "raft-large")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=(*BACKENDS, "all"), default="all", help="which flow backend(s) to time")
    parser.add_argument("--device", default="cpu", help="where RAFT runs: cpu, cuda, cuda:N or auto "
                        "(DIS always uses the CPU)")
    parser.add_argument("--batch-size", type=positive_int, default=4, help="image pairs per backend call")
    parser.add_argument("--iters", type=positive_int, default=20, help="RAFT refinement iterations (reference: 20)")
    parser.add_argument("--pairs", type=positive_int, default=4, help="directed image pairs per timed run")
    parser.add_argument("--height", type=positive_int, default=288, help="frame height (px)")
    parser.add_argument("--width", type=positive_int, default=512, help="frame width (px)")
    parser.add_argument("--repeat", type=positive_int, default=3, help="timed runs (median reported)")
    parser.add_argument("--dis-preset", default="medium", choices=("ultrafast", "fast", "medium"),
                        help="OpenCV DIS preset")
    parser.add_argument("--frames", type=Path, default=None,
                        help="folder of images to use instead of a synthetic moving texture")
    parser.add_argument("--compare-torchvision", action="store_true",
                        help="also time torchvision's RAFT.forward (upsamples every iteration)")
    parser.add_argument("--accuracy-image", type=Path, default=None,
                        help="also print DIS end-point errors on known translations of this image")


def _synthetic_frames(n: int, height: int, width: int) -> np.ndarray:
    """(n, H, W, 3) uint8: a smooth random texture moving 3 px right and 1 px down per frame."""
    g = torch.Generator().manual_seed(0)
    big = F.interpolate(torch.rand(1, 3, height // 8 + 8, width // 8 + 8, generator=g),
                        size=(height + 3 * n, width + 3 * n), mode="bicubic", align_corners=False)
    frames = [big[0, :, n - k:n - k + height, 3 * (n - k):3 * (n - k) + width] for k in range(n)]
    return (torch.stack(frames).clamp(0, 1).permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy()


def _folder_frames(folder: Path, n: int, height: int, width: int) -> np.ndarray:
    if not folder.is_dir():
        raise InputError(f"--frames {folder}: not a folder")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:n]
    if len(files) < n:
        raise InputError(f"--frames {folder} has {len(files)} images, {n} needed")
    return np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), (width, height),
                                interpolation=cv2.INTER_AREA) for f in files])


class _TorchvisionForward(RaftBackend):
    """RAFT through torchvision's own forward (every iteration upsampled), for comparison only."""

    @torch.no_grad()
    def __call__(self, source, target):
        h, w = source.shape[-2:]
        padding = CentredPadding.for_size(h, w, multiple=8, min_size=RAFT_MIN_SIZE)
        flows = self.model(padding.pad(source.to(self.device)), padding.pad(target.to(self.device)),
                           num_flow_updates=self.num_flow_updates)
        return padding.crop(flows[-1])


def _backend(name: str, args: argparse.Namespace):
    if name == "dis":
        return load_flow_backend("dis", preset=args.dis_preset)
    torch.manual_seed(0)
    variant = name.removesuffix(" (torchvision forward)")
    backend = load_flow_backend(variant, weights=None, num_flow_updates=args.iters, device=args.device)
    if name.endswith("(torchvision forward)"):
        return _TorchvisionForward(backend.model, name=name, num_flow_updates=args.iters, device=args.device)
    return backend


# Small windows, so that 4x area-downsampled shifted crops still fit inside an 854x480 frame.
_ACCURACY_SIZE = (96, 128)
# (dx, dy) window shifts in full-resolution pixels, and the area-downsampling factor.
_KNOWN_SHIFTS = ((5, -3, 1), (12, 0, 1), (1, 3, 4), (6, 2, 4), (-3, 5, 4), (8, -4, 4))


def _print_accuracy(image_path: Path, height: int, width: int) -> None:
    """DIS end-point error on exact translations of a real image (area-downsampled shifted windows).

    Shifting the crop window by (dx, dy) px and area-downsampling by ``f`` translates the
    box-filtered image by exactly (dx, dy) / f px, so the true flow is -(dx, dy) / f everywhere.
    """
    image = _read_rgb(image_path)
    print(f"\nDIS accuracy on {image_path.name}, {width}x{height} windows, 8 px border excluded "
          "(mean / 95th percentile end-point error in px, both directions pooled)\n")
    print("| shift (px) | " + " | ".join(_DIS_PRESETS) + " |")
    print("|---|" + "---|" * len(_DIS_PRESETS))
    for dx, dy, f in _KNOWN_SHIFTS:
        if (height + abs(dy)) * f + 40 > image.shape[0] or (width + abs(dx)) * f + 40 > image.shape[1]:
            continue
        windows = [image[40 + oy:40 + oy + height * f, 40 + ox:40 + ox + width * f] for ox, oy in ((0, 0), (dx, dy))]
        frames = np.stack([cv2.resize(w, (width, height), interpolation=cv2.INTER_AREA) for w in windows])
        truth = torch.tensor([-dx / f, -dy / f]).view(1, 2, 1, 1)
        cells = []
        for preset in _DIS_PRESETS:
            flow = compute_pair_flow(frames, [(0, 1)], backend="dis", preset=preset, progress=False)
            err = torch.cat([flow.flow_ij - truth, flow.flow_ji + truth])[..., 8:-8, 8:-8]
            epe = torch.linalg.vector_norm(err, dim=1).flatten()
            cells.append(f"{float(epe.mean()):.3f} / {float(epe.quantile(0.95)):.3f}")
        print(f"| ({-dx / f:+.2f}, {-dy / f:+.2f}) | " + " | ".join(cells) + " |")


_DIS_PRESETS = ("ultrafast", "fast", "medium")


def _read_rgb(path: Path) -> np.ndarray:
    """The image at ``path`` as RGB, or ``InputError`` if it is missing or unreadable."""
    image = cv2.imread(str(path)) if Path(path).is_file() else None
    if image is None:
        raise InputError(f"--accuracy-image {path}: not a readable image file")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def run(args: argparse.Namespace) -> int:
    device = resolve(args.device)
    args.device = str(device)
    if args.accuracy_image is not None:
        _read_rgb(args.accuracy_image)  # fail before the benchmark, not after it
    num_edges = max(1, math.ceil(args.pairs / 2))
    frames = (_folder_frames(args.frames, num_edges + 1, args.height, args.width) if args.frames
              else _synthetic_frames(num_edges + 1, args.height, args.width))
    edges = torch.tensor([(k, k + 1) for k in range(num_edges)])
    names = list(BACKENDS) if args.backend == "all" else [args.backend]
    if args.compare_torchvision:
        names += [f"{n} (torchvision forward)" for n in names if n.startswith("raft")]

    print(f"machine: {machine_description(device)}")
    print(f"{2 * num_edges} directed pairs of {args.width}x{args.height}, batch {args.batch_size}, "
          f"RAFT {args.iters} iterations, DIS preset {args.dis_preset}, median of {args.repeat}\n")
    print("| backend | device | s / pair | pairs / s | peak memory |")
    print("|---|---|---|---|---|")
    for name in names:
        backend = _backend(name, args)
        out_device = device if name != "dis" else torch.device("cpu")
        reset_peak_memory(out_device)

        def once(backend=backend, out_device=out_device):
            return compute_pair_flow(frames, edges, backend=backend, batch_size=args.batch_size,
                                     device=out_device, progress=False)

        seconds = time_call(once, device=out_device, warmup=1, repeat=args.repeat)
        synchronize(out_device)
        memory = peak_memory(out_device)
        pairs = 2 * num_edges
        print(f"| {name} | {out_device} | {seconds / pairs:.3f} | {pairs / seconds:.2f} | {memory} |")
    if args.accuracy_image is not None:
        _print_accuracy(args.accuracy_image, *_ACCURACY_SIZE)
    return 0

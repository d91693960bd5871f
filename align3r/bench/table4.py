"""``align3r bench table4``: the supplementary's Table 4 (pairs and minutes for a 30-frame video)
beside our pair counts and measured times, on this machine, with the machine named.

Each row of ``configs/experiment/supp_t4`` runs ``align3r infer``'s pipeline end to end on the
sample clip with its graph (random weights, as ``align3r bench e2e``: ``--scale tiny`` on CPU,
``--scale full`` for the released architectures' real cost). The printed setting says what was
measured: a tiny network or a small ``--size`` is not the paper's setting, and its minutes are
not comparable to the published ones.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from align3r.bench._common import machine_description, positive_int, resolve
from align3r.bench.e2e import SAMPLE, build

HELP = "supp. Table 4: pairs and minutes per 30-frame video, ours beside published, machine named"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--scale", choices=("tiny", "full"), default="tiny",
                        help="tiny: small random networks (CPU-friendly); full: the released architectures")
    parser.add_argument("--source", default=str(SAMPLE), help="video or folder (the sample clip)")
    parser.add_argument("--frames", type=positive_int, default=30, help="frames (the table's setting: 30)")
    parser.add_argument("--size", type=positive_int, default=512, help="network size (the paper's: 512)")
    parser.add_argument("--iters", type=positive_int, default=None, help="alignment iterations (None: the preset's)")
    parser.add_argument("--rows", default=None, help="comma-separated rows of supp_t4 (default: all)")
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (CUDA if available)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars on stderr")


def run(args: argparse.Namespace) -> int:
    from align3r.errors import InputError
    from align3r.eval.report import Table4Row, table4_published, table4_report
    from align3r.pipeline import PipelineConfig, run_pipeline

    device = resolve(args.device)
    rows = table4_published()
    if args.rows:
        wanted = [r.strip() for r in args.rows.split(",") if r.strip()]
        unknown = sorted(set(wanted) - {r["row"] for r in rows})
        if unknown:
            raise InputError(f"--rows: supp_t4 has no row(s) {unknown}; rows: {', '.join(r['row'] for r in rows)}")
        rows = [r for r in rows if r["row"] in wanted]
    overrides = {"iterations": args.iters} if args.iters else {}
    net, prior = build(args.scale, device, progress=not args.quiet)
    measured = []
    for row in rows:
        # flow off, as the eval table's rows (the 138-pair graph predicts one direction per pair)
        config = PipelineConfig(model="(random)", max_frames=args.frames, size=args.size, graph=row["graph"],
                                flow="none", flow_weights=None, align="paper", align_overrides=overrides,
                                device=str(device), cache_dir="none", progress=not args.quiet)
        t0 = time.perf_counter()
        result = run_pipeline(args.source, out=None, config=config, net=net, prior_source=prior)
        seconds = time.perf_counter() - t0
        frames = result.reconstruction.num_frames
        measured.append(Table4Row(row["label"], row["graph"], result.num_pairs, row["published_pairs"], seconds,
                                  row["published_minutes"]))
    network = ("tiny random Align3R and Depth Pro (not the released networks)" if args.scale == "tiny"
               else "the released architectures with random weights")
    iters = f"{args.iters} alignment iterations" if args.iters else "the preset's alignment iterations"
    setting = (f"{network}, {frames} frames of {Path(args.source).name} at network size {args.size}, {iters}, "
               "flow off; " + ("the paper's setting but for the weights" if args.scale == "full" and args.size == 512
                               and not args.iters and frames == 30 else
                               "NOT the paper's setting: the minutes are not comparable to the published ones"))
    print(table4_report(measured, machine_description(device), setting), end="")
    return 0

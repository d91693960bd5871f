"""``align3r convert SOURCE OUTDIR``: official checkpoint -> config.json + model.safetensors."""

from __future__ import annotations

import argparse

HELP = "convert an official .pth checkpoint to config.json + model.safetensors"
DESCRIPTION = """Convert an official checkpoint (.pth with 'args' and 'model', an official Hub folder, a
released name or a Hub repo id) into align3r's format: OUTDIR/config.json + OUTDIR/model.safetensors.
Every key is checked against the declared architecture; the .pth is unpickled safely
(weights_only, argparse.Namespace as the only allowed object). Load the result with
align3r.load_model(OUTDIR).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="official .pth, checkpoint folder, released name or Hub repo id")
    parser.add_argument("outdir", help="output folder (created)")


def run(args: argparse.Namespace) -> int:
    from align3r.model.checkpoints.convert import convert_checkpoint
    from align3r.model.config import describe

    loaded = convert_checkpoint(args.source, args.outdir)
    print(f"wrote {args.outdir}/config.json and model.safetensors: {describe(loaded.config)}, "
          f"{len(loaded.state_dict)} tensors (from {loaded.kind} {loaded.path})")
    return 0

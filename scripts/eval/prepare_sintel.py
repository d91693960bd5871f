"""Check the Sintel layout and make the ground-truth dynamic labels (dynamic_label_perfect).

    python scripts/eval/prepare_sintel.py --root data/MPI-Sintel [--flow-dir DIR] [--threshold 0.1]

Needs the training depth/cameras (MPI-Sintel-depth-training-20150305.zip); the labels also need the
flow (MPI-Sintel-training_extras.zip), without which they are skipped with a warning (the evaluation
does not use them). See docs/reproducing.md for the layout.
"""

from __future__ import annotations

import argparse
import logging

from _cli import run_main


def main() -> int:
    from align3r.eval.datasets.sintel import sintel_sequences
    from align3r.eval.prepare.sintel import DYNAMIC_FLOW_THRESHOLD, prepare_sintel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="Sintel root (paper-era or merged layout)")
    parser.add_argument("--pass-name", choices=("final", "clean"), default="final")
    parser.add_argument("--flow-dir", help="the training/flow folder, when not beside the pass folder")
    parser.add_argument("--threshold", type=float, default=DYNAMIC_FLOW_THRESHOLD,
                        help="flow error (pixels) above which a pixel is dynamic")
    parser.add_argument("--overwrite", action="store_true", help="recompute existing labels")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    written = prepare_sintel(args.root, pass_name=args.pass_name, threshold=args.threshold,
                             flow_dir=args.flow_dir, overwrite=args.overwrite)
    print(f"dynamic labels: {sum(written.values())} written for {len(written)} sequence(s)")
    sequences = sintel_sequences(args.root, pass_name=args.pass_name)
    print(f"layout OK: {len(sequences)} sequences, {sum(len(s) for s in sequences)} frames "
          f"({args.pass_name} pass)")
    return 0


if __name__ == "__main__":
    run_main(main)

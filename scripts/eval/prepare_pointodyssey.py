"""PointOdyssey raw download -> the processed layout (PointOdyssey_proc/<split>/<seq>/).

    python scripts/eval/prepare_pointodyssey.py --raw data/PointOdyssey --out data/PointOdyssey_proc \
        [--split val] [--max-frames 110]

The depth benchmark reads the first 110 frames of each val sequence; --max-frames 110 processes
only those (the official script processes all).
"""

from __future__ import annotations

import argparse

from _cli import run_main


def main() -> int:
    from align3r.eval.prepare.processed import prepare_pointodyssey

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", required=True, help="folder holding train/ val/ of the download")
    parser.add_argument("--out", required=True, help="output root (PointOdyssey_proc)")
    parser.add_argument("--split", default="val")
    parser.add_argument("--sequences", nargs="+", help="sequence names (default: all)")
    parser.add_argument("--max-frames", type=int, help="frames per sequence (default: all)")
    args = parser.parse_args()
    written = prepare_pointodyssey(args.raw, args.out, split=args.split, sequences=args.sequences,
                                   max_frames=args.max_frames, progress=True)
    print(f"processed {written} new frame(s) into {args.out}/{args.split}")
    return 0


if __name__ == "__main__":
    run_main(main)

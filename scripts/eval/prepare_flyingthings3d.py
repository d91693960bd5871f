"""FlyingThings3D raw download -> the processed layout (FlyingThings3D_proc/<split>/{A,B,C}/<seq>/{left,right}).

    python scripts/eval/prepare_flyingthings3d.py --raw data/SceneFlow/FlyingThings3D \
        --out data/SceneFlow/FlyingThings3D_proc [--split TEST]

--raw holds frames_finalpass/, disparity/ and camera_data/ as extracted from the official archives.
"""

from __future__ import annotations

import argparse

from _cli import run_main


def main() -> int:
    from align3r.eval.prepare.processed import prepare_flyingthings3d

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raw", required=True, help="folder holding frames_finalpass/, disparity/, camera_data/")
    parser.add_argument("--out", required=True, help="output root (FlyingThings3D_proc)")
    parser.add_argument("--split", default="TEST", choices=("TEST", "TRAIN"))
    args = parser.parse_args()
    written = prepare_flyingthings3d(args.raw, args.out, split=args.split, progress=True)
    print(f"processed {written} new frame(s) into {args.out}/{args.split}")
    return 0


if __name__ == "__main__":
    run_main(main)

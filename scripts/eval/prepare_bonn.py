"""Make the Bonn RGB-D Dynamic evaluation subsets (rgb_110, depth_110, groundtruth_110.txt).

    python scripts/eval/prepare_bonn.py --root data/bonn/rgbd_bonn_dataset [--all] [--mode symlink]

Frames [30:140] of each sequence, as the official preprocessing (docs/reproducing.md).
"""

from __future__ import annotations

import argparse

from _cli import run_main


def main() -> int:
    from align3r.eval.prepare.subsets import LINK_MODES, prepare_bonn

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="the unzipped rgbd_bonn_dataset folder (or its parent)")
    parser.add_argument("--all", action="store_true", help="every sequence, not only the paper's five")
    parser.add_argument("--sequences", nargs="+", help="short names, e.g. balloon2 crowd2")
    parser.add_argument("--mode", choices=LINK_MODES, default="copy", help="copy (official) or link the frames")
    args = parser.parse_args()
    names = prepare_bonn(args.root, "all" if args.all else args.sequences, mode=args.mode)
    print(f"prepared {len(names)} Bonn sequence(s): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    run_main(main)

"""Make the TUM RGB-D dynamics evaluation subsets (rgb_50, depth_50, groundtruth_50.txt).

    python scripts/eval/prepare_tum.py --root data/tum [--mode symlink]

Frames [30:80] of every rgbd_dataset_* folder under --root, as the official preprocessing.
"""

from __future__ import annotations

import argparse

from _cli import run_main


def main() -> int:
    from align3r.eval.prepare.subsets import LINK_MODES, prepare_tum

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--root", required=True, help="folder holding the extracted rgbd_dataset_freiburg3_* folders")
    parser.add_argument("--sequences", nargs="+", help="folder names (default: all)")
    parser.add_argument("--mode", choices=LINK_MODES, default="copy", help="copy (official) or link the frames")
    args = parser.parse_args()
    names = prepare_tum(args.root, args.sequences, mode=args.mode)
    print(f"prepared {len(names)} TUM sequence(s): {', '.join(names)}")
    return 0


if __name__ == "__main__":
    run_main(main)

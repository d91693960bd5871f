#!/usr/bin/env python
"""Turn a raw training-set download into align3r's processed layout (see docs/training.md).

    python scripts/train/prepare.py pointodyssey   data/PointOdyssey          data/PointOdyssey_proc
    python scripts/train/prepare.py flyingthings3d data/SceneFlow/FlyingThings3D data/SceneFlow/FlyingThings3D_proc
    python scripts/train/prepare.py driving        data/SceneFlow/Driving     data/SceneFlow/Driving_proc
    python scripts/train/prepare.py monkaa         data/SceneFlow/Monkaa      data/SceneFlow/Monkaa_proc
    python scripts/train/prepare.py tartanair      data/Tartanair             data/Tartanair_proc
    python scripts/train/prepare.py spring         data/spring                data/spring_proc
    python scripts/train/prepare.py vkitti2        data/vkitti_2.0.3          data/vkitti_2.0.3_proc

Frames already prepared are skipped, so an interrupted run is resumed by running it again.
Then compute the depth priors: ``align3r prior --dataset <processed folder>``.
"""

from __future__ import annotations

import argparse
import sys

from align3r.data.prepare import common, flyingthings3d, pointodyssey, sceneflow, spring, tartanair, vkitti2
from align3r.errors import Align3RError

#: The raw layout each reader expects under the raw root (docs/training.md §1).
LAYOUTS = {
    "pointodyssey": "{train,val}/<seq>/rgbs/*.jpg, depths/*.png and anno.npz",
    "flyingthings3d": "frames_finalpass/{TRAIN,TEST}/{A,B,C}/<seq>/{left,right}/*.png, disparity/... and "
                      "camera_data/.../camera_data.txt",
    "driving": "frames_finalpass/{15mm,35mm}_focallength/<dir>/<speed>/<cam>, disparity/... and camera_data/...",
    "monkaa": "frames_finalpass/<scene>/<cam>, disparity/... and camera_data/...",
    "tartanair": "<env>/Easy/<Pxxx>/image_left/*.png, depth_left/*.npy and pose_left.txt",
    "spring": "train/<seq>/frame_left/*.png, disp1_left/*.dsp5 and cam_data/{intrinsics,extrinsics}.txt",
    "vkitti2": "vkitti_2.0.3_rgb/..., vkitti_2.0.3_depth/... and vkitti_2.0.3_textgt/...",
}

SOURCES = {
    "pointodyssey": lambda raw: pointodyssey.raw_sequences(raw),
    "flyingthings3d": lambda raw: flyingthings3d.raw_sequences(raw),
    "driving": lambda raw: sceneflow.driving_sequences(raw),
    "monkaa": lambda raw: sceneflow.monkaa_sequences(raw),
    "tartanair": lambda raw: tartanair.raw_sequences(raw),
    "spring": lambda raw: spring.raw_sequences(raw),
    "vkitti2": lambda raw: vkitti2.raw_sequences(raw),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dataset", choices=sorted(SOURCES))
    parser.add_argument("raw_root", help="the raw download's root folder")
    parser.add_argument("out_root", help="where the processed layout is written")
    parser.add_argument("--overwrite", action="store_true", help="re-process frames that are already complete")
    args = parser.parse_args(argv)
    try:
        report = common.prepare(SOURCES[args.dataset](args.raw_root), args.out_root, overwrite=args.overwrite,
                                dataset=args.dataset, raw_root=args.raw_root, layout=LAYOUTS[args.dataset])
    except Align3RError as exc:
        print(f"prepare {args.dataset}: error: {exc}", file=sys.stderr)
        return 2
    print(report.summary(args.out_root))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``align3r export DIR --format ...``: (re)write output formats from a saved reconstruction."""

from __future__ import annotations

import argparse

HELP = "(re)write output formats (ply, glb, colmap, nerfstudio, rerun, ...) of a reconstruction directory"
DESCRIPTION = """(Re)write output formats from a reconstruction saved by `align3r infer`, e.g. after
changing the point-cloud confidence threshold, or to add a format that was skipped.

The directory is updated atomically: if anything fails (full disk, ...), it is left as it was.
With --out, the result goes to a new directory (a copy with the new formats) instead.

formats: depth_png depth_preview confidence_png original_depth ply glb colmap colmap_bin nerfstudio
rerun video, or all (every format but rerun, which needs pip install "align3r[rerun]" and is
written only when named: --format all rerun)

examples:
  align3r export outputs/lady-running --format colmap
  align3r export outputs/lady-running --format ply glb --min-conf 1.5
  align3r export outputs/lady-running --format nerfstudio rerun
  align3r export outputs/lady-running --format all --out outputs/lady-running-v2"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from align3r.export.writer import FORMATS

    parser.add_argument("directory", help="output directory of `align3r infer`")
    parser.add_argument("--format", dest="formats", nargs="+", required=True, choices=[*FORMATS, "all"],
                        metavar="FORMAT", help="formats to write: " + ", ".join(FORMATS) + ", or all (all but rerun)")
    parser.add_argument("--out", default=None, help="write to this new directory instead of updating DIRECTORY")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists (an align3r output)")
    parser.add_argument("--min-conf", type=float, default=None, help="confidence threshold for point clouds (3)")
    parser.add_argument("--voxel-size", type=float, default=None,
                        help="voxel of the fused static cloud (default: one pixel at the median depth)")
    parser.add_argument("--fps", type=float, default=None, help="preview video frame rate")


def run(args: argparse.Namespace) -> int:
    from align3r.export.writer import ExportOptions, export_formats

    defaults = ExportOptions()
    options = ExportOptions(min_conf=defaults.min_conf if args.min_conf is None else args.min_conf,
                            voxel_size=args.voxel_size, video_fps=args.fps)
    out = export_formats(args.directory, args.formats, out_dir=args.out, overwrite=args.overwrite, options=options)
    print(out)
    return 0

"""``align3r infer SOURCE --out DIR [key=value ...]``: the whole pipeline on a video or folder."""

from __future__ import annotations

import argparse
import logging
import sys

HELP = "video or image folder -> depth, poses, intrinsics, masks, point clouds"
DESCRIPTION = """\
Reconstruct a video (mp4, mov, avi, webm, mkv) or an image folder: per-frame depth, camera poses,
intrinsics, confidence and dynamic masks, point clouds, a COLMAP model and a preview video in DIR
(see docs/outputs.md). Settings come from the Hydra config configs/infer.yaml; override any key
as key=value, e.g.

  align3r infer clip.mp4 --out out/clip
  align3r infer frames/ --out out/f model=align3r-depthanything graph=swinstride-5-noncyclic
  align3r infer clip.mp4 --out out/c max_frames=30 flow=dis align=demo align_settings.iterations=100
  align3r infer clip.mp4 --out out/c --print-config

An interrupted run resumes from its cache (DIR.cache) when started again with the same settings.
"""

EXTRA_ARGS = "overrides"  # key=value overrides may also follow the options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="video file or image folder")
    parser.add_argument("--out", required=True, help="output directory (written atomically)")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value (configs/infer.yaml)")
    parser.add_argument("--config-dir", default=None, help="folder holding infer.yaml (default: the shipped configs)")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def compose(overrides: list[str], config_dir: str | None = None):
    """The infer config with command-line overrides applied (Hydra compose API)."""
    from align3r.commands._hydra import compose_config
    from align3r.configs import config_dir as shipped

    return compose_config(config_dir or shipped(), "infer", overrides, "bad config override")


def pipeline_config(cfg):
    """Hydra config -> ``PipelineConfig`` (align_settings entries that are null are dropped)."""
    from omegaconf import OmegaConf

    from align3r.pipeline import PipelineConfig

    data = OmegaConf.to_container(cfg, resolve=True)
    settings = {k: v for k, v in (data.pop("align_settings") or {}).items() if v is not None}
    intrinsics = data.get("intrinsics")
    if intrinsics is not None:
        from align3r.errors import InputError

        if len(intrinsics) != 4:
            raise InputError(f"intrinsics must be [fx, fy, cx, cy], got {intrinsics}")
        data["intrinsics"] = tuple(float(v) for v in intrinsics)
    return PipelineConfig(**data, align_overrides=settings)


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from align3r.pipeline import run_pipeline

    cfg = compose(args.overrides, args.config_dir)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg))
        return 0
    config = pipeline_config(cfg)
    if args.quiet:
        config = config.replace(progress=False)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    result = run_pipeline(args.source, out=args.out, config=config)
    print(f"align3r infer: {result.summary()}", file=sys.stdout)
    return 0

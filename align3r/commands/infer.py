"""``align3r infer SOURCE... --out DIR [key=value ...]``: the whole pipeline on videos or folders."""

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

Several sources (videos, image folders, globs, folders of videos, .txt lists with one source per
line) go to DIR/<name>/ each, with DIR/summary.json and DIR/summary.csv; the weights are loaded
once; finished sources are skipped when run again, failed ones are recorded (exit status 1) and
redone with --retry-failed. Under torchrun the sources are shared over the processes:

  align3r infer a.mp4 b.mp4 frames/ --out out
  torchrun --nproc_per_node 8 -m align3r.cli infer videos/ --out out

Unknown keys, values of the wrong type and an output directory that may not be written fail at
once, before any work. An interrupted run resumes from its cache (DIR.cache) when started again
with the same settings; the cache is kept after success (keep_cache=false deletes it).
"""

EXTRA_ARGS = "overrides"  # key=value overrides may also follow the options


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", nargs="+", help="video files, image folders, globs, folders of videos or "
                        ".txt lists of sources (one source: outputs in --out itself)")
    parser.add_argument("--out", required=True, help="output directory (written atomically)")
    parser.add_argument("overrides", nargs="*", help="config overrides key=value (configs/infer.yaml)")
    parser.add_argument("--config-dir", default=None, help="folder holding your infer.yaml, searched before the shipped configs")
    parser.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    parser.add_argument("--retry-failed", action="store_true", help="several sources: run again those "
                        "an earlier run recorded as failed (else they are skipped)")


def check_override_keys(overrides: list[str]) -> None:
    """Unknown keys in ``key=value`` / ``+key=value`` overrides raise a one-line ``InputError``
    naming the close matches (Hydra would say "use +key=value", which then fails later)."""
    from align3r.align.config import AlignConfig
    from align3r.pipeline import PipelineConfig
    from align3r.typed_values import check_keys, field_names

    top = [*(k for k in field_names(PipelineConfig) if k != "align_overrides"), "align_settings"]
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~").strip()
        if not key or any(c in key for c in "@/ "):
            continue  # not a plain key: Hydra explains
        head, _, rest = key.partition(".")
        check_keys([head], top)
        if head == "align_settings" and rest:
            check_keys([rest.split(".")[0]], field_names(AlignConfig), prefix="align_settings.")


def compose(overrides: list[str], config_dir: str | None = None):
    """The infer config with command-line overrides applied (Hydra compose API)."""
    from align3r.commands._hydra import compose_command_config

    check_override_keys(overrides)
    return compose_command_config("infer", overrides, config_dir=config_dir, what="infer config")


def pipeline_config(cfg):
    """Hydra config -> ``PipelineConfig``: every value converted to its field's type (a wrong type
    or an unknown key is a one-line ``InputError`` naming the key, the value and what it takes);
    align_settings entries that are null are dropped (the preset's value stays)."""
    from omegaconf import OmegaConf

    from align3r.align.config import AlignConfig
    from align3r.errors import InputError
    from align3r.pipeline import PipelineConfig
    from align3r.typed_values import check_keys, field_names, show_value, typed_fields

    data = OmegaConf.to_container(cfg, resolve=True)
    settings = data.pop("align_settings", None) or {}
    if not isinstance(settings, dict):
        raise InputError(f"align_settings={show_value(settings)}: expected a mapping of alignment settings "
                         "(align_settings.iterations=100 ...)")
    intrinsics = data.get("intrinsics")
    if isinstance(intrinsics, (list, tuple)) and len(intrinsics) != 4:
        raise InputError(f"intrinsics must be [fx, fy, cx, cy], got {show_value(intrinsics)}")
    check_keys(data, [k for k in field_names(PipelineConfig) if k != "align_overrides"])  # a custom infer.yaml
    fields = typed_fields(PipelineConfig, data)
    overrides = typed_fields(AlignConfig, {k: v for k, v in settings.items() if v is not None},
                             prefix="align_settings.")
    return PipelineConfig(**fields, align_overrides=overrides)


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from align3r.cache import RunCache
    from align3r.commands._logging import quiet_third_party, setup_logging
    from align3r.many import single_source
    from align3r.pipeline import run_pipeline

    cfg = compose(args.overrides, args.config_dir)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg))
        return 0
    config = pipeline_config(cfg)
    if args.quiet:
        config = config.replace(progress=False)
    # warnings on stderr, each once (huggingface_hub prints its own: not repeated by the root handler);
    # --quiet also silences transformers' / the Hub's progress bars
    setup_logging(logging.WARNING, "%(levelname)s %(name)s: %(message)s")
    if single_source(args.source) is None:
        return _run_many(args, config)
    source = args.source[0]
    cache = RunCache.for_run(args.out, config.cache_dir)
    try:
        with quiet_third_party(config.progress):
            result = run_pipeline(source, out=args.out, config=config)
    except KeyboardInterrupt:
        if cache is not None and cache.exists():
            print(f"interrupted; run the same command again to resume from the run cache {cache.root}",
                  file=sys.stderr)
            return 130
        raise
    print(f"align3r infer: {result.summary()}", file=sys.stdout)
    return 0


def _run_many(args: argparse.Namespace, config) -> int:
    """Several sources: each result printed as it finishes; 1 when any source failed or (under
    torchrun, said by rank 0) has no record after the wait."""
    from align3r.commands._logging import quiet_third_party
    from align3r.many import reconstruct_many
    from align3r.many.records import read_summary
    from align3r.sharding import Shard

    failed = 0
    try:
        with quiet_third_party(config.progress):
            for run in reconstruct_many(args.source, out=args.out, config=config, retry_failed=args.retry_failed):
                failed += run.status != "ok"
                state = ("done earlier" if run.status == "ok" else "failed earlier") if run.skipped else run.status
                line = run.result.summary() if run.result is not None else (run.error or "")
                print(f"align3r infer: {run.name}: {state}{': ' + line if line else ''}", file=sys.stdout)
    except KeyboardInterrupt:
        print("interrupted; run the same command again: finished sources are skipped, the interrupted one "
              "resumes from its run cache", file=sys.stderr)
        return 130
    if Shard.from_env().world_size == 1:
        return 1 if failed else 0
    # under torchrun a rank exiting non-zero makes torchrun stop the others: the other ranks exit 0
    # (their failures are in their records) and rank 0 answers for all, from the merged summary
    if Shard.from_env().rank != 0:
        return 0
    summary = read_summary(args.out) or {}
    return 1 if summary.get("failed") or summary.get("missing") else 0

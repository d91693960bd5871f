"""``align3r eval table NAME | depth | pose | list``: reproduce the paper's tables, one command each."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

HELP = "evaluate video depth / camera pose, reproduce the paper's tables"
DESCRIPTION = """\
Reproduce a table of the paper, or evaluate one network on one benchmark, with the official
protocols (configs/eval/protocol/{depth,pose}.yaml). Every sequence's result is saved as JSON
(metrics, exact frame list, prior files, pair graph, alignment settings and mode, timings); a
re-run skips finished sequences. Under torchrun the sequences are shared between the processes
and rank 0 prints the table. Any config key can be overridden as key=value (Hydra syntax).

  align3r eval list
  align3r eval table video_depth data_root=/data
  align3r eval table supp_t3 data_root=/data models.monst3r=checkpoints/MonST3R.pth
  torchrun --nproc_per_node 8 -m align3r.cli eval table camera_pose data_root=/data
  align3r eval table supp_t4 --aggregate-only data_root=/data       # repeat the run's overrides
  align3r eval depth --dataset sintel --model align3r-depthanything --prior depthanything
  align3r eval pose --dataset tum --model runs/mine/checkpoint-final.pth data.tum.sequences=[rgbd_dataset_freiburg3_walking_xyz]

The data layout and the command for every table: docs/reproducing.md.
"""

EXTRA_ARGS = "overrides"  # key=value overrides may also follow the options

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(overrides=[])
    sub = parser.add_subparsers(dest="eval_command", metavar="{table,depth,pose,list}")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (Hydra syntax)")
        p.add_argument("--config-dir", default=None,
                       help="folder holding your eval/ and experiment/ configs, searched before the shipped ones")
        p.add_argument("--print-config", action="store_true",
                       help="print the composed config (depth|pose: the resolved run) and exit")
        p.add_argument("--aggregate-only", action="store_true",
                       help="run nothing: summarise the existing result files and print the table; repeat "
                            "the overrides of the run (records of other settings are stale: it stops, writing "
                            "nothing)")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
        p.add_argument("--format", choices=("markdown", "csv", "json"), default="markdown",
                       help="how the table is printed (table.md, .csv, .json and .png are written either way)")

    table = sub.add_parser("table", help="reproduce one table of the paper (see `align3r eval list`)",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    table.add_argument("name", help="table name (configs/eval/table/<name>.yaml) or a path to a table .yaml")
    table.add_argument("--rows", default=None, help="comma-separated rows to run (default: every row)")
    common(table)
    for task, text in (("depth", "video depth metrics of one network on one benchmark"),
                       ("pose", "camera pose metrics of one network on one benchmark")):
        p = sub.add_parser(task, help=text)
        p.add_argument("--dataset", required=True, help="sintel, bonn, tum, pointodyssey or flyingthings3d")
        p.add_argument("--model", required=True, help="released name, .pth, folder or Hub id")
        p.add_argument("--prior", default="auto",
                       help="depthpro | depthanything | none | auto (the model's own: released names, and what "
                            "align3r train recorded for its outputs)")
        p.add_argument("--prior-input", default=None,
                       help="pointmap | depthmap (default: what align3r train recorded for the checkpoint, else "
                            "pointmap)")
        p.add_argument("--name", default=None,
                       help="results subfolder and label (default: from the model, its run folder, and the prior)")
        common(p)
    listing = sub.add_parser("list", help="list the tables and their rows")
    listing.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    listing.add_argument("--config-dir", default=None)


# The Hydra configs: every command finds and composes its configs one way (commands._hydra).


def compose(config_name: str, overrides: list[str], config_dir: str | None = None):
    """Compose ``config_name`` (``eval/table/<name>``, ``eval/single``, or a path to a ``.yaml``)
    with overrides (Hydra compose API)."""
    from align3r.commands._hydra import compose_command_config

    if config_name.endswith((".yaml", ".yml")):
        return compose_command_config(config_name, overrides, config_dir=config_dir, what="eval config")
    group, _, name = config_name.rpartition("/")
    what = "table" if group == "eval/table" else "eval config"
    return compose_command_config(name, overrides, config_dir=config_dir, group=group, what=what)


def list_tables(config_dir: str | None) -> int:
    from align3r.configs import config_folders, config_names

    for name in config_names(config_folders(config_dir), "eval/table"):
        table = compose(f"eval/table/{name}", [], config_dir).table
        print(f"{name}: {table.get('title', '')}")
        print(f"    rows: {', '.join(table.get('rows') or [])}")
        print(f"    columns: {', '.join(c['dataset'] + '-' + c['task'] for c in table.get('columns', []))}")
    return 0


def _resolved(cfg) -> dict:
    """The composed config as plain values, interpolations resolved (a bad one: a one-line error)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from align3r.errors import InputError

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except OmegaConfBaseException as exc:
        raise InputError(f"bad config or override: {exc}") from None


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    from align3r.commands._logging import setup_logging
    from align3r.errors import InputError
    from align3r.eval.run import (
        describe_plan,
        other_networks,
        run_table,
        runtime_from_config,
        shadowed_protocol_overrides,
        single_plan,
        table_plan,
    )

    setup_logging(logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                  "%(levelname)s %(name)s: %(message)s")
    command = getattr(args, "eval_command", None)
    if command is None:
        print("usage: align3r eval {table,depth,pose,list} ... (align3r eval --help)", file=sys.stderr)
        return 2
    if command == "list":
        return list_tables(args.config_dir)
    config_name = "eval/single"
    if command == "table":
        config_name = args.name if args.name.endswith((".yaml", ".yml")) else f"eval/table/{args.name}"
    cfg = compose(config_name, args.overrides, args.config_dir)
    if args.print_config and command == "table":
        print(OmegaConf.to_yaml(cfg))
        return 0
    config = _resolved(cfg)
    if command == "table":
        rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
        spec, plan = table_plan(config, Path(args.name).stem, rows)
    else:
        spec, plan = single_plan(config, task=command, dataset=args.dataset, model=args.model, prior=args.prior,
                                 prior_input=args.prior_input, name=args.name)
        if args.print_config:  # after validation: the run this command would make
            print(describe_plan(spec, plan, config), end="")
            return 0
    runtime = runtime_from_config(config, args.quiet)
    if not args.aggregate_only:
        mixed = other_networks(plan, runtime)
        if mixed and command != "table":
            raise InputError(f"the results folder holds the records of another network: {'; '.join(mixed)}; this run "
                             f"evaluates {args.model}. Pass --name <another name> to keep both, or remove that folder "
                             "to replace them (records of different checkpoints are never mixed in one folder)")
        if mixed:
            log.warning("results of another network are replaced as this run's sequences finish: %s (they stop "
                        "counting in the summaries now: stale)", "; ".join(mixed))
    if os.environ.get("WORLD_SIZE", "1") != "1":
        log.info("torchrun: rank %s of %s", os.environ.get("RANK"), os.environ.get("WORLD_SIZE"))
    shadowed_protocol_overrides(config, plan, args.overrides)
    result = run_table(spec, plan, runtime, aggregate_only=args.aggregate_only,
                       shard_wait_s=config.get("shard_wait_s"), fmt=args.format)
    if result.shard.rank != 0:
        print(f"align3r eval: rank {result.shard.rank} finished its sequences; rank 0 writes the table",
              file=sys.stderr)
        return 0
    if result.missing_note:
        print(f"align3r eval: {result.missing_note}", file=sys.stderr)
    if result.from_records:
        print(f"align3r eval: not on disk: {', '.join(result.from_records)}; those datasets are summarised from their "
              "records alone (sequences: those with a record or named in data.<dataset>.sequences; matched on "
              "settings, reader options, checkpoint and prior model; frames and prior files not re-checked)",
              file=sys.stderr)
    print(result.printed, end="")
    print(f"align3r eval: per-sequence results under {result.out_dir}/, table in {result.out_dir / 'table.md'} "
          "(+ .csv, .json, .png)", file=sys.stderr)
    return result.status

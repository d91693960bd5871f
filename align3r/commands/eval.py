"""``align3r eval table NAME | depth | pose | list``: reproduce the paper's tables, one command each."""

from __future__ import annotations

import argparse
import logging
import os
import re
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
  align3r eval table supp_t4 --aggregate-only
  align3r eval depth --dataset sintel --model align3r-depthanything --prior depthanything
  align3r eval pose --dataset tum --model runs/mine/checkpoint-final.pth data.tum.sequences=[rgbd_dataset_freiburg3_walking_xyz]

The data layout and the command for every table: docs/reproducing.md.
"""

EXTRA_ARGS = "overrides"  # key=value overrides may also follow the options

log = logging.getLogger("align3r.eval")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.set_defaults(overrides=[])
    sub = parser.add_subparsers(dest="eval_command", metavar="{table,depth,pose,list}")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides (Hydra syntax)")
        p.add_argument("--config-dir", default=None, help="folder holding eval/ and experiment/ (default: shipped)")
        p.add_argument("--print-config", action="store_true", help="print the composed config and exit")
        p.add_argument("--aggregate-only", action="store_true",
                       help="run nothing: summarise the existing result files and print the table")
        p.add_argument("--quiet", action="store_true", help="no progress bars")

    table = sub.add_parser("table", help="reproduce one table of the paper (see `align3r eval list`)",
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    table.add_argument("name", help="table name (configs/eval/table/<name>.yaml)")
    table.add_argument("--rows", default=None, help="comma-separated rows to run (default: every row)")
    common(table)
    for task, text in (("depth", "video depth metrics of one network on one benchmark"),
                       ("pose", "camera pose metrics of one network on one benchmark")):
        p = sub.add_parser(task, help=text)
        p.add_argument("--dataset", required=True, help="sintel, bonn, tum, pointodyssey or flyingthings3d")
        p.add_argument("--model", required=True, help="released name, .pth, folder or Hub id")
        p.add_argument("--prior", default="auto", help="depthpro | depthanything | none | auto (the model's own)")
        p.add_argument("--prior-input", default="pointmap", help="pointmap | depthmap")
        p.add_argument("--name", default=None, help="results subfolder and label (default: from model and prior)")
        common(p)
    listing = sub.add_parser("list", help="list the tables and their rows")
    listing.add_argument("overrides", nargs="*", help=argparse.SUPPRESS)
    listing.add_argument("--config-dir", default=None)


# ------------------------------------------------------------------------------------- configs


def _config_root(config_dir: str | None) -> Path:
    from align3r.configs import config_dir as shipped
    from align3r.errors import InputError

    root = Path(config_dir).resolve() if config_dir else shipped()
    if not (root / "eval").is_dir():
        raise InputError(f"{root} has no eval/ config folder; pass --config-dir <repo>/configs")
    return root


def compose(config_name: str, overrides: list[str], config_dir: str | None = None):
    """Compose ``config_name`` (e.g. ``eval/table/supp_t3``) with overrides (Hydra compose API)."""
    from align3r.commands._hydra import compose_config
    from align3r.errors import InputError

    root = _config_root(config_dir)
    if not (root / f"{config_name}.yaml").is_file():
        tables = sorted(p.stem for p in (root / "eval" / "table").glob("*.yaml"))
        raise InputError(f"no config {config_name}.yaml in {root}; tables: {', '.join(tables)}")
    return compose_config(root, config_name, overrides, "bad config or override")


def _container(node) -> dict:
    from omegaconf import OmegaConf

    if node is None:
        return {}
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else dict(node)


def build_runtime(cfg, quiet: bool = False):
    from align3r.eval.run import Runtime

    return Runtime(results=str(cfg.results), device=str(cfg.device), batch_size=cfg.batch_size,
                   priors=str(cfg.priors), prior_model=cfg.prior_model, overwrite=bool(cfg.overwrite),
                   progress=bool(cfg.progress) and not quiet)


def build_experiment(cfg, table: str, row: str, row_cfg: dict, column, name: str | None = None):
    """The ``Experiment`` of one row on one column group: protocol settings, then the protocol's
    dataset settings, the row's, the row's column settings, the global ``settings``, the global
    ``model`` and finally the ``models`` name -> checkpoint mapping."""
    from omegaconf import OmegaConf

    from align3r.errors import InputError
    from align3r.eval.run import DatasetSpec, EvalSettings, Experiment

    protocol = cfg.protocol.get(column.task)
    if protocol is None:
        raise InputError(f"no protocol config for task {column.task!r}")
    if column.dataset not in cfg.data:
        raise InputError(f"no data.{column.dataset} entry (root of the {column.dataset} benchmark) in the config")
    layers = [protocol.settings, (protocol.get("datasets") or {}).get(column.dataset),
              row_cfg.get("settings"), (row_cfg.get("columns") or {}).get(column.key), cfg.get("settings")]
    merged = OmegaConf.merge(*(OmegaConf.create(_container(layer)) for layer in layers))  # not in struct mode
    values = _container(merged)
    values["task"] = column.task
    if cfg.get("model"):
        values["model"] = str(cfg.model)
    mapped = (_container(cfg.get("models")) or {}).get(values.get("model"))
    if mapped:
        values["model"] = str(mapped)
    try:
        settings = EvalSettings.from_dict(values)
    except InputError as exc:
        raise InputError(f"table {table}, row {row}, {column.key}: {exc}") from None
    data = _container(cfg.data[column.dataset])
    root = data.pop("root")
    return Experiment(name or f"{table}/{row}/{column.key}", DatasetSpec(column.dataset, str(root), data), settings)


def _check_row_columns(table: str, rows: dict, spec) -> None:
    from align3r.errors import InputError

    keys = {c.key for c in spec.columns}
    for name in (r.name for r in spec.rows):
        bad = sorted(set(rows[name].get("columns") or {}) - keys)
        if bad:
            raise InputError(f"table {table}, row {name}: settings for unknown column(s) {bad}; columns: {sorted(keys)}")


def table_plan(cfg, name: str, only_rows: list[str] | None = None):
    """(``TableSpec``, [((row, column key), Experiment)]) of a composed table config."""
    from align3r.errors import InputError
    from align3r.eval.tables import table_from_dict

    if "table" not in cfg:
        raise InputError(f"config {name} has no `table:` section")
    table = _container(cfg.table)
    rows = _container(cfg.get("rows"))
    order = list(table.get("rows") or rows)
    if only_rows:
        unknown = [r for r in only_rows if r not in order]
        if unknown:
            raise InputError(f"table {name} has no row(s) {unknown}; rows: {order}")
        order = [r for r in order if r in only_rows]
    spec = table_from_dict(name, table, rows, order)
    _check_row_columns(name, rows, spec)
    plan = [((row.name, col.key), build_experiment(cfg, name, row.name, rows[row.name], col))
            for row in spec.rows for col in spec.columns]
    return spec, plan


def single_plan(cfg, args):
    """The one-row table of ``align3r eval depth|pose``."""
    from align3r.eval.tables import table_from_dict
    from align3r.pipeline import resolve_prior_name

    prior = resolve_prior_name(args.model, args.prior)
    name = args.name or re.sub(r"[^A-Za-z0-9._-]+", "_", f"{Path(args.model).name}-{prior}").strip("_")
    metrics = ["abs_rel", "sq_rel", "rmse", "log_rmse", "delta1", "delta2", "delta3"] if args.eval_command == "depth" \
        else ["ate", "rpe_trans", "rpe_rot"]
    table = {"title": f"{args.eval_command}: {args.model} ({prior} prior) on {args.dataset}",
             "columns": [{"dataset": args.dataset, "task": args.eval_command, "metrics": metrics}]}
    row = {"label": f"{Path(args.model).name} ({prior})",
           "settings": {"model": args.model, "prior": prior, "prior_input": args.prior_input}}
    spec = table_from_dict(name, table, {name: row})
    col = spec.columns[0]
    return spec, [((name, col.key), build_experiment(cfg, name, name, row, col, name=f"{name}/{col.key}"))]


# ----------------------------------------------------------------------------------------- run


DEFAULT_SHARD_WAIT_S = 3600.0
"""Under several processes, rank 0 gives up waiting when no other rank has written a result for
this long (``shard_wait_s`` overrides it)."""


def _wait_seconds(cfg, shard, aggregate_only: bool) -> float:
    if aggregate_only:
        return 0.0
    if cfg.get("shard_wait_s") is not None:
        return float(cfg.shard_wait_s)
    return DEFAULT_SHARD_WAIT_S if shard.world_size > 1 else 0.0


def _missing_message(missing, items, world_size: int, wait: float) -> str:
    """Which sequences have no result after the wait, and the ranks that owned them."""
    owner = {id(item): i % world_size for i, item in enumerate(items)}
    ranks = sorted({owner.get(id(item)) for item in missing} - {None})
    labels = [f"{item.experiment.name}/{item.seq.name}" for item in missing]
    shown = ", ".join(labels[:5]) + (f", ... ({len(labels) - 5} more)" if len(labels) > 5 else "")
    return (f"align3r eval: {len(missing)} sequence(s) still have no result after {wait:g} s without a new "
            f"result from any rank: {shown}. They belong to rank(s) {', '.join(map(str, ranks))} of "
            f"{world_size}, which may have died (see their logs). The table leaves them out (listed as "
            "missing). Run the same command again to compute them (finished sequences are reused), or "
            "`--aggregate-only` once those ranks finish; shard_wait_s=<seconds> waits longer.")


def execute(spec, plan, cfg, *, aggregate_only: bool = False, quiet: bool = False) -> int:
    """Run this process's share of every experiment of ``plan``, then (rank 0) print the table.

    Returns 0, or (rank 0) 1 when sequences of other ranks never got a result (see
    ``shard_wait_s``); the table is printed either way.
    """
    from align3r.errors import InputError
    from align3r.eval.run import (
        NetworkCache,
        PriorModels,
        Shard,
        aggregate_experiment,
        plan_experiment,
        resolve_device,
        run_sequences,
        wait_for_results,
    )
    from align3r.eval.tables import write_table

    shard = Shard.from_env()
    runtime = build_runtime(cfg, quiet)
    items: list = []
    if not aggregate_only:
        unset = sorted({key[0] for key, exp in plan if not exp.settings.model})
        if unset:
            raise InputError(f"row(s) {unset} of table {spec.name} name no network; pass one with "
                             f"rows.<row>.settings.model=<checkpoint> (or model=<checkpoint> for every row)")
        device = resolve_device(runtime.device, shard)
        networks, priors = NetworkCache(device), PriorModels(runtime, device)
        # One list of every sequence of the table, grouped by network so that each process loads
        # every network once; rank r takes items r, r + W, ... of it (balanced across datasets).
        first_use: dict = {}
        for _, exp in plan:
            first_use.setdefault(exp.settings.model, len(first_use))
        ordered = sorted((exp for _, exp in plan), key=lambda exp: first_use[exp.settings.model])
        items = [item for exp in ordered for item in plan_experiment(exp, runtime)]
        report = run_sequences(shard.take(items), runtime, networks, priors)
        log.info("rank %d: %d sequences computed, %d reused, %d failed", shard.rank, len(report.computed),
                 len(report.reused), len(report.failed))
    if shard.rank != 0:
        print(f"align3r eval: rank {shard.rank} finished its sequences; rank 0 writes the table", file=sys.stderr)
        return 0
    status = 0
    wait = _wait_seconds(cfg, shard, aggregate_only)
    missing = wait_for_results(items, idle_s=wait) if wait > 0 else []
    if missing:
        print(_missing_message(missing, items, shard.world_size, wait), file=sys.stderr)
        status = 1
    summaries = {key: aggregate_experiment(exp, runtime) for key, exp in plan}
    out_dir = Path(runtime.results) / spec.name
    markdown = write_table(spec, summaries, out_dir)
    print(markdown, end="")
    print(f"align3r eval: per-sequence results under {out_dir}/, table in {out_dir / 'table.md'} (+ .csv, .json)",
          file=sys.stderr)
    return status


def list_tables(config_dir: str | None) -> int:
    root = _config_root(config_dir)
    for path in sorted((root / "eval" / "table").glob("*.yaml")):
        cfg = compose(f"eval/table/{path.stem}", [], config_dir)
        table = _container(cfg.table)
        print(f"{path.stem}: {table.get('title', '')}")
        print(f"    rows: {', '.join(table.get('rows') or [])}")
        print(f"    columns: {', '.join(c['dataset'] + '-' + c['task'] for c in table.get('columns', []))}")
    return 0


def run(args: argparse.Namespace) -> int:
    from omegaconf import OmegaConf

    logging.basicConfig(level=logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    command = getattr(args, "eval_command", None)
    if command is None:
        print("usage: align3r eval {table,depth,pose,list} ... (align3r eval --help)", file=sys.stderr)
        return 2
    if command == "list":
        return list_tables(args.config_dir)
    config_name = f"eval/table/{args.name}" if command == "table" else "eval/single"
    cfg = compose(config_name, args.overrides, args.config_dir)
    if args.print_config:
        print(OmegaConf.to_yaml(cfg))
        return 0
    if command == "table":
        rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
        spec, plan = table_plan(cfg, args.name, rows)
    else:
        spec, plan = single_plan(cfg, args)
    if os.environ.get("WORLD_SIZE", "1") != "1":
        log.info("torchrun: rank %s of %s", os.environ.get("RANK"), os.environ.get("WORLD_SIZE"))
    return execute(spec, plan, cfg, aggregate_only=args.aggregate_only, quiet=args.quiet)

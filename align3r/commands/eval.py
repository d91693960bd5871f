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
  align3r eval table supp_t4 --aggregate-only data_root=/data       # repeat the run's overrides
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
    table.add_argument("name", help="table name (configs/eval/table/<name>.yaml)")
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
                   prior_models={k: v for k, v in _container(cfg.get("prior_models")).items() if v},
                   progress=bool(cfg.progress) and not quiet)


def build_experiment(cfg, table: str, row: str, row_cfg: dict, column, name: str | None = None):
    """The ``Experiment`` of one row on one column group: protocol settings, then the protocol's
    dataset settings, its settings for the row's prior on that dataset (``by_prior.<prior>.<dataset>``),
    the row's, the row's column settings, the global ``settings``, the global ``model`` and finally
    the ``models`` name -> checkpoint mapping."""
    from omegaconf import OmegaConf

    from align3r.errors import InputError
    from align3r.eval.run import DatasetSpec, EvalSettings, Experiment

    protocol = cfg.protocol.get(column.task)
    if protocol is None:
        raise InputError(f"no protocol config for task {column.task!r}")
    if column.dataset not in cfg.data:
        raise InputError(f"unknown dataset {column.dataset!r}: no data.{column.dataset} entry (root of the benchmark) "
                         f"in the config; datasets: {', '.join(cfg.data)}")
    layers = [protocol.settings, (protocol.get("datasets") or {}).get(column.dataset),
              row_cfg.get("settings"), (row_cfg.get("columns") or {}).get(column.key), cfg.get("settings")]
    merged = OmegaConf.merge(*(OmegaConf.create(_container(layer)) for layer in layers))  # not in struct mode
    prior = merged.get("prior", EvalSettings.prior)
    by_prior = ((protocol.get("by_prior") or {}).get(prior) or {}).get(column.dataset)
    if by_prior:  # e.g. the pose protocol's graph of Depth Pro rows on Sintel; the rows' settings override it
        layers.insert(2, by_prior)
        merged = OmegaConf.merge(*(OmegaConf.create(_container(layer)) for layer in layers))
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


def model_label(model: str) -> str:
    """A short name of a network for labels and result folders: a local checkpoint with the folder
    it sits in (``run1/final_model``, ``run2/checkpoint-best.pth``: the runs of ``align3r train``
    name their files alike), else the name as given (released name, Hub id's last part)."""
    path = Path(model).expanduser()
    if path.exists():
        path = path.resolve()
        return f"{path.parent.name}/{path.name}" if path.parent.name else path.name
    return Path(model).name


def single_plan(cfg, args):
    """The one-row table of ``align3r eval depth|pose``."""
    from align3r.eval.tables import table_from_dict
    from align3r.pipeline import resolve_prior_input, trained_settings

    trained = trained_settings(args.model)
    prior = _resolve_prior(args.model, args.prior, trained)
    prior_input = resolve_prior_input(args.model, args.prior_input or "auto", args.prior, what="--model",
                                      trained=trained, keys=("--prior", "--prior-input"))
    label = model_label(args.model)
    name = args.name or re.sub(r"[^A-Za-z0-9._-]+", "_", f"{label.replace('/', '-')}-{prior}").strip("_")
    metrics = ["abs_rel", "sq_rel", "rmse", "log_rmse", "delta1", "delta2", "delta3"] if args.eval_command == "depth" \
        else ["ate", "rpe_trans", "rpe_rot"]
    table = {"title": f"{args.eval_command}: {args.model} ({prior} prior) on {args.dataset}",
             "columns": [{"dataset": args.dataset, "task": args.eval_command, "metrics": metrics}]}
    row = {"label": args.name or f"{label} ({prior})",
           "settings": {"model": args.model, "prior": prior, "prior_input": prior_input}}
    spec = table_from_dict(name, table, {name: row})
    col = spec.columns[0]
    return spec, [((name, col.key), build_experiment(cfg, name, name, row, col, name=f"{name}/{col.key}"))]


def _resolve_prior(model: str, prior: str, trained: dict | None = None) -> str:
    """``--prior``, or for ``auto`` the prior the model was trained with (released names; what
    ``align3r train`` recorded for its outputs), saying which it chose and why (another local
    checkpoint's prior is not known: Depth Pro is assumed)."""
    from align3r.pipeline import PRIOR_OF_MODEL, resolve_prior_name, trained_settings

    trained = trained_settings(model) if trained is None else trained
    name = resolve_prior_name(model, prior, trained)
    if prior == "auto" and model in PRIOR_OF_MODEL:
        log.info("--prior auto: %s is a released network trained with prior %s", model, name)
    elif prior == "auto" and trained.get("prior"):
        log.info("--prior auto: %s was fine-tuned with prior %s (recorded by align3r train)", model, name)
    elif prior == "auto":
        log.warning("--prior auto: %s is not a released network, so the prior it was trained with is unknown; "
                    "assuming %s. Pass --prior depthpro or --prior depthanything (the prior it was trained "
                    "with), or --prior none for a network without a prior branch (DUSt3R/MonST3R)", model, name)
    return name


def _same_model(a: str, b: str) -> bool:
    def key(model: str) -> str:
        path = Path(model).expanduser()
        return str(path.resolve()) if path.exists() else model

    return a == b or key(a) == key(b)


def other_networks(plan, runtime) -> list[str]:
    """For each experiment of ``plan`` whose results folder holds records computed with another
    network than the experiment's (``settings.model``): "<folder> (<n> record(s) of <model>, ...)"."""
    from align3r.eval.run.results import read_record

    out = []
    for _, exp in plan:
        folder = Path(runtime.results) / exp.name
        others: dict[str, int] = {}
        for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
            record = read_record(path)
            if not isinstance(record, dict) or "sequence" not in record or "status" not in record:
                continue  # summary.json, ...
            inputs = record.get("inputs") if isinstance(record.get("inputs"), dict) else {}
            settings = inputs.get("settings") or record.get("settings") or {}
            model = settings.get("model") if isinstance(settings, dict) else None
            if model and not _same_model(str(model), str(exp.settings.model)):
                others[str(model)] = others.get(str(model), 0) + 1
        if others:
            out.append(f"{folder} ({', '.join(f'{n} record(s) of {m}' for m, n in others.items())})")
    return out


def describe_plan(spec, plan, cfg) -> str:
    """The resolved runs of a plan as YAML (``--print-config`` of ``align3r eval depth|pose``):
    each row's label, network, prior, dataset and complete settings, and the runtime."""
    from omegaconf import OmegaConf

    labels = {row.name: row.label for row in spec.rows}
    runs = [{"experiment": exp.name, "label": labels[row], "model": exp.settings.model, "prior": exp.settings.prior,
             "dataset": exp.dataset.to_dict(), "settings": exp.settings.to_dict(),
             "results": str(Path(str(cfg.results)) / exp.name)} for (row, _), exp in plan]
    runtime = {k: _container(cfg).get(k) for k in ("device", "batch_size", "priors", "prior_models", "prior_model",
                                                       "overwrite")}
    return ("# the resolved run (protocol + dataset + command-line options and overrides)\n"
            + OmegaConf.to_yaml({"title": spec.title, "runs": runs, "runtime": runtime}))


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


def _aggregate_only(spec, plan, runtime) -> dict:
    """``--aggregate-only``: the summaries of every experiment of ``plan`` from the records on disk.

    Refuses (``InputError``, nothing written) when records were computed with other settings than
    the command's (stale: the aggregation did not repeat the run's overrides) or when the outputs
    on disk hold more results than the new ones would. A dataset whose folder does not exist is
    summarised from its records alone (a notice says so).
    """
    from align3r.errors import InputError
    from align3r.eval.run import collect_experiment, write_experiment_results

    collected = {}
    for key, exp in plan:
        try:
            collected[key] = collect_experiment(exp, runtime, records_only=True)
        except InputError as exc:
            raise InputError(f"{exc} (--aggregate-only reads the {exp.dataset.name} dataset at {exp.dataset.root} to "
                             "list the protocol's sequences and check that the records were computed from its "
                             "current frames and prior files; when that folder does not exist at all it works from "
                             "the records alone)") from None
    stale = [(r.experiment.name, seq, why) for r in collected.values() for seq, why in r.stale.items()]
    if stale:
        shown = "; ".join(f"{exp}/{seq} ({why})" for exp, seq, why in stale[:3])
        more = f"; ... ({len(stale) - 3} more)" if len(stale) > 3 else ""
        raise InputError(
            f"--aggregate-only: {len(stale)} result record(s) are stale, computed with other settings than this "
            f"command's: {shown}{more}. Nothing was written. The aggregation must repeat the overrides of the run "
            "that computed them (the same data_root, data.*, models.*/model, +settings.*, rows.*, protocol.*, "
            "priors and prior model options); or run without --aggregate-only to recompute them with these settings")
    shrinking = _shrinking_outputs(spec, collected, Path(runtime.results))
    if shrinking:
        raise InputError(
            f"--aggregate-only would replace outputs on disk with fewer results: {'; '.join(shrinking[:5])}. Nothing "
            "was written. Repeat the overrides of the run that wrote them (the same data.*.sequences, --rows, ...); to "
            "write a table of this selection anyway, run the command without --aggregate-only (finished sequences "
            "are reused) or remove those outputs first")
    absent = sorted({str(r.experiment.dataset.root) for r in collected.values() if r.from_records})
    if absent:
        print(f"align3r eval: not on disk: {', '.join(absent)}; those datasets are summarised from their records alone "
              "(sequences: those with a record or named in data.<dataset>.sequences; matched on settings, reader "
              "options, checkpoint and prior model; frames and prior files not re-checked)", file=sys.stderr)
    return {key: write_experiment_results(results, runtime) for key, results in collected.items()}


def _shrinking_outputs(spec, collected: dict, results_root: Path) -> list[str]:
    """What the existing outputs of the table hold that the new ones would not: experiments whose
    summary.json counts more scored sequences, rows of table.json that the new table lacks."""
    from align3r.eval.run.results import read_record

    out = []
    for results in collected.values():
        old = (read_record(results_root / results.experiment.name / "summary.json") or {}).get("counts") or {}
        if old.get("evaluated") is not None and results.evaluated < int(old["evaluated"]):
            out.append(f"{results.experiment.name} ({old['evaluated']} sequence(s) scored on disk, "
                       f"{results.evaluated} now)")
    table = read_record(results_root / spec.name / "table.json") or {}
    dropped = sorted({v.get("row") for v in table.get("values") or []} - {r.name for r in spec.rows} - {None})
    if dropped:
        out.append(f"{spec.name}/table.md (row(s) {', '.join(dropped)} would be dropped)")
    return out


def execute(spec, plan, cfg, *, aggregate_only: bool = False, quiet: bool = False, fmt: str = "markdown") -> int:
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
    if aggregate_only:
        summaries = _aggregate_only(spec, plan, runtime)
    else:
        summaries = {key: aggregate_experiment(exp, runtime) for key, exp in plan}
    out_dir = Path(runtime.results) / spec.name
    print(write_table(spec, summaries, out_dir, fmt), end="")
    print(f"align3r eval: per-sequence results under {out_dir}/, table in {out_dir / 'table.md'} (+ .csv, .json, "
          ".png)",
          file=sys.stderr)
    return status


_PROTOCOL_OVERRIDE = re.compile(r"^\+{0,2}protocol\.(\w+)\.settings\.([\w.]+)=")


def warn_shadowed_protocol_overrides(cfg, plan, overrides: list[str]) -> list[str]:
    """Warn (and return the warnings) where a command-line ``protocol.<task>.settings.<key>=``
    does not reach a row because a later layer sets the key: the protocol's dataset or prior
    settings, the row's (``configs/experiment/<table>/<row>.yaml``), its column's, or
    ``settings.<key>`` (see docs/reproducing.md, "Which setting wins")."""
    from omegaconf import OmegaConf

    def dig(values, path: list[str]):
        for part in path:
            if not isinstance(values, dict) or part not in values:
                return None
            values = values[part]
        return values

    warnings = []
    for text in overrides:
        match = _PROTOCOL_OVERRIDE.match(text)
        if not match or match.group(2).split(".")[0] in ("task", "model"):
            continue
        task, key = match.groups()
        wanted = OmegaConf.select(cfg, f"protocol.{task}.settings.{key}")
        wanted = _container(wanted) if OmegaConf.is_config(wanted) else wanted
        beaten: dict[str, str] = {}  # row -> "value from layer"
        for (row, column), exp in plan:
            final = dig(exp.settings.to_dict(), key.split("."))
            if exp.settings.task != task or final == wanted or row in beaten:
                continue
            layers = [f"protocol.{task}.datasets.{exp.dataset.name}.{key}",
                      f"protocol.{task}.by_prior.{exp.settings.prior}.{exp.dataset.name}.{key}",
                      f"rows.{row}.settings.{key}", f"rows.{row}.columns.{column}.{key}", f"settings.{key}"]
            winner = next((k for k in reversed(layers) if OmegaConf.select(cfg, k) is not None), "a later layer")
            beaten[row] = f"{row} ({key}={final} from {winner})"
        if beaten:
            per_row = "++rows.<row>.settings.{key}=<value> (one row), " if any(
                OmegaConf.select(cfg, f"rows.{row}") is not None for row in beaten) else ""
            message = (f"{match.group(0).lstrip('+')}{wanted} given on the command line does not reach row(s) "
                       f"{', '.join(beaten.values())}: a later layer sets it and takes precedence. To change it "
                       f"there pass {per_row.format(key=key)}+settings.{key}=<value> (every row and column)")
            warnings.append(message)
            log.warning(message)
    return warnings


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

    from align3r.commands._logging import setup_logging

    setup_logging(logging.WARNING if getattr(args, "quiet", False) else logging.INFO,
                  "%(levelname)s %(name)s: %(message)s")
    command = getattr(args, "eval_command", None)
    if command is None:
        print("usage: align3r eval {table,depth,pose,list} ... (align3r eval --help)", file=sys.stderr)
        return 2
    if command == "list":
        return list_tables(args.config_dir)
    config_name = f"eval/table/{args.name}" if command == "table" else "eval/single"
    cfg = compose(config_name, args.overrides, args.config_dir)
    if args.print_config and command == "table":
        print(OmegaConf.to_yaml(cfg))
        return 0
    if command == "table":
        rows = [r.strip() for r in args.rows.split(",") if r.strip()] if args.rows else None
        spec, plan = table_plan(cfg, args.name, rows)
    else:
        spec, plan = single_plan(cfg, args)
        if args.print_config:  # after validation: the run this command would make
            print(describe_plan(spec, plan, cfg), end="")
            return 0
    if not args.aggregate_only:
        mixed = other_networks(plan, build_runtime(cfg, args.quiet))
        if mixed and command != "table":
            from align3r.errors import InputError

            raise InputError(f"the results folder holds the records of another network: {'; '.join(mixed)}; this run "
                             f"evaluates {args.model}. Pass --name <another name> to keep both, or remove that folder "
                             "to replace them (records of different checkpoints are never mixed in one folder)")
        if mixed:
            log.warning("results of another network are replaced as this run's sequences finish: %s (they stop "
                        "counting in the summaries now: stale)", "; ".join(mixed))
    if os.environ.get("WORLD_SIZE", "1") != "1":
        log.info("torchrun: rank %s of %s", os.environ.get("RANK"), os.environ.get("WORLD_SIZE"))
    warn_shadowed_protocol_overrides(cfg, plan, args.overrides)
    return execute(spec, plan, cfg, aggregate_only=args.aggregate_only, quiet=args.quiet, fmt=args.format)

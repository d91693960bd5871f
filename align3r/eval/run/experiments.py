"""Compose experiments from an evaluation config: the runtime, a table's plan, a single run's plan.

An evaluation config is the composed content of ``configs/eval/table/<name>.yaml`` or
``configs/eval/single.yaml`` (``align3r eval`` composes it with Hydra; any mapping with the same
keys works, OmegaConf's included): ``protocol.<task>`` (``settings``, per-dataset ``datasets``,
per-prior ``by_prior``), ``data.<dataset>`` (``root`` + reader options), ``rows``, ``table``,
``settings``, ``model``, ``models`` and the runtime keys (``results``, ``device``, ...).

A *plan* is ``(TableSpec, [((row, column key), Experiment), ...])``: every cell of a table as an
experiment, ready for :func:`align3r.eval.run.table.run_table`. Library code: no Hydra.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from align3r.errors import InputError
from align3r.eval.run.settings import DatasetSpec, EvalSettings, Experiment, Runtime

log = logging.getLogger(__name__)

DEPTH_METRICS = ("abs_rel", "sq_rel", "rmse", "log_rmse", "delta1", "delta2", "delta3")
"""The columns of a single depth run (``align3r eval depth``)."""
POSE_METRICS = ("ate", "rpe_trans", "rpe_rot")
"""The columns of a single pose run (``align3r eval pose``)."""


def plain(values: Any) -> Any:
    """A config as plain dicts and lists (tuples too); a ``DictConfig`` is a mapping, and reading
    it resolves its interpolations."""
    if isinstance(values, Mapping):
        return {k: plain(v) for k, v in values.items()}
    if isinstance(values, Sequence) and not isinstance(values, (str, bytes)):
        return [plain(v) for v in values]
    return values


def _section(values: Mapping[str, Any] | None, key: str) -> dict[str, Any]:
    """``values[key]`` as a dict (``{}`` when absent or null)."""
    return dict((values or {}).get(key) or {})


def _merge(base: dict[str, Any], top: Mapping[str, Any] | None) -> dict[str, Any]:
    """``top`` merged into ``base``: mappings key by key, any other value (lists too) replaced."""
    out = dict(base)
    for key, value in (top or {}).items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = plain(value)
    return out


def select(values: Any, key: str) -> Any:
    """The value at the dotted ``key`` of nested mappings, None when a part is missing."""
    for part in key.split("."):
        if not isinstance(values, Mapping) or part not in values:
            return None
        values = values[part]
    return values


def runtime_from_config(config: Mapping[str, Any], quiet: bool = False) -> Runtime:
    """The :class:`Runtime` of a config (``results``, ``device``, ``batch_size``, ``priors``,
    ``prior_model``, ``prior_models``, ``overwrite``, ``progress``); ``quiet``: no progress bars."""
    cfg = plain(config)
    return Runtime(results=str(cfg["results"]), device=str(cfg["device"]), batch_size=cfg["batch_size"],
                   priors=str(cfg["priors"]), prior_model=cfg.get("prior_model"), overwrite=bool(cfg["overwrite"]),
                   prior_models={k: v for k, v in _section(cfg, "prior_models").items() if v},
                   progress=bool(cfg["progress"]) and not quiet)


def build_experiment(config: Mapping[str, Any], table: str, row: str, row_cfg: Mapping[str, Any], column,
                     name: str | None = None) -> Experiment:
    """The ``Experiment`` of one row on one column group: protocol settings, then the protocol's
    dataset settings, its settings for the row's prior on that dataset (``by_prior.<prior>.<dataset>``),
    the row's, the row's column settings, the global ``settings``, the global ``model`` and finally
    the ``models`` name -> checkpoint mapping."""
    cfg = plain(config)
    protocol = _section(cfg, "protocol").get(column.task)
    if protocol is None:
        raise InputError(f"no protocol config for task {column.task!r}")
    data = _section(cfg, "data")
    if column.dataset not in data:
        raise InputError(f"unknown dataset {column.dataset!r}: no data.{column.dataset} entry (root of the benchmark) "
                         f"in the config; datasets: {', '.join(data)}")
    layers = [protocol.get("settings"), _section(protocol, "datasets").get(column.dataset),
              row_cfg.get("settings"), _section(row_cfg, "columns").get(column.key), cfg.get("settings")]
    prior = _merged(layers).get("prior", EvalSettings.prior)
    by_prior = _section(_section(protocol, "by_prior"), prior).get(column.dataset)
    if by_prior:  # e.g. the pose protocol's graph of Depth Pro rows on Sintel; the rows' settings override it
        layers.insert(2, by_prior)
    values = _merged(layers)
    values["task"] = column.task
    if cfg.get("model"):
        values["model"] = str(cfg["model"])
    mapped = _section(cfg, "models").get(values.get("model"))
    if mapped:
        values["model"] = str(mapped)
    try:
        settings = EvalSettings.from_dict(values)
    except InputError as exc:
        raise InputError(f"table {table}, row {row}, {column.key}: {exc}") from None
    options = dict(data[column.dataset])
    root = options.pop("root")
    return Experiment(name or f"{table}/{row}/{column.key}", DatasetSpec(column.dataset, str(root), options), settings)


def _merged(layers: list) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for layer in layers:
        out = _merge(out, layer)
    return out


def _check_row_columns(table: str, rows: dict, spec) -> None:
    keys = {c.key for c in spec.columns}
    for name in (r.name for r in spec.rows):
        bad = sorted(set(rows[name].get("columns") or {}) - keys)
        if bad:
            raise InputError(f"table {table}, row {name}: settings for unknown column(s) {bad}; columns: {sorted(keys)}")


def table_plan(config: Mapping[str, Any], name: str, only_rows: list[str] | None = None):
    """(``TableSpec``, [((row, column key), Experiment)]) of a table config (its ``table:`` and
    ``rows:`` sections); ``only_rows``: run these rows only."""
    from align3r.eval.tables import table_from_dict

    cfg = plain(config)
    if "table" not in cfg:
        raise InputError(f"config {name} has no `table:` section")
    table = _section(cfg, "table")
    rows = _section(cfg, "rows")
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


def single_plan(config: Mapping[str, Any], *, task: str, dataset: str, model: str, prior: str = "auto",
                prior_input: str | None = None, name: str | None = None):
    """The one-row table of one network (``model``) on one benchmark (``dataset``) for ``task``
    (``depth`` | ``pose``; ``align3r eval depth|pose``), with the protocol's settings.

    ``prior``: ``depthpro`` | ``depthanything`` | ``none`` | ``auto`` (:func:`resolve_prior`);
    ``prior_input``: ``pointmap`` | ``depthmap`` | None (what training recorded, else pointmap);
    ``name``: results subfolder and label (default: from the model's label and the prior)."""
    from align3r.eval.tables import table_from_dict
    from align3r.priors.compatibility import resolve_prior_input, trained_settings

    trained = trained_settings(model)
    chosen = resolve_prior(model, prior, trained)
    chosen_input = resolve_prior_input(model, prior_input or "auto", prior, what="--model",
                                       trained=trained, keys=("--prior", "--prior-input"))
    label = model_label(model)
    folder = name or re.sub(r"[^A-Za-z0-9._-]+", "_", f"{label.replace('/', '-')}-{chosen}").strip("_")
    metrics = list(DEPTH_METRICS if task == "depth" else POSE_METRICS)
    table = {"title": f"{task}: {model} ({chosen} prior) on {dataset}",
             "columns": [{"dataset": dataset, "task": task, "metrics": metrics}]}
    row = {"label": name or f"{label} ({chosen})",
           "settings": {"model": model, "prior": chosen, "prior_input": chosen_input}}
    spec = table_from_dict(folder, table, {folder: row})
    col = spec.columns[0]
    return spec, [((folder, col.key), build_experiment(config, folder, folder, row, col, name=f"{folder}/{col.key}"))]


def resolve_prior(model: str, prior: str, trained: dict | None = None) -> str:
    """``prior``, or for ``auto`` the prior the model was trained with (released names; what
    ``align3r train`` recorded for its outputs), saying which it chose and why (another local
    checkpoint's prior is not known: Depth Pro is assumed)."""
    from align3r.priors.compatibility import PRIOR_OF_MODEL, resolve_prior_name, trained_settings

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


def describe_plan(spec, plan, config: Mapping[str, Any]) -> str:
    """The resolved runs of a plan as YAML (``--print-config`` of ``align3r eval depth|pose``):
    each row's label, network, prior, dataset and complete settings, and the runtime."""
    cfg = plain(config)
    labels = {row.name: row.label for row in spec.rows}
    runs = [{"experiment": exp.name, "label": labels[row], "model": exp.settings.model, "prior": exp.settings.prior,
             "dataset": exp.dataset.to_dict(), "settings": exp.settings.to_dict(),
             "results": str(Path(str(cfg["results"])) / exp.name)} for (row, _), exp in plan]
    runtime = {k: cfg.get(k) for k in ("device", "batch_size", "priors", "prior_models", "prior_model", "overwrite")}
    return ("# the resolved run (protocol + dataset + command-line options and overrides)\n"
            + yaml.safe_dump(plain({"title": spec.title, "runs": runs, "runtime": runtime}), sort_keys=False,
                             allow_unicode=True))


_PROTOCOL_OVERRIDE = re.compile(r"^\+{0,2}protocol\.(\w+)\.settings\.([\w.]+)=")


def shadowed_protocol_overrides(config: Mapping[str, Any], plan, overrides: list[str]) -> list[str]:
    """Warn (and return the warnings) where a command-line ``protocol.<task>.settings.<key>=``
    does not reach a row because a later layer sets the key: the protocol's dataset or prior
    settings, the row's (``configs/experiment/<table>/<row>.yaml``), its column's, or
    ``settings.<key>`` (see docs/reproducing.md, "Which setting wins")."""
    cfg = plain(config)
    warnings = []
    for text in overrides:
        match = _PROTOCOL_OVERRIDE.match(text)
        if not match or match.group(2).split(".")[0] in ("task", "model"):
            continue
        task, key = match.groups()
        wanted = select(cfg, f"protocol.{task}.settings.{key}")
        beaten: dict[str, str] = {}  # row -> "value from layer"
        for (row, column), exp in plan:
            final = select(exp.settings.to_dict(), key)
            if exp.settings.task != task or final == wanted or row in beaten:
                continue
            layers = [f"protocol.{task}.datasets.{exp.dataset.name}.{key}",
                      f"protocol.{task}.by_prior.{exp.settings.prior}.{exp.dataset.name}.{key}",
                      f"rows.{row}.settings.{key}", f"rows.{row}.columns.{column}.{key}", f"settings.{key}"]
            winner = next((k for k in reversed(layers) if select(cfg, k) is not None), "a later layer")
            beaten[row] = f"{row} ({key}={final} from {winner})"
        if beaten:
            per_row = "++rows.<row>.settings.{key}=<value> (one row), " if any(
                select(cfg, f"rows.{row}") is not None for row in beaten) else ""
            message = (f"{match.group(0).lstrip('+')}{wanted} given on the command line does not reach row(s) "
                       f"{', '.join(beaten.values())}: a later layer sets it and takes precedence. To change it "
                       f"there pass {per_row.format(key=key)}+settings.{key}=<value> (every row and column)")
            warnings.append(message)
            log.warning(message)
    return warnings

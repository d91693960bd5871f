"""The paper's tables: which experiments fill them, and our figures beside the published ones.

A table has column groups (a dataset, a task and the metrics shown for it) and rows (a method:
one experiment per column group). Every cell holds ours, the published number and their
difference, ``ours − published`` absolute and relative to the published number
(:func:`table_values`); :func:`render` prints them as Markdown (``ours / published / Δ (Δ%)``, "—"
for a missing number), CSV or JSON (``align3r.eval.report.write_table`` saves all three beside the results with a
figure). Metric ids (configs, summaries): depth ``abs_rel sq_rel rmse
log_rmse delta1 delta2 delta3`` (δ as fractions, not percent), pose ``ate rpe_trans rpe_rot`` (RPE
rot in degrees), cost ``pairs time_priors time_inference time_flow time_align time_total``
(per-sequence means, seconds) and ``time_total_min`` (``time_total`` in minutes, the unit of the
paper's Table 4).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from align3r.errors import InputError
from align3r.eval.run.results import (
    COST_KEYS,
    DEPTH_KEYS,
    POSE_KEYS,
    json_safe,
)

METRICS: dict[str, tuple[str, str, str]] = {
    "abs_rel": ("Abs Rel", "↓", "{:.3f}"),
    "sq_rel": ("Sq Rel", "↓", "{:.3f}"),
    "rmse": ("RMSE", "↓", "{:.3f}"),
    "log_rmse": ("Log RMSE", "↓", "{:.3f}"),
    "delta1": ("δ<1.25", "↑", "{:.3f}"),
    "delta2": ("δ<1.25²", "↑", "{:.3f}"),
    "delta3": ("δ<1.25³", "↑", "{:.3f}"),
    "ate": ("ATE", "↓", "{:.3f}"),
    "rpe_trans": ("RPE trans", "↓", "{:.3f}"),
    "rpe_rot": ("RPE rot", "↓", "{:.3f}"),
    "pairs": ("pairs", "", "{:.0f}"),
    "time_priors": ("priors (s)", "↓", "{:.2f}"),
    "time_inference": ("inference (s)", "↓", "{:.2f}"),
    "time_flow": ("flow (s)", "↓", "{:.2f}"),
    "time_align": ("alignment (s)", "↓", "{:.2f}"),
    "time_total": ("total (s)", "↓", "{:.2f}"),
    "time_total_min": ("total (min)", "↓", "{:.2f}"),
}
"""Metric id -> (display name, better direction, number format)."""

DATASET_LABELS = {"sintel": "Sintel", "bonn": "Bonn", "tum": "TUM-dynamics", "pointodyssey": "PointOdyssey",
                  "flyingthings3d": "FlyingThings3D", "davis": "DAVIS"}
DERIVED = {"time_total_min": ("time_total", 1 / 60)}
"""Metric id -> (the summary's cost it is read from, factor)."""
TASK_METRICS = {task: set(keys) | set(COST_KEYS) | set(DERIVED) for task, keys in (("depth", DEPTH_KEYS),
                                                                                   ("pose", POSE_KEYS))}
FORMATS = ("markdown", "csv", "json")


@dataclass(frozen=True)
class Column:
    """A column group: one dataset evaluated under one task, showing ``metrics``."""

    dataset: str
    task: str
    metrics: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.task not in TASK_METRICS:
            raise InputError(f"column {self.dataset}: task must be depth or pose, got {self.task!r}")
        bad = [m for m in self.metrics if m not in TASK_METRICS[self.task]]
        if bad or not self.metrics:
            raise InputError(f"column {self.dataset} ({self.task}): unknown or missing metrics {bad}; "
                             f"choose from {sorted(TASK_METRICS[self.task])}")

    @property
    def key(self) -> str:
        """Identifies the column group (and names its results folder)."""
        return f"{self.dataset}-{self.task}"

    @property
    def label(self) -> str:
        return DATASET_LABELS.get(self.dataset, self.dataset)


@dataclass(frozen=True)
class Row:
    """A method: its label and the published numbers per column key (``<dataset>-<task>``) and
    metric id (None where the paper gives none or it has not been transcribed)."""

    name: str
    label: str
    published: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)
    source: str = ""


@dataclass(frozen=True)
class TableSpec:
    name: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    source: str = ""
    notes: str = ""


def _value(summary: Mapping[str, Any] | None, metric: str) -> float | None:
    if summary is None:
        return None
    source, factor = DERIVED.get(metric, (metric, 1.0))
    group = summary.get("costs", {}) if source in COST_KEYS else summary.get("metrics", {})
    value = group.get(source)
    return None if value is None else float(value) * factor


def difference(ours: float | None, published: float | None) -> tuple[float | None, float | None]:
    """``(ours − published, (ours − published) / |published|)``; None where either is missing
    (or NaN), the relative one also where the published number is 0."""
    if ours is None or published is None or math.isnan(ours):
        return None, None
    delta = ours - published
    return delta, (delta / abs(published) if published else None)


def _fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "—"
    if math.isnan(value):
        return "n/a"
    return METRICS[metric][2].format(value)


def in_mean(counts: Mapping[str, Any]) -> int:
    """How many sequences a summary's metrics average (``counts["in_mean"]``; summaries without it:
    the evaluated ones less the degenerate ones)."""
    if counts.get("in_mean") is not None:
        return int(counts["in_mean"])
    return int(counts.get("evaluated", 0)) - int(counts.get("degenerate", 0))


def table_values(spec: TableSpec, summaries: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One entry per (row, column, metric): ours, published, their difference (``delta`` = ours −
    published, ``delta_rel`` = delta / |published|; None where either is missing) and where the
    published value is from.

    ``summaries`` maps (row name, column key) to the experiment summary (or lacks the key).
    ``sequences`` is how many sequences the value averages (degenerate, failed and missing ones
    are not in it), ``expected`` how many the protocol has.
    """
    out = []
    for row in spec.rows:
        for col in spec.columns:
            summary = summaries.get((row.name, col.key))
            published = dict(row.published.get(col.key, {}) or {})
            counts = (summary or {}).get("counts", {})
            for metric in col.metrics:
                pub = None if published.get(metric) is None else float(published[metric])
                ours = _value(summary, metric)
                delta, relative = difference(ours, pub)
                out.append({"table": spec.name, "row": row.name, "method": row.label, "dataset": col.dataset,
                            "task": col.task, "metric": metric, "ours": ours, "published": pub,
                            "delta": delta, "delta_rel": relative, "published_source": row.source or spec.source,
                            "sequences": in_mean(counts) if counts else None, "expected": counts.get("expected")})
    return out


def _fmt_delta(delta: float | None, relative: float | None, metric: str) -> str:
    if delta is None:
        return "—"
    text = METRICS[metric][2].replace("{:", "{:+").format(delta)
    return text + (f" ({relative:+.1%})" if relative is not None else "")


def _cell(value: Mapping[str, Any]) -> str:
    """``ours / published / Δ (Δ%)`` of one :func:`table_values` entry."""
    metric = value["metric"]
    return (f"{_fmt(value['ours'], metric)} / {_fmt(value['published'], metric)} / "
            f"{_fmt_delta(value['delta'], value['delta_rel'], metric)}")


def machines(summaries: Mapping[tuple[str, str], Mapping[str, Any]]) -> list[str]:
    """The machines the table's sequences ran on (summaries' ``machines``), each once."""
    return list(dict.fromkeys(m for s in summaries.values() for m in (s or {}).get("machines") or []))


def render_markdown(spec: TableSpec, summaries: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    """The table as Markdown, every cell ``ours / published / Δ (Δ%)``, plus notes on incomplete cells."""
    header = ["Method"]
    for col in spec.columns:
        for metric in col.metrics:
            name, better, _ = METRICS[metric]
            header.append(f"{col.label} {name}{(' ' + better) if better else ''}")
    lines = [f"### {spec.title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    values = iter(table_values(spec, summaries))
    notes = []
    twice = {c.dataset for c in spec.columns if sum(d.dataset == c.dataset for d in spec.columns) > 1}
    for row in spec.rows:
        cells = [row.label]
        for col in spec.columns:
            summary = summaries.get((row.name, col.key))
            cells += [_cell(next(values)) for _ in col.metrics]
            where = f"{row.label} / {col.label}" + (f" {col.task}" if col.dataset in twice else "")
            if summary is None:
                notes.append(f"{where}: not evaluated")
                continue
            counts = summary.get("counts", {})
            lacking = [f"{counts[k]} {k}" for k in ("missing", "stale", "failed", "degenerate") if counts.get(k)]
            if isinstance(summary.get("stale"), dict) and summary["stale"]:  # records of other settings: why
                reason = next(iter(summary["stale"].values()))
                lacking = [f"{item} ({reason})" if item.endswith(" stale") else item for item in lacking]
            empty = int(counts.get("evaluated", 0)) - int(counts.get("degenerate", 0)) - in_mean(counts)
            if empty > 0:  # depth sequences whose ground truth has no valid pixel carry no weight
                lacking.append(f"{empty} without valid ground truth")
            if lacking:
                notes.append(f"{where}: {in_mean(counts)} of {counts.get('expected', 0)} "
                             f"sequences in the mean ({', '.join(lacking)})")
            elif not counts.get("expected"):  # nothing listed and nothing on disk (--aggregate-only, no data)
                notes.append(f"{where}: no result")
        lines.append("| " + " | ".join(cells) + " |")
    legend = ("Cells: ours / published / Δ = ours − published (relative to published); — = no value, "
              "n/a = no usable sequence")
    if any(m.startswith("delta") for col in spec.columns for m in col.metrics):
        legend += "; δ as fractions (0–1), not percent"
    lines += ["", legend + "."]
    sources = list(dict.fromkeys(r.source or spec.source for r in spec.rows))  # row order, each once
    sources = [s for s in sources if s]
    if sources:
        lines.append("Published: " + " | ".join(sources) + ".")
    if spec.notes:
        lines.append(spec.notes.strip())
    if any(m in COST_KEYS or m in DERIVED for col in spec.columns for m in col.metrics):
        ran = machines(summaries)
        lines.append(f"Our times measured on: {', '.join(ran) if ran else '— (nothing ran)'}.")
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def render_csv(values: Sequence[Mapping[str, Any]]) -> str:
    """:func:`table_values` as CSV, one line per cell (empty field = no value, NaN included)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(values[0]) if values else ["table"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(json_safe(list(values)))
    return buffer.getvalue()


def table_document(spec: TableSpec, summaries: Mapping[tuple[str, str], Mapping[str, Any]]) -> dict[str, Any]:
    """What ``table.json`` holds: the table's name, title, source, machines, every cell
    (:func:`table_values`) and the summaries they come from."""
    return {"table": spec.name, "title": spec.title, "source": spec.source, "machines": machines(summaries),
            "values": table_values(spec, summaries),
            "summaries": {f"{r}/{c}": s for (r, c), s in summaries.items()}}


def render(spec: TableSpec, summaries: Mapping[tuple[str, str], Mapping[str, Any]], fmt: str = "markdown") -> str:
    """The table in ``fmt``: ``markdown``, ``csv`` or ``json`` (:data:`FORMATS`)."""
    if fmt not in FORMATS:
        raise InputError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "markdown":
        return render_markdown(spec, summaries)
    if fmt == "csv":
        return render_csv(table_values(spec, summaries))
    return json.dumps(json_safe(table_document(spec, summaries)), indent=1, allow_nan=False) + "\n"


def table_from_dict(name: str, data: Mapping[str, Any], rows: Mapping[str, Mapping[str, Any]],
                    order: Sequence[str] | None = None) -> TableSpec:
    """A :class:`TableSpec` from plain mappings (the composed configs): ``data`` has ``title``,
    ``source``, ``notes`` and ``columns`` (``dataset``, ``task``, ``metrics``); ``rows`` maps row
    names to ``label``, ``published`` and ``source``; ``order`` picks and orders rows."""
    columns = tuple(Column(str(c["dataset"]), str(c["task"]), tuple(c["metrics"])) for c in data.get("columns", []))
    if not columns:
        raise InputError(f"table {name} has no columns")
    keys = [c.key for c in columns]
    if len(set(keys)) != len(keys):
        raise InputError(f"table {name}: a dataset appears twice with the same task")
    names = list(order) if order is not None else list(rows)
    unknown = [r for r in names if r not in rows]
    if unknown:
        raise InputError(f"table {name} has no row(s) {unknown}; rows: {list(rows)}")
    built = []
    for r in names:
        row = rows[r]
        published = {str(k): dict(v or {}) for k, v in (row.get("published") or {}).items()}
        bad = [k for k in published if k not in keys]
        if bad:
            raise InputError(f"table {name}, row {r}: published values for unknown column(s) {bad}; columns: {keys}")
        built.append(Row(r, str(row.get("label", r)), published, str(row.get("source", "") or "")))
    return TableSpec(name, str(data.get("title", name)), columns, tuple(built), str(data.get("source", "") or ""),
                     str(data.get("notes", "") or ""))

"""The paper's tables: which experiments fill them, and our figures beside the published ones.

A table has column groups (a dataset, a task and the metrics shown for it) and rows (a method:
one experiment per column group). :func:`render_markdown` prints every cell as
``ours (published)``; :func:`write_table` also saves it as CSV and JSON with the sources of the
published numbers. Metric ids (configs, summaries): depth ``abs_rel sq_rel rmse log_rmse delta1
delta2 delta3`` (δ as fractions, not percent), pose ``ate rpe_trans rpe_rot`` (RPE rot in
degrees), cost ``pairs time_priors time_inference time_flow time_align time_total`` (per-sequence
means, seconds).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from align3r.errors import InputError
from align3r.eval.run.results import COST_KEYS, DEPTH_KEYS, POSE_KEYS, write_json_atomic, write_text_atomic

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
}
"""Metric id -> (display name, better direction, number format)."""

DATASET_LABELS = {"sintel": "Sintel", "bonn": "Bonn", "tum": "TUM-dynamics", "pointodyssey": "PointOdyssey",
                  "flyingthings3d": "FlyingThings3D", "davis": "DAVIS"}
TASK_METRICS = {"depth": set(DEPTH_KEYS) | set(COST_KEYS), "pose": set(POSE_KEYS) | set(COST_KEYS)}


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
    group = summary.get("costs", {}) if metric in COST_KEYS else summary.get("metrics", {})
    value = group.get(metric)
    return None if value is None else float(value)


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
    """One entry per (row, column, metric): ours, published, and where the published value is from.

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
                pub = published.get(metric)
                out.append({"table": spec.name, "row": row.name, "method": row.label, "dataset": col.dataset,
                            "task": col.task, "metric": metric, "ours": _value(summary, metric),
                            "published": None if pub is None else float(pub),
                            "published_source": row.source or spec.source,
                            "sequences": in_mean(counts) if counts else None, "expected": counts.get("expected")})
    return out


def render_markdown(spec: TableSpec, summaries: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    """The table as Markdown, every cell ``ours (published)``, plus notes on incomplete cells."""
    header = ["Method"]
    for col in spec.columns:
        for metric in col.metrics:
            name, better, _ = METRICS[metric]
            header.append(f"{col.label} {name}{(' ' + better) if better else ''}")
    lines = [f"### {spec.title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    notes = []
    for row in spec.rows:
        cells = [row.label]
        for col in spec.columns:
            summary = summaries.get((row.name, col.key))
            published = row.published.get(col.key, {}) or {}
            for metric in col.metrics:
                pub = published.get(metric)
                cells.append(f"{_fmt(_value(summary, metric), metric)} ({_fmt(None if pub is None else float(pub), metric)})")
            if summary is None:
                notes.append(f"{row.label} / {col.label}: not evaluated")
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
                notes.append(f"{row.label} / {col.label}: {in_mean(counts)} of {counts.get('expected', 0)} "
                             f"sequences in the mean ({', '.join(lacking)})")
        lines.append("| " + " | ".join(cells) + " |")
    legend = "Cells: ours (published); — = no value, n/a = no usable sequence"
    if any(m.startswith("delta") for col in spec.columns for m in col.metrics):
        legend += "; δ as fractions (0–1), not percent"
    lines += ["", legend + "."]
    sources = list(dict.fromkeys(r.source or spec.source for r in spec.rows))  # row order, each once
    sources = [s for s in sources if s]
    if sources:
        lines.append("Published: " + " | ".join(sources) + ".")
    if spec.notes:
        lines.append(spec.notes.strip())
    lines += [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def write_table(spec: TableSpec, summaries: Mapping[tuple[str, str], Mapping[str, Any]], out_dir: Path) -> str:
    """Write ``table.md``, ``table.csv`` and ``table.json`` to ``out_dir``; returns the Markdown."""
    markdown = render_markdown(spec, summaries)
    values = table_values(spec, summaries)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(values[0]) if values else ["table"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(values)
    write_text_atomic(out_dir / "table.md", markdown)
    write_text_atomic(out_dir / "table.csv", buffer.getvalue())
    write_json_atomic(out_dir / "table.json", {"table": spec.name, "title": spec.title, "values": values,
                                               "summaries": {f"{r}/{c}": s for (r, c), s in summaries.items()}})
    return markdown


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

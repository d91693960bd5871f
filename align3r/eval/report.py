"""Figures and reports that put our measurements beside the paper's.

- :func:`write_table`: a table's files beside the results: ``table.md``, ``.csv``, ``.json``
  (``align3r.eval.tables``) and the figure ``table.png``.
- :func:`plot_table`: one PNG per table, one panel per (dataset, metric), ours and the published
  number side by side for every row, so agreement is seen at a glance.
- :func:`table4_report`: the supplementary's Table 4 (pairs of each graph on 30 frames, average
  minutes per video) beside our pair counts and measured times, naming the machine they were
  measured on (``align3r bench table4``).
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from align3r.atomic import write_bytes
from align3r.eval.run.results import write_json_atomic, write_text_atomic
from align3r.eval.tables import METRICS, TableSpec, render, render_csv, render_markdown, table_document

OURS_COLOUR, PUBLISHED_COLOUR = "#1f77b4", "#bbbbbb"


def _number(value: Any) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else float(value)


def write_table(spec: TableSpec, summaries: Mapping[tuple[str, str], Mapping[str, Any]], out_dir: Path,
                fmt: str = "markdown") -> str:
    """Write ``table.md``, ``table.csv``, ``table.json`` and the figure ``table.png``
    (:func:`plot_table`) to ``out_dir``; returns the table in ``fmt``."""
    printed = render(spec, summaries, fmt)  # an unknown format fails before anything is written
    document = table_document(spec, summaries)
    write_text_atomic(out_dir / "table.md", render_markdown(spec, summaries))
    write_text_atomic(out_dir / "table.csv", render_csv(document["values"]))
    write_json_atomic(out_dir / "table.json", document)
    plot_table(spec, document["values"], out_dir / "table.png", machines=document["machines"])
    return printed


def plot_table(spec, values: Sequence[Mapping[str, Any]], path: Path, machines: Sequence[str] = ()) -> None:
    """Write the figure of a table to ``path`` (PNG, atomically).

    Args:
        spec: the ``align3r.eval.tables.TableSpec`` (title, columns, rows).
        values: its cells (``align3r.eval.tables.table_values``): ``ours``, ``published`` per
            row, dataset and metric.
        machines: where our times were measured (named in the caption when a panel shows a time).
    A missing number has no bar and is marked "—" where the bar would be.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)  # no display: render to a buffer
    import matplotlib.pyplot as plt

    panels = [(col, metric) for col in spec.columns for metric in col.metrics]
    labels = [row.label for row in spec.rows]
    cell = {(v["row"], v["dataset"], v["task"], v["metric"]): v for v in values}
    ncols = min(len(panels), 5)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 0.45 * len(labels) * nrows + 1.2 * nrows + 0.8),
                             squeeze=False)
    height = 0.38
    for ax, (col, metric) in zip(axes.flat, panels):
        name, better, fmt = METRICS[metric]
        ys = range(len(labels))
        top = 0.0
        for y, row in zip(ys, spec.rows):
            v = cell.get((row.name, col.dataset, col.task, metric), {})
            for offset, key, colour in ((-height / 2, "ours", OURS_COLOUR), (height / 2, "published", PUBLISHED_COLOUR)):
                number = _number(v.get(key))
                if number is None:
                    ax.text(0, y + offset, " —", va="center", ha="left", fontsize=7, color="#555555")
                    continue
                ax.barh(y + offset, number, height=height, color=colour)
                ax.text(number, y + offset, " " + fmt.format(number), va="center", ha="left", fontsize=7)
                top = max(top, number)
        ax.set_xlim(0, top * 1.35 if top > 0 else 1.0)
        ax.set_yticks(list(ys), labels if ax in axes[:, 0] else [""] * len(labels), fontsize=7)
        ax.invert_yaxis()
        ax.set_title(f"{col.label} {name}{(' ' + better) if better else ''}", fontsize=8)
        ax.tick_params(axis="x", labelsize=7)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in (OURS_COLOUR, PUBLISHED_COLOUR)]
    caption = spec.title + (f"\nour times: {', '.join(machines)}" if machines and any(
        m.startswith(("time", "pairs")) for _, m in panels) else "")
    fig.suptitle(caption, fontsize=9)
    fig.legend(handles, ["ours", "published"], loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.04, 1, 0.95))
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    write_bytes(path, buffer.getvalue(), hint="free some space or choose another results folder")


@dataclass(frozen=True)
class Table4Row:
    """One row of the supplementary's Table 4 beside ours: ``pairs`` of our graph on 30 frames and
    the published count, our measured seconds for one 30-frame video (None: not measured) and the
    published minutes."""

    label: str
    graph: str
    pairs: int
    published_pairs: int | None
    seconds: float | None
    published_minutes: float | None


def table4_report(rows: Sequence[Table4Row], machine: str, setting: str) -> str:
    """Table 4 as Markdown: our pairs and minutes beside the published ones, the machine named.

    ``setting`` says what was measured (network scale, frames, resolution), so that a CPU run
    with a tiny random network is never read as a reproduction of the paper's GPU times.
    """
    lines = ["### Supplementary Table 4: pairs and time for a 30-frame video, ours beside published", "",
             "| method | graph | pairs (ours / published) | time, min (ours / published) |", "|---|---|---:|---:|"]
    for row in rows:
        pub_pairs = "—" if row.published_pairs is None else str(row.published_pairs)
        ours_min = "—" if row.seconds is None else f"{row.seconds / 60:.2f}"
        pub_min = "—" if row.published_minutes is None else f"{row.published_minutes:.1f}"
        lines.append(f"| {row.label} | {row.graph} | {row.pairs} / {pub_pairs} | {ours_min} / {pub_min} |")
    lines += ["", f"Ours measured on: {machine}; {setting}.",
              "Published: Align3R supplementary, Table 4 (the paper does not name its GPU; the authors' issue "
              "tracker says about two minutes for a 30-frame video on an RTX 4090)."]
    return "\n".join(lines) + "\n"


def table4_published(config_root: Path | None = None) -> list[dict[str, Any]]:
    """The rows of Table 4 as the shipped configs hold them (``eval/table/supp_t4.yaml`` for the
    order, ``experiment/supp_t4/<row>.yaml`` for each): ``row``, ``label``, ``graph``,
    ``published_pairs``, ``published_minutes`` and ``source``."""
    import yaml

    from align3r.configs import config_dir

    root = Path(config_root) if config_root else config_dir()
    order = yaml.safe_load((root / "eval" / "table" / "supp_t4.yaml").read_text())["table"]["rows"]
    out = []
    for name in order:
        row = yaml.safe_load((root / "experiment" / "supp_t4" / f"{name}.yaml").read_text())
        published = (row.get("published") or {}).get("tum-pose") or {}
        out.append({"row": name, "label": str(row.get("label", name)), "graph": str(row["settings"]["graph"]),
                    "published_pairs": published.get("pairs"), "published_minutes": published.get("time_total_min"),
                    "source": str(row.get("source", ""))})
    return out

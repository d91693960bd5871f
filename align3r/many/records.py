"""Per-source records of a many-source run, and the summary merged from them.

Layout under the run's folder ``DIR``::

    DIR/<name>/            one source's outputs (``docs/outputs.md``), written atomically
    DIR/<name>.cache/      its run cache (interrupted runs resume from it)
    DIR/.records/<name>.json  its record, written atomically by whichever rank ran it
    DIR/summary.json, DIR/summary.csv  every record, written by rank 0 at the end

A source is finished when ``DIR/<name>/manifest.json`` is there: the output folder is swapped in
whole (``align3r.atomic``), so a manifest is never there without the rest.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from align3r.atomic import write_text

RECORDS = ".records"
STAGES = ("load", "decode", "priors", "views", "inference", "flow", "align", "export")
COLUMNS = ("name", "status", "frames", "pairs", *(f"{s}_s" for s in STAGES), "total_s", "peak_memory_gib",
           "memory", "rank", "device", "output", "source", "error")


def record_path(root: Path, name: str) -> Path:
    return root / RECORDS / f"{name}.json"


def read_record(root: Path, name: str) -> dict[str, Any] | None:
    """The record of source ``name``, or None (absent or unreadable: a torn write never counts)."""
    try:
        record = json.loads(record_path(root, name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def record_stamp(root: Path, name: str) -> int | None:
    """The record file's modification time (ns), or None: rank 0 waits for it to change."""
    try:
        return os.stat(record_path(root, name)).st_mtime_ns
    except OSError:
        return None


def write_record(root: Path, record: dict[str, Any]) -> None:
    path = record_path(root, record["name"])
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, json.dumps(record, indent=1, sort_keys=True), durable=True)


def is_finished(out_dir: Path) -> bool:
    """``out_dir`` holds a complete reconstruction (its manifest parses)."""
    try:
        return isinstance(json.loads((out_dir / "manifest.json").read_text(encoding="utf-8")), dict)
    except (OSError, ValueError):
        return False


def summary_rows(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per record, in :data:`COLUMNS` order (stage seconds as ``<stage>_s``)."""
    rows = []
    for r in records:
        seconds = r.get("seconds") or {}
        row = {k: r.get(k) for k in COLUMNS}
        row.update({f"{s}_s": seconds.get(s) for s in STAGES})
        rows.append(row)
    return rows


def write_summary(root: Path, records: Sequence[dict[str, Any]], *, renamed: Sequence[str] = (),
                  missing: Sequence[str] = ()) -> dict[str, Any]:
    """``summary.json`` (counts, renamed sources, sources without a record, every record) and
    ``summary.csv`` (:func:`summary_rows`) in ``root``. Returns the JSON's content."""
    counts = {s: sum(r.get("status") == s for r in records) for s in ("ok", "failed")}
    summary = {"sources": len(records) + len(missing), **counts, "missing": list(missing),
               "renamed": list(renamed), "records": list(records)}
    write_text(root / "summary.json", json.dumps(summary, indent=1, sort_keys=True), durable=True)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(summary_rows(records))
    write_text(root / "summary.csv", buffer.getvalue(), durable=True)
    return summary


def read_summary(root: str | os.PathLike) -> dict[str, Any] | None:
    """``root/summary.json`` as written by :func:`write_summary`, or None."""
    try:
        return json.loads((Path(root) / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def format_table(records: Sequence[dict[str, Any]]) -> str:
    """A plain-text table: one line per source (name, status, frames, pairs, seconds, error)."""
    lines = [f"{'source':<24} {'status':<7} {'frames':>6} {'pairs':>6} {'seconds':>8}  error"]
    for r in records:
        total = r.get("total_s")
        lines.append(f"{r['name'][:24]:<24} {r.get('status', '?'):<7} {r.get('frames') or '':>6} "
                     f"{r.get('pairs') or '':>6} {'' if total is None else f'{total:.1f}':>8}  {r.get('error') or ''}")
    return "\n".join(lines)

"""Result files: one JSON per sequence (written atomically), resume, and the experiment summary.

Layout under the results root::

    <results>/<experiment>/<sequence>.json     one record per sequence (align3r.eval.run.sequence);
                                               file name: :func:`safe_name` (``A/0000/left`` -> ``A__0000__left``)
    <results>/<experiment>/sequences.csv       one line per sequence: metrics, pairs, timings
    <results>/<experiment>/summary.json        the dataset figures and how they were averaged

Every JSON file is standard JSON: a value that is NaN (no usable sequence, a degenerate
trajectory) is written ``null``.

A record is reused by a later run only when its status is ``ok`` and its fingerprint (a hash of
the settings, the frame list, the prior source and files, the checkpoint; stored in the record as
``inputs``) equals the current one; anything else is recomputed. A record of another fingerprint
is *stale*: summaries count it apart from the missing sequences, with the inputs that differ. Dataset figures follow the official scripts: depth metrics are averaged over
sequences weighted by their valid-pixel counts, pose metrics uniformly over the sequences whose
trajectory admitted a Sim(3) alignment.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from align3r.atomic import write_text
from align3r.eval.depth_metrics import METRIC_NAMES, DepthResult, average_results
from align3r.eval.pose_metrics import POSE_METRIC_NAMES, PoseResult, average_pose_results

log = logging.getLogger(__name__)

DEPTH_KEYS = dict(zip(("abs_rel", "sq_rel", "rmse", "log_rmse", "delta1", "delta2", "delta3"), METRIC_NAMES))
"""Metric ids used in configs and summaries -> the metric names of ``depth_metrics``."""
POSE_KEYS = dict(zip(("ate", "rpe_trans", "rpe_rot"), POSE_METRIC_NAMES))
COST_KEYS = ("pairs", "time_priors", "time_inference", "time_flow", "time_align", "time_total")
"""Per-sequence means: pairs run through the network and stage wall times in seconds
(``time_total``: every stage, decoding and metrics included)."""


def safe_name(sequence: str) -> str:
    """A file name for a sequence name (FlyingThings3D names are paths: ``A/0000/left``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "__", sequence.replace("/", "__"))


def result_path(results: str | Path, experiment: str, sequence: str) -> Path:
    return Path(results) / experiment / f"{safe_name(sequence)}.json"


_RESULTS_HINT = "free some space or choose another results folder; finished sequences are kept"


def json_safe(value: Any) -> Any:
    """``value`` with every NaN / inf float replaced by None (standard JSON has no NaN: a metric
    without a value is written ``null``; :func:`number` reads it back as NaN)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def number(value: Any) -> float:
    """A stored metric as a float: ``null`` (written for NaN) reads as NaN."""
    return float("nan") if value is None else float(value)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as standard JSON (NaN / inf as ``null``) beside ``path`` and rename it over ``path``."""
    write_text(path, json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n", hint=_RESULTS_HINT)


def write_text_atomic(path: Path, text: str) -> None:
    write_text(path, text, hint=_RESULTS_HINT)


def read_record(path: Path) -> dict[str, Any] | None:
    """The record at ``path``, or None when missing or unreadable (then it is recomputed)."""
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable result file %s (%s); the sequence will be recomputed", path, exc)
        return None


def reusable(record: dict[str, Any] | None, fingerprint: str) -> bool:
    """Whether a stored record can stand for the current settings."""
    return record is not None and record.get("status") == "ok" and record.get("fingerprint") == fingerprint


def _depth_result(record: dict[str, Any]) -> DepthResult:
    m = record["metrics"]
    return DepthResult({k: number(v) for k, v in m["depth"].items()}, int(m["valid_pixels"]), number(m["scale"]),
                       number(m["shift"]), float("nan"), m.get("alignment", ""))


def _pose_result(record: dict[str, Any]) -> PoseResult:
    m = record["metrics"]
    values = [number(m["pose"][k]) for k in POSE_METRIC_NAMES]
    return PoseResult(*values, num_poses=int(m["num_poses"]), degenerate=bool(m["degenerate"]),
                      message=m.get("message", ""))


def sequence_row(record: dict[str, Any]) -> dict[str, Any]:
    """The flat per-sequence values: metric ids, pairs and stage times."""
    row: dict[str, Any] = {"sequence": record["sequence"], "status": record["status"],
                           "frames": record.get("num_frames")}
    if record["status"] == "ok":
        m = record["metrics"]
        if record["task"] == "depth":
            row.update({k: number(m["depth"][name]) for k, name in DEPTH_KEYS.items()})
            row["valid_pixels"] = m["valid_pixels"]
        else:
            row.update({k: number(m["pose"][name]) for k, name in POSE_KEYS.items()})
            row["degenerate"] = m["degenerate"]
        row.update(_costs(record))
    return row


def _costs(record: dict[str, Any]) -> dict[str, float]:
    t = record.get("timings", {})
    return {"pairs": number(record.get("num_pairs")),
            "time_priors": float(t.get("priors", 0.0)), "time_inference": float(t.get("inference", 0.0)),
            "time_flow": float(t.get("flow", 0.0)), "time_align": float(t.get("align", 0.0)),
            "time_total": float(sum(t.values()))}


def summarise(task: str, records: Sequence[dict[str, Any]], expected: Iterable[str] = (),
              stale: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The dataset figures of an experiment from its sequence records.

    ``stale``: sequence -> reason, for expected sequences whose record was computed with other
    settings (not counted, and told apart from the sequences without any record).

    Returns:
        ``metrics`` (metric id -> value; NaN without any usable sequence), ``costs`` (per-sequence
        means of :data:`COST_KEYS`), ``machines`` (where the timed records ran: the GPU's name or the
        CPU's), ``counts`` (expected, evaluated, in_mean — the sequences the
        metrics average —, skipped as degenerate, failed, stale, missing) and the averaging rule.
    """
    stale = dict(stale or {})
    ok = [r for r in records if r.get("status") == "ok"]
    failed = [r["sequence"] for r in records if r.get("status") != "ok"]
    present = {r["sequence"] for r in records}
    missing = [s for s in expected if s not in present and s not in stale]
    if task == "depth":
        results_d = [_depth_result(r) for r in ok]
        averaged = average_results(results_d)
        metrics = {k: averaged[name] for k, name in DEPTH_KEYS.items()}
        rule = "mean over sequences weighted by valid pixels (tool/depth_test.py)"
        degenerate: list[str] = []
        in_mean = sum(r.valid_pixels > 0 for r in results_d)  # a sequence without valid pixels has no weight
    else:
        results = [_pose_result(r) for r in ok]
        averaged = average_pose_results(results)
        metrics = {k: averaged[name] for k, name in POSE_KEYS.items()}
        rule = "uniform mean over sequences, degenerate trajectories skipped (tool/pose_test.py)"
        degenerate = [r["sequence"] for r, res in zip(ok, results) if res.degenerate]
        in_mean = len(ok) - len(degenerate)
    costs = {k: _mean([_costs(r)[k] for r in ok]) for k in COST_KEYS}
    machines = sorted({str((r.get("environment") or {}).get("machine") or (r.get("environment") or {}).get("device"))
                       for r in ok if r.get("environment")})
    return {"task": task, "metrics": metrics, "costs": costs, "machines": machines, "averaging": rule,
            "counts": {"expected": len(present | set(missing) | set(stale)), "evaluated": len(ok), "in_mean": in_mean,
                       "degenerate": len(degenerate),
                       "failed": len(failed), "stale": len(stale), "missing": len(missing)},
            "degenerate": degenerate, "failed": failed, "stale": stale, "missing": missing}


def _mean(values: list[float]) -> float:
    values = [v for v in values if not math.isnan(v)]
    return float(sum(values) / len(values)) if values else float("nan")


def write_experiment_outputs(exp_dir: Path, task: str, records: Sequence[dict[str, Any]],
                             expected: Sequence[str], extra: dict[str, Any] | None = None, *,
                             stale: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Write ``sequences.csv`` and ``summary.json`` of one experiment; returns the summary."""
    summary = summarise(task, records, expected, stale)
    summary.update(extra or {})
    rows = [sequence_row(r) for r in records]
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["sequence"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(exp_dir / "sequences.csv", buffer.getvalue())
    write_json_atomic(exp_dir / "summary.json", summary)
    return summary

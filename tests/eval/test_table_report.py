"""`align3r eval table supp_t3 --aggregate-only` on a results folder of per-sequence records (as
`align3r eval` writes them): every cell prints ours / published / Δ, a missing number is "—", and
the Markdown, CSV, JSON and PNG written beside the results hold the same values; Table 4's pair
counts come from our graph builders; every number of the paper is in the configs."""

from __future__ import annotations

import contextlib
import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest

from align3r.cli import main
from align3r.eval.depth_metrics import METRIC_NAMES
from align3r.eval.pose_metrics import POSE_METRIC_NAMES
from align3r.eval.run.sequence import RECORD_SCHEMA

SEQUENCES = {"sintel": ["alley_2", "temple_3"], "tum": ["rgbd_dataset_freiburg3_walking_xyz",
                                                        "rgbd_dataset_freiburg3_sitting_static"],
             "bonn": ["balloon2", "crowd2"]}
SKIPPED = ("align3r", "bonn-depth")  # no record at all: ours is "n/a", the Δ "—"
DEPTH_IDS = ("abs_rel", "sq_rel", "rmse", "log_rmse", "delta1", "delta2", "delta3")


def eval_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["eval", *args])
    return rc, out.getvalue(), err.getvalue()


def _value(row_index: int, col_index: int, metric_index: int, seq_index: int) -> float:
    """A distinct, plausible number per cell and sequence."""
    return 0.05 + 0.1 * row_index + 0.013 * col_index + 0.004 * metric_index + 0.02 * seq_index


def _record(exp, sequence: str, task: str, values: list[float], pixels: int, seconds: float) -> dict:
    """A record as `align3r eval` writes it (align3r/eval/run/sequence.py), with made-up metrics."""
    if task == "depth":
        metrics = {"depth": dict(zip(METRIC_NAMES, values)), "valid_pixels": pixels, "scale": 1.0, "shift": 0.0,
                   "alignment": "lad"}
    else:
        metrics = {"pose": dict(zip(POSE_METRIC_NAMES, values)), "num_poses": 30, "degenerate": False}
    return {"schema": RECORD_SCHEMA, "status": "ok", "dataset": exp.dataset.to_dict(), "sequence": sequence,
            "task": task, "num_frames": 30, "num_pairs": 250, "settings": exp.settings.for_sequence(sequence).to_dict(),
            "metrics": metrics, "timings": {"inference": seconds, "align": 2 * seconds},
            "environment": {"device": "cpu", "machine": "CPU (test, 2 cores)"}}


def overrides(results: Path) -> list[str]:
    return [f"data_root={results.parent / 'no-data'}", f"results={results}", "device=cpu", "progress=false",
            f"data.sintel.sequences=[{','.join(SEQUENCES['sintel'])}]"]


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    """A results folder for supp_t3 with two records per experiment (one experiment left empty),
    and the expected means per (row, column key, metric)."""
    from align3r.commands.eval import compose
    from align3r.eval.run import table_plan

    results = tmp_path_factory.mktemp("table") / "results"
    cfg = compose("eval/table/supp_t3", overrides(results))
    spec, plan = table_plan(cfg, "supp_t3")
    rows = [r.name for r in spec.rows]
    keys = [c.key for c in spec.columns]
    expected = {}
    for (row, key), exp in plan:
        if (row, key) == SKIPPED:
            continue
        dataset, task = key.rsplit("-", 1)
        ids = DEPTH_IDS if task == "depth" else ("ate", "rpe_trans", "rpe_rot")
        pixels = (1000, 3000)
        per_seq = []
        for s, sequence in enumerate(SEQUENCES[dataset]):
            values = [_value(rows.index(row), keys.index(key), m, s) for m in range(len(ids))]
            per_seq.append(values)
            record = _record(exp, sequence, task, values, pixels[s], seconds=1.0 + s)
            path = results / exp.name / f"{sequence}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(record))
        weights = pixels if task == "depth" else (1, 1)  # depth: by valid pixels (depth_test.py), pose: uniform
        means = np.average(np.array(per_seq), axis=0, weights=weights)
        expected.update({(row, key, metric): float(v) for metric, v in zip(ids, means)})
    rc, out, err = eval_cli("table", "supp_t3", "--aggregate-only", "--quiet", *overrides(results))
    assert rc == 0, err
    return results, spec, expected, out


def _published(spec, row: str, key: str, metric: str):
    value = next(r for r in spec.rows if r.name == row).published.get(key, {}).get(metric)
    return None if value is None else float(value)


def _markdown_cells(markdown: str, label: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip().strip("|").split("|")][1:]


def test_every_cell_prints_ours_published_and_the_difference(table):
    results, spec, expected, out = table
    assert out.startswith("### Supplementary Table 3") and (results / "supp_t3" / "table.md").read_text() == out
    header = next(line for line in out.splitlines() if line.startswith("| Method |"))
    assert "Sintel Abs Rel ↓ | Sintel δ<1.25 ↑ | Sintel ATE ↓" in header and "Bonn RPE rot ↓ |" in header
    seen_missing_published = seen_missing_ours = 0
    for row in spec.rows:
        cells = _markdown_cells(out, row.label)
        assert len(cells) == 5 * 3
        for cell, (col, metric) in zip(cells, [(c, m) for c in spec.columns for m in c.metrics]):
            ours_text, published_text, delta_text = cell.split(" / ")
            ours, published = expected.get((row.name, col.key, metric)), _published(spec, row.name, col.key, metric)
            assert ours_text == ("n/a" if ours is None else f"{ours:.3f}")
            assert published_text == ("—" if published is None else f"{published:.3f}")
            if ours is None or published is None:
                assert delta_text == "—"
                seen_missing_published += published is None
                seen_missing_ours += ours is None
            else:
                delta = ours - published
                assert delta_text == f"{delta:+.3f} ({delta / published:+.1%})"
    assert seen_missing_published == 15 and seen_missing_ours == 2  # the MonST3R w/o flow row; the empty cells
    assert "Cells: ours / published / Δ = ours − published" in out
    assert "row 'Ours w flow'; primary (the supplementary PDF)" in out
    assert "- Align3R (Depth Pro) w/o flow loss / Bonn depth: no result" in out.splitlines()


def test_the_printed_cell_for_a_known_value(table):
    """One cell by hand: ours w/ flow, TUM ATE = mean of 0.05 + 0.1·5 + 0.013·3 + {0, 0.02}."""
    out = table[3]
    cells = _markdown_cells(out, "Align3R (Depth Pro) w/ flow loss")
    ours = 0.05 + 0.5 + 0.039 + 0.01
    assert cells[7] == f"{ours:.3f} / 0.012 / {ours - 0.012:+.3f} ({(ours - 0.012) / 0.012:+.1%})"
    assert cells[7] == "0.599 / 0.012 / +0.587 (+4891.7%)"


def test_csv_and_json_hold_every_cell_with_its_difference_and_source(table):
    results, spec, expected, _ = table
    folder = results / "supp_t3"
    document = json.loads((folder / "table.json").read_text())
    rows = list(csv.DictReader(io.StringIO((folder / "table.csv").read_text())))
    assert document["table"] == "supp_t3" and document["machines"] == ["CPU (test, 2 cores)"]
    assert len(rows) == len(document["values"]) == len(spec.rows) * 15
    for line, value in zip(rows, document["values"]):
        key = f"{value['dataset']}-{value['task']}"
        ours, published = expected.get((value["row"], key, value["metric"])), _published(
            spec, value["row"], key, value["metric"])
        assert value["published"] == published and line["published"] == ("" if published is None else str(published))
        if ours is None:
            assert value["ours"] is None and value["delta"] is None and line["ours"] == ""
        else:
            assert value["ours"] == pytest.approx(ours, rel=1e-12) and float(line["ours"]) == pytest.approx(ours)
        if ours is not None and published is not None:
            assert value["delta"] == pytest.approx(ours - published, rel=1e-9)
            assert value["delta_rel"] == pytest.approx((ours - published) / published, rel=1e-9)
            assert float(line["delta"]) == pytest.approx(ours - published)
        else:
            assert value["delta"] is None and line["delta"] == "" and line["delta_rel"] == ""
        assert value["published_source"].startswith("Align3R supplementary, Table 3")


def test_printed_csv_and_json_are_the_files(table):
    results, _, _, _ = table
    for fmt, name in (("csv", "table.csv"), ("json", "table.json")):
        rc, out, err = eval_cli("table", "supp_t3", "--aggregate-only", "--quiet", "--format", fmt,
                                *overrides(results))
        assert rc == 0, err
        written = (results / "supp_t3" / name).read_text()
        assert (json.loads(out) == json.loads(written)) if fmt == "json" else (out == written)


def test_the_figure_is_a_non_blank_png(table):
    from PIL import Image

    results, _, _, _ = table
    path = results / "supp_t3" / "table.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float64)
    assert pixels.shape[0] > 300 and pixels.shape[1] > 800  # 15 panels, 5 per line
    assert pixels.std() > 10  # bars and text, not a blank canvas
    assert (pixels < 128).mean() > 0.01


def test_table4_pair_counts_are_those_of_our_graph_builders():
    """The published pairs of supp. Table 4 (configs) equal our graphs on 30 frames, built from
    each row's evaluation settings and from the builders directly."""
    from align3r.commands.eval import compose
    from align3r.eval.run import table_plan
    from align3r.eval.run.stages import build_eval_graph
    from align3r.pairs import make_graph, make_grouped_graph

    spec, plan = table_plan(compose("eval/table/supp_t4", []), "supp_t4")
    published = {row.name: row.published["tum-pose"]["pairs"] for row in spec.rows}
    assert published == {"swin10": 600, "swinstride5": 250, "grouped_paper": 138}
    for (row, _), exp in plan:
        graph, info = build_eval_graph(exp.settings, 30)
        assert graph.num_edges == info.num_pairs == published[row], row
    assert make_graph("swin-10", 30, symmetrize=True).num_edges == 600  # DUSt3R: swin-10, cyclic, symmetric
    assert make_graph("swinstride-5-noncyclic", 30, symmetrize=True).num_edges == 250  # MonST3R
    assert make_grouped_graph(30, "paper").num_edges == 138  # ours: 3 groups of 10 frames
    minutes = {row.name: row.published["tum-pose"]["time_total_min"] for row in spec.rows}
    assert minutes == {"swin10": 2.9, "swinstride5": 2.6, "grouped_paper": 1.8}


PAPER = {  # shared/paper/README.md, (table, row) -> {column key: {metric: value}}
    ("supp_t1", "depth_map"): {"sintel-depth": {"abs_rel": 0.306, "delta1": 0.613}},
    ("supp_t1", "scale_map"): {"sintel-depth": {"abs_rel": 0.419, "delta1": 0.604}},
    ("supp_t2", "depthmap"): {"sintel-depth": {"abs_rel": 0.278, "delta1": 0.632},
                              "tum-depth": {"abs_rel": 0.121, "delta1": 0.862},
                              "sintel-pose": {"ate": 0.216, "rpe_trans": 0.111, "rpe_rot": 0.381},
                              "tum-pose": {"ate": 0.015, "rpe_trans": 0.012, "rpe_rot": 0.341}},
    ("supp_t2", "pointmap"): {"sintel-depth": {"abs_rel": 0.263, "delta1": 0.641},
                              "tum-depth": {"abs_rel": 0.112, "delta1": 0.884},
                              "sintel-pose": {"ate": 0.128, "rpe_trans": 0.042, "rpe_rot": 0.432},
                              "tum-pose": {"ate": 0.012, "rpe_trans": 0.010, "rpe_rot": 0.327}},
    ("video_depth", "dust3r"): {"sintel-depth": {"abs_rel": 0.422}, "pointodyssey-depth": {"abs_rel": 0.184},
                                "flyingthings3d-depth": {"abs_rel": 0.140}, "bonn-depth": {"abs_rel": 0.154}},
    ("video_depth", "monst3r"): {"sintel-depth": {"abs_rel": 0.335}, "pointodyssey-depth": {"abs_rel": 0.089},
                                 "flyingthings3d-depth": {"abs_rel": 0.132}, "bonn-depth": {"abs_rel": 0.082}},
    ("video_depth", "align3r_depthpro"): {"sintel-depth": {"abs_rel": 0.263}, "pointodyssey-depth": {"abs_rel": 0.077},
                                          "flyingthings3d-depth": {"abs_rel": 0.102},
                                          "bonn-depth": {"abs_rel": 0.068}},
}
T3 = {"dust3r": ((0.515, 0.533, 0.601, 0.214, 11.426), (0.172, 0.766, 0.093, 0.035, 1.708),
                 (0.121, 0.846, 2.166, 0.650, 1.169)),
      "dust3r_flow": ((0.512, 0.549, 0.327, 0.111, 1.014), (0.177, 0.768, 0.017, 0.014, 0.508),
                      (0.113, 0.874, 0.754, 0.700, 0.598)),
      "monst3r_flow": ((0.353, 0.570, 0.111, 0.044, 0.780), (0.124, 0.846, 0.020, 0.014, 0.478),
                       (0.060, 0.971, 0.686, 0.595, 0.593)),
      "align3r": ((0.314, 0.562, 0.204, 0.164, 2.305), (0.099, 0.879, 0.043, 0.025, 0.630),
                  (0.053, 0.977, 1.250, 0.630, 0.607)),
      "align3r_flow": ((0.317, 0.577, 0.128, 0.042, 0.432), (0.094, 0.897, 0.012, 0.010, 0.327),
                       (0.052, 0.977, 0.673, 0.570, 0.576))}
for _row, _values in T3.items():
    PAPER[("supp_t3", _row)] = {
        key: dict(zip(ids, values[:2] if task == "depth" else values[2:]))
        for dataset, values in zip(("sintel", "tum", "bonn"), _values)
        for key, task, ids in ((f"{dataset}-depth", "depth", ("abs_rel", "delta1")),
                               (f"{dataset}-pose", "pose", ("ate", "rpe_trans", "rpe_rot")))}
for _row, _pairs, _minutes in (("swin10", 600, 2.9), ("swinstride5", 250, 2.6), ("grouped_paper", 138, 1.8)):
    PAPER[("supp_t4", _row)] = {"tum-pose": {"pairs": _pairs, "time_total_min": _minutes}}


@pytest.mark.parametrize("table_name", ["supp_t1", "supp_t2", "supp_t3", "supp_t4", "video_depth", "camera_pose"])
def test_every_published_number_is_in_its_row_with_its_source(table_name):
    """The configs hold exactly the paper's numbers (shared/paper/README.md) and null elsewhere;
    each row's source names its table and whether it is primary or secondary."""
    from align3r.commands.eval import compose
    from align3r.eval.run import table_plan

    spec, _ = table_plan(compose(f"eval/table/{table_name}", []), table_name)
    for row in spec.rows:
        paper = PAPER.get((table_name, row.name), {})
        for col in spec.columns:
            for metric in col.metrics:
                got = (row.published.get(col.key) or {}).get(metric)
                assert got == paper.get(col.key, {}).get(metric), (table_name, row.name, col.key, metric)
        if paper:
            secondary = table_name == "video_depth"
            assert row.source.endswith("secondary (paper summary), unverified against the PDF" if secondary
                                       else "primary (the supplementary PDF)") or (
                table_name == "supp_t4" and "primary (the supplementary PDF; the paper does not name its GPU)"
                in row.source), row.source
            assert ("Table" in row.source) or ("table" in row.source)
    covered = {(t, r) for t, r in PAPER if t == table_name}
    assert covered <= {(table_name, r.name) for r in spec.rows}


def test_table4_report_puts_published_minutes_beside_ours_and_names_the_machine():
    """`align3r bench table4` prints this report (its run is timed by hand: docs/benchmarks.md)."""
    from align3r.eval.report import Table4Row, table4_published, table4_report

    rows = table4_published()
    assert [(r["row"], r["graph"], r["published_pairs"], r["published_minutes"]) for r in rows] == [
        ("swin10", "swin-10", 600, 2.9), ("swinstride5", "swinstride-5-noncyclic", 250, 2.6),
        ("grouped_paper", "grouped-paper", 138, 1.8)]
    measured = [Table4Row(r["label"], r["graph"], r["published_pairs"], r["published_pairs"], s, r["published_minutes"])
                for r, s in zip(rows, (90.0, 30.0, None))]
    text = table4_report(measured, "CPU (test machine)", "tiny random networks; NOT the paper's setting")
    assert "| swin-10 (cyclic) | swin-10 | 600 / 600 | 1.50 / 2.9 |" in text
    assert "| swinstride-5-noncyclic | swinstride-5-noncyclic | 250 / 250 | 0.50 / 2.6 |" in text
    assert "| keyframes + clips of 10 | grouped-paper | 138 / 138 | — / 1.8 |" in text
    assert "Ours measured on: CPU (test machine); tiny random networks; NOT the paper's setting." in text

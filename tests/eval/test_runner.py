"""The evaluation runner's parts: protocol graphs and clip sizes, settings, prior files, the
depth-map prior input, summaries, sharding, and the Markdown tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from align3r.errors import InputError
from align3r.eval.run import EvalSettings, summarise
from align3r.eval.run.priors import CacheFilesPrior
from align3r.eval.run.stages import build_eval_graph, clip_size_chain
from align3r.eval.tables import render_markdown, table_from_dict
from align3r.priors.official_cache import write_official_cache
from align3r.priors.types import DepthPrior


def _official_clip_sizes(counts, start, carry):
    """depth_test.py's loop, written out: decrement while N % c is 0 or 1 or c > N."""
    sizes, c = [], start
    for n in counts:
        c = c if carry else start
        while n % c in (0, 1) or c > n:
            c -= 1
        sizes.append(c)
    return sizes


def test_clip_sizes_follow_depth_test_and_carry_over_between_sequences():
    counts = [50, 50, 21, 33, 50, 20, 40, 110, 50]  # Sintel-like lengths, then Bonn's 110
    assert clip_size_chain(counts, 20, carry=True) == _official_clip_sizes(counts, 20, carry=True)
    assert clip_size_chain(counts, 20, carry=False) == _official_clip_sizes(counts, 20, carry=False)
    assert clip_size_chain(counts, 20, carry=True)[:6] == [20, 20, 19, 19, 19, 18]
    assert clip_size_chain(counts, 20, carry=False)[:6] == [20, 20, 19, 20, 20, 18]


@pytest.mark.parametrize(("graph", "frames", "pairs"), [
    # official `tool/depth_test.py`, `my_make_pairs`: paper era, c = 20
    ("grouped-depth-test", 30, 1 + 190 + 45),
    ("grouped-depth-test", 110, 15 + 5 * 190 + 45),
    ("grouped-paper", 30, 138),                 # the supplementary's count
    ("swin-10", 30, 600),
    ("swinstride-5-noncyclic", 30, 250),
    ("complete", 6, 30),
])
def test_protocol_graphs_have_the_reference_pair_counts(graph, frames, pairs):
    settings = EvalSettings(graph=graph, clip_size_start=20)
    g, info = build_eval_graph(settings, frames)
    assert g.num_edges == info.num_pairs == pairs


def test_pose_protocol_caps_the_window_like_pose_test():
    settings = EvalSettings(task="pose", graph="swinstride-5-noncyclic", clamp_window="official")
    _, info = build_eval_graph(settings, 9)
    assert info.name == "swinstride-4"  # upstream drops -noncyclic when it caps K
    _, info = build_eval_graph(EvalSettings(task="pose", graph="swinstride-5-noncyclic", clamp_window="keep-suffix"), 9)
    assert info.name == "swinstride-4-noncyclic"
    _, info = build_eval_graph(EvalSettings(graph="complete", symmetrize=False), 5)
    assert info.num_pairs == 10 and info.mode == "one problem"


def test_grouped_graph_layout_and_single_clip():
    g, info = build_eval_graph(EvalSettings(graph="grouped-depth-test"), 6, clip_size=4)
    assert (info.keyframes, info.clips, info.num_pairs) == ([0, 4], [[0, 4], [4, 6]], 1 + 6 + 1)
    g, info = build_eval_graph(EvalSettings(graph="grouped-depth-test", clip_size_start=20), 4)
    assert info.mode == "one problem (single clip)" and g.num_edges == 6 and not g.symmetric


def test_settings_reject_unknown_keys_and_merge_sequence_overrides():
    with pytest.raises(InputError, match="unknown evaluation setting"):
        EvalSettings.from_dict({"grpah": "complete"})
    with pytest.raises(InputError, match="carry_clip_size needs a grouped graph"):
        EvalSettings(graph="complete", carry_clip_size=True)
    with pytest.raises(InputError, match="prior representation"):
        EvalSettings(prior_input="normals")
    s = EvalSettings.from_dict({"align_overrides": {"iterations": 5, "lr": 0.01},
                                "sequence_overrides": {"temple_3": {"align_overrides": {"flow_threshold": 10.0}}}})
    t3 = s.for_sequence("temple_3")
    assert dict(t3.align_overrides) == {"iterations": 5, "lr": 0.01, "flow_threshold": 10.0}
    assert dict(s.for_sequence("alley_2").align_overrides) == {"iterations": 5, "lr": 0.01}
    assert t3.sequence_overrides == {}


def test_cache_files_prior_reads_the_official_files(tmp_path):
    depth = np.linspace(1, 5, 12 * 16, dtype=np.float32).reshape(12, 16)
    depth[0, 0] = 0  # a hole, filled from its neighbour
    write_official_cache(tmp_path / "a.npz", DepthPrior(depth, 21.0, "depth"), "depthpro")
    write_official_cache(tmp_path / "b.npz", DepthPrior(1 / depth[::2, ::2].clip(0.5), None, "disparity"),
                         "depthanything")
    image = np.zeros((12, 16, 3), np.uint8)
    pro = CacheFilesPrior([tmp_path / "a.npz"], "depth").predict([image])[0]
    assert pro.focal_px == pytest.approx(21.0) and pro.kind == "depth" and pro.depth[0, 0] > 0
    np.testing.assert_array_equal(pro.depth[1:], depth[1:])
    anything = CacheFilesPrior([tmp_path / "b.npz"], "disparity").predict([image])[0]
    # at its own size (the views bring it to the frame, the official way where well-defined)
    assert anything.depth.shape == (6, 8) and anything.focal_px is None
    np.testing.assert_allclose(anything.depth, 1 / depth[::2, ::2].clip(0.5), rtol=1e-6)
    write_official_cache(tmp_path / "c.npz", DepthPrior(depth[:, :8], 21.0, "depth"), "depthpro")
    with pytest.raises(InputError, match="aspect ratios differ"):  # not this frame's map
        CacheFilesPrior([tmp_path / "c.npz"], "depth").predict([image])
    with pytest.raises(InputError, match="2 prior files for 1 frames"):
        CacheFilesPrior([tmp_path / "a.npz"] * 2, "depth").predict([image])


def test_depthmap_prior_input_is_the_normalised_depth_on_three_channels(fixtures_dir):
    from align3r.io import make_views
    from align3r.priors.pointmap import prior_depthmap, prior_input_map, prior_pointmap

    z = np.load(fixtures_dir / "prior" / "00000_pred_depth_depthpro.npz")
    depth, focal = z["depth"], float(z["focallength_px"])
    pointmap = prior_pointmap(depth, focal)
    depthmap = prior_depthmap(depth)
    assert depthmap.shape == pointmap.shape and depthmap.dtype == np.float32
    for c in range(3):  # bit for bit the point map's Z channel, on every channel
        np.testing.assert_array_equal(depthmap[..., c], pointmap[..., 2])
    assert depthmap.min() == 0 and depthmap.max() == 1
    np.testing.assert_array_equal(prior_input_map(depth, focal, "depthmap"), depthmap)
    np.testing.assert_array_equal(prior_input_map(depth, focal), pointmap)
    with pytest.raises(InputError, match="constant"):
        prior_depthmap(np.full((8, 8), 3.0, np.float32))
    frames = [np.random.default_rng(0).integers(0, 255, (*depth.shape, 3), dtype=np.uint8)] * 2
    priors = [DepthPrior(depth, focal, "depth")] * 2
    as_points = make_views(frames, 512, crop=False, priors=priors)
    as_depth = make_views(frames, 512, crop=False, priors=priors, prior_input="depthmap")
    assert torch.equal(as_points.rgb, as_depth.rgb)
    for c in range(3):  # the same resampling: each channel is the resampled Z channel
        torch.testing.assert_close(as_depth.prior_pts3d[..., c], as_points.prior_pts3d[..., 2], rtol=0, atol=1e-6)
    with pytest.raises(InputError, match="prior representation"):
        make_views(frames, 512, priors=priors, prior_input="disparity")


def _depth_record(name, abs_rel, pixels, status="ok"):
    metrics = {"Abs Rel": abs_rel, "Sq Rel": 0.0, "RMSE": 0.0, "Log RMSE": 0.0, "δ < 1.25": 1 - abs_rel,
               "δ < 1.25^2": 1.0, "δ < 1.25^3": 1.0}
    return {"sequence": name, "status": status, "task": "depth", "num_pairs": 10, "timings": {"inference": 2.0},
            "metrics": {"depth": metrics, "valid_pixels": pixels, "scale": 1.0, "shift": 0.0}}


def _pose_record(name, ate, degenerate=False):
    nan = float("nan")
    return {"sequence": name, "status": "ok", "task": "pose", "num_pairs": 20, "timings": {"align": 1.0},
            "metrics": {"pose": {"ATE": nan if degenerate else ate, "RPE trans": nan if degenerate else ate / 2,
                                 "RPE rot": nan if degenerate else 1.0},
                        "num_poses": 30, "degenerate": degenerate, "message": ""}}


def test_summaries_average_like_the_official_scripts():
    depth = summarise("depth", [_depth_record("a", 0.1, 100), _depth_record("b", 0.4, 300),
                                {"sequence": "c", "status": "oom"}], expected=["a", "b", "c", "d"])
    assert depth["metrics"]["abs_rel"] == pytest.approx((0.1 * 100 + 0.4 * 300) / 400)  # weighted by pixels
    assert depth["counts"].items() >= {"expected": 4, "evaluated": 2, "in_mean": 2, "degenerate": 0, "failed": 1,
                                       "missing": 1}.items()
    assert depth["costs"]["pairs"] == 10 and depth["costs"]["time_inference"] == 2.0
    pose = summarise("pose", [_pose_record("a", 0.2), _pose_record("b", 0.4), _pose_record("c", 0, True)])
    assert pose["metrics"]["ate"] == pytest.approx(0.3) and pose["degenerate"] == ["c"]  # degenerate skipped
    assert (pose["counts"]["evaluated"], pose["counts"]["in_mean"]) == (3, 2)
    assert math.isnan(summarise("pose", [])["metrics"]["ate"])


def test_markdown_puts_ours_beside_published_and_notes_gaps():
    spec = table_from_dict("t", {"title": "T", "columns": [{"dataset": "sintel", "task": "depth",
                                                            "metrics": ["abs_rel", "delta1"]},
                                                           {"dataset": "tum", "task": "pose", "metrics": ["ate"]}]},
                           {"a": {"label": "Ours", "published": {"sintel-depth": {"abs_rel": 0.263}},
                                  "source": "Table 9"}})
    depth = summarise("depth", [_depth_record("x", 0.25, 10)], expected=["x", "y"])
    md = render_markdown(spec, {("a", "sintel-depth"): depth})
    assert "| Method | Sintel Abs Rel ↓ | Sintel δ<1.25 ↑ | TUM-dynamics ATE ↓ |" in md
    assert "| Ours | 0.250 / 0.263 / -0.013 (-4.9%) | 0.750 / — / — | — / — / — |" in md
    assert "Ours / Sintel: 1 of 2 sequences in the mean (1 missing)" in md
    assert "Ours / TUM-dynamics: not evaluated" in md and "Published: Table 9." in md
    with pytest.raises(InputError, match="unknown column"):
        table_from_dict("t", {"columns": [{"dataset": "tum", "task": "pose", "metrics": ["ate"]}]},
                        {"a": {"published": {"tum-depth": {"abs_rel": 1}}}})
    with pytest.raises(InputError, match="unknown or missing metrics"):
        table_from_dict("t", {"columns": [{"dataset": "tum", "task": "pose", "metrics": ["abs_rel"]}]}, {"a": {}})


def _strict_json(text: str):
    """Parse as standard JSON: NaN / Infinity literals are an error."""
    import json

    def reject(constant):
        raise ValueError(f"non-standard JSON constant {constant}")

    return json.loads(text, parse_constant=reject)


def test_degenerate_sequences_are_not_counted_in_the_mean(tmp_path):
    """A degenerate trajectory is left out of the pose mean: the note and table.csv / table.json
    count the sequences the cell averages, not every evaluated one."""
    import csv

    from align3r.eval.report import write_table
    from align3r.eval.tables import table_values

    spec = table_from_dict("t", {"columns": [{"dataset": "tum", "task": "pose", "metrics": ["ate"]}]},
                           {"a": {"label": "Ours"}})
    pose = summarise("pose", [_pose_record("x", 0.2), _pose_record("y", 0.4), _pose_record("z", 0, True)],
                     expected=["x", "y", "z", "w"])
    md = write_table(spec, {("a", "tum-pose"): pose}, tmp_path)
    assert "| Ours | 0.300 / — / — |" in md
    assert "Ours / TUM-dynamics: 2 of 4 sequences in the mean (1 missing, 1 degenerate)" in md
    [value] = table_values(spec, {("a", "tum-pose"): pose})
    assert (value["sequences"], value["expected"]) == (2, 4)
    [row] = list(csv.DictReader((tmp_path / "table.csv").open()))
    assert (row["sequences"], row["expected"]) == ("2", "4")
    assert _strict_json((tmp_path / "table.json").read_text())["values"][0]["sequences"] == 2
    only = summarise("pose", [_pose_record("z", 0, True)])  # nothing usable: the cell is n/a, 0 in the mean
    md = render_markdown(spec, {("a", "tum-pose"): only})
    assert "| Ours | n/a / — / — |" in md and "0 of 1 sequences in the mean (1 degenerate)" in md
    empty = summarise("depth", [_depth_record("p", 0.1, 100), _depth_record("q", 0.3, 0)])  # no valid GT in q
    assert empty["counts"]["in_mean"] == 1 and empty["metrics"]["abs_rel"] == pytest.approx(0.1)
    depth_spec = table_from_dict("t", {"columns": [{"dataset": "sintel", "task": "depth", "metrics": ["abs_rel"]}]},
                                 {"a": {"label": "Ours"}})
    assert "1 of 2 sequences in the mean (1 without valid ground truth)" in render_markdown(
        depth_spec, {("a", "sintel-depth"): empty})


def test_published_sources_follow_the_rows_and_delta_is_a_fraction():
    columns = [{"dataset": "sintel", "task": "depth", "metrics": ["abs_rel", "delta1"]}]
    rows = {"zeta": {"label": "Z", "source": "Paper, row 'Z'; not transcribed"},
            "alpha": {"label": "A", "source": "Paper, row 'A'; not transcribed"},
            "beta": {"label": "B", "source": "Paper, row 'Z'; not transcribed"},  # the same source again
            "gamma": {"label": "G"}}  # none of its own: the table's
    spec = table_from_dict("t", {"title": "T", "source": "Paper, table 1", "columns": columns}, rows)
    md = render_markdown(spec, {})
    assert ("Published: Paper, row 'Z'; not transcribed | Paper, row 'A'; not transcribed | Paper, table 1."
            in md.splitlines())
    assert "δ as fractions (0–1), not percent" in md
    pose = table_from_dict("p", {"title": "P", "columns": [{"dataset": "tum", "task": "pose", "metrics": ["ate"]}]},
                           {"a": {"label": "A"}})
    assert "fraction" not in render_markdown(pose, {})  # said only where a δ column is shown


def test_result_files_are_standard_json_and_null_reads_back_as_nan(tmp_path):
    """NaN metrics (a degenerate trajectory, a per-frame fit, an empty mean) are written as null,
    and the readers take null for NaN: summaries and sequences.csv come out as from NaN."""
    from align3r.eval.run.results import (
        read_record,
        sequence_row,
        write_experiment_outputs,
        write_json_atomic,
    )

    degenerate = _pose_record("z", 0, True)
    write_json_atomic(tmp_path / "z.json", degenerate)
    text = (tmp_path / "z.json").read_text()
    assert "NaN" not in text and _strict_json(text)["metrics"]["pose"]["ATE"] is None
    stored = [read_record(tmp_path / "z.json"), _pose_record("x", 0.2)]
    summary = write_experiment_outputs(tmp_path / "exp", "pose", stored, ["x", "z"])
    assert summary["metrics"]["ate"] == pytest.approx(0.2) and summary["degenerate"] == ["z"]
    assert math.isnan(sequence_row(stored[0])["ate"])
    assert _strict_json((tmp_path / "exp" / "summary.json").read_text())["counts"]["in_mean"] == 1
    per_frame = _depth_record("f", 0.1, 100)
    per_frame["metrics"].update(scale=float("nan"), shift=float("nan"))  # per-frame mode: no sequence scale
    write_json_atomic(tmp_path / "f.json", per_frame)
    empty = write_experiment_outputs(tmp_path / "d", "depth", [read_record(tmp_path / "f.json")], ["f", "g"])
    assert empty["metrics"]["abs_rel"] == pytest.approx(0.1)
    nothing = write_experiment_outputs(tmp_path / "n", "depth", [], ["f"])
    assert math.isnan(nothing["metrics"]["abs_rel"])  # in memory NaN, on disk null
    assert _strict_json((tmp_path / "n" / "summary.json").read_text())["metrics"]["abs_rel"] is None


def test_waiting_for_other_ranks_ends_when_results_stop_appearing(tmp_path):
    """wait_for_results returns as soon as every record is there, keeps waiting while records keep
    appearing, and gives up idle_s after the last one (a dead rank), returning what is missing."""
    import json
    import threading
    import time

    from align3r.eval.run.runner import PlannedSequence
    from align3r.eval.run.shards import wait_for_results

    planned = [PlannedSequence(None, None, None, None, None, f"fp{i}", tmp_path / f"s{i}.json") for i in range(3)]
    (tmp_path / "s0.json").write_text(json.dumps({"fingerprint": "fp0"}))
    (tmp_path / "s2.json").write_text(json.dumps({"fingerprint": "stale"}))  # another run's record
    start = time.monotonic()
    assert [p.path.name for p in wait_for_results(planned, idle_s=0.3, poll_s=0.05)] == ["s1.json", "s2.json"]
    assert 0.3 <= time.monotonic() - start < 5
    writers = [threading.Timer(0.3 * i, lambda i=i: (tmp_path / f"s{i}.json").write_text(
        json.dumps({"fingerprint": f"fp{i}"}))) for i in (1, 2)]
    for w in writers:
        w.start()
    start = time.monotonic()
    assert wait_for_results(planned, idle_s=1.0, poll_s=0.02) == []  # 0.3 s, then 0.6 s in
    assert 0.5 < time.monotonic() - start < 5
    assert wait_for_results(planned, idle_s=0.0) == []


def test_cropped_depth_is_scored_through_the_crop():
    """With crop=True the prediction is mapped back through the crop, and only the pixels the view
    shows are scored: a prediction equal to the GT seen through the view scores ~0."""
    from types import SimpleNamespace

    from align3r.eval.run.sequence import _score
    from align3r.io import make_views

    h0, w0 = 100, 160  # 64 px: resized to 64x40, then the centred 64x32 crop
    gt = np.broadcast_to(1.0 + (np.arange(h0, dtype=np.float64)[:, None] / 40) ** 2, (h0, w0))
    views = make_views([np.zeros((h0, w0, 3), np.uint8)] * 2, 64, crop=True)
    assert views.image_size == (32, 64)
    (_, sy), (_, by) = views.geometry.scale_xy, views.geometry.offset_xy
    rows = (torch.arange(32, dtype=torch.float64) + 0.5 - by) / sy - 0.5  # original row of each view row
    pred = (1.0 + (rows / 40) ** 2)[:, None].expand(32, 64).float()
    seq = SimpleNamespace(load_depth=lambda i: gt.copy())
    rec = SimpleNamespace(depth=torch.stack([pred, pred]))
    cropped = _score(seq, EvalSettings(crop=True), rec, views, 2)["depth"]
    naive = _score(seq, EvalSettings(crop=False), rec, views, 2)["depth"]  # plain resize, whole frame
    assert cropped["Abs Rel"] < 1e-3 and naive["Abs Rel"] > 0.02  # measured: 4e-4 and 0.044

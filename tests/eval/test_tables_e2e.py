"""`align3r eval table NAME` end to end: every table of the paper on tiny benchmarks in the real
on-disk layouts (built with the dataset tests' builders from real 7-Scenes frames, prepared by the
real preparation code), tiny random networks, official prior caches written beside the frames."""

from __future__ import annotations

import contextlib
import io
import json
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from align3r.cli import main
from align3r.eval.prepare import prepare_bonn, prepare_tum
from align3r.priors.official_cache import write_official_cache
from align3r.priors.types import DepthPrior

from .test_datasets import _make_processed, _make_rgbd_sequence, _make_sintel, _real_frame

FRAMES = 6  # frames per sequence used by the runs (settings.max_frames)
SINTEL = {"alley_2": range(0, 12, 2), "temple_3": range(40, 45)}  # 6 and 5 frames; both in the pose list
TUM = ("rgbd_dataset_freiburg3_sitting_static", "rgbd_dataset_freiburg3_walking_xyz")
BONN = ("balloon2", "crowd2")
BONN_OFFSET = 40  # Bonn frames come from other 7-Scenes frames than TUM's


def _texture(path: Path, seven_scenes, index: int) -> None:
    """Replace a (constant) test frame by the real 7-Scenes colour image at the same size."""
    _, _, root = seven_scenes
    shape = cv2.imread(str(path)).shape
    colour = cv2.imread(str(root / f"frame-{index % 100:06d}.color.jpg"))
    cv2.imwrite(str(path), cv2.resize(colour, (shape[1], shape[0]), interpolation=cv2.INTER_AREA))


def _write_priors(frames: list[Path], prior_path, seven_scenes, indices) -> None:
    """Official caches for both priors: Depth Pro = the real depth (holes filled later by the
    reader) + focal; Depth Anything = disparity at a smaller (processor-like) resolution."""
    for frame, index in zip(frames, indices):
        depth, _, k = _real_frame(seven_scenes, index)
        h, w = cv2.imread(str(frame)).shape[:2]
        depth = cv2.resize(depth.astype(np.float32), (w, h), interpolation=cv2.INTER_NEAREST)
        filled = np.where(depth > 0, depth, np.float32(np.median(depth[depth > 0])))
        write_official_cache(prior_path(frame, "depthpro"), DepthPrior(filled, float(k[0, 0]) * w / 160, "depth"),
                             "depthpro")
        disparity = cv2.resize(1.0 / filled, (w // 2, h // 2), interpolation=cv2.INTER_AREA)
        write_official_cache(prior_path(frame, "depthanything"), DepthPrior(disparity, None, "disparity"),
                             "depthanything")


@pytest.fixture(scope="module")
def bench(tmp_path_factory, seven_scenes):
    """data/ with Sintel (paper layout), TUM and Bonn (raw downloads + the real preparation),
    PointOdyssey and FlyingThings3D (processed layout), each with official prior caches."""
    from align3r.eval.datasets import load_benchmark

    root = tmp_path_factory.mktemp("data")
    images, _, _ = _make_sintel(root / "MPI-Sintel", seven_scenes, "paper", SINTEL)
    for seq, indices in SINTEL.items():
        frames = sorted((images / "final" / seq).iterdir())
        for frame, index in zip(frames, indices):
            _texture(frame, seven_scenes, index)
        _write_priors(frames, lambda f, n, s=seq: images / f"depth_prediction_{n}" / s / f"{f.stem}.npz",
                      seven_scenes, indices)
    for name in TUM:
        _make_rgbd_sequence(root / "tum" / name, seven_scenes, range(80))
    prepare_tum(root / "tum")
    bonn = root / "bonn" / "rgbd_bonn_dataset"
    for name in BONN:
        _make_rgbd_sequence(bonn / f"rgbd_bonn_{name}", seven_scenes, [(i + BONN_OFFSET) % 100 for i in range(140)],
                            t0=1548266469.0)
    prepare_bonn(bonn, sequences=list(BONN))
    for dataset, where in (("tum", root / "tum"), ("bonn", bonn)):
        for seq in load_benchmark(dataset, where, sequences=list(TUM if dataset == "tum" else BONN)):
            first = 30 + (BONN_OFFSET if dataset == "bonn" else 0)
            frames = list(seq.frame_paths[:FRAMES])
            for frame, index in zip(frames, range(first, first + FRAMES)):
                _texture(frame, seven_scenes, index)
            _write_priors(frames, lambda f, n, s=seq, fr=frames: s.prior_path(fr.index(f), n), seven_scenes,
                          range(first, first + FRAMES))
    po = root / "PointOdyssey_proc" / "val" / "ani"
    ft = root / "SceneFlow" / "FlyingThings3D_proc" / "TEST" / "A" / "0000" / "left"
    for folder, w2c, first in ((po, True, 50), (ft, False, 70)):
        _make_processed(folder, seven_scenes, range(first, first + FRAMES), world_to_camera=w2c)
        frames = sorted(folder.glob("*_rgb.jpg"))
        for frame, index in zip(frames, range(first, first + FRAMES)):
            _texture(frame, seven_scenes, index)
        _write_priors(frames, lambda f, n: f.with_name(f"{f.stem}_pred_depth_{n}.npz"), seven_scenes,
                      range(first, first + FRAMES))
    return root


@pytest.fixture(scope="module")
def nets(tmp_path_factory):
    """Tiny random networks (linear head) with and without the prior branch. Their heads are
    scaled so every predicted point lies in front of the camera with a within-patch ray pattern
    (a purely random head puts points behind the camera and the alignment diverges), while the
    image content still moves the output: the runs are meaningless but finite."""
    from align3r.model import Align3RConfig, Align3RNet

    out = {}
    p = 16
    j = torch.arange(p * p, dtype=torch.float32)
    bias = torch.cat([(j % p - 7.5) * 0.05, (j // p - 7.5) * 0.05, torch.full((p * p,), 3.0), torch.ones(p * p)])
    for name, with_prior in (("prior", True), ("plain", False)):
        torch.manual_seed(0)
        net = Align3RNet(Align3RConfig(enc_embed_dim=64, enc_depth=2, enc_num_heads=2, dec_embed_dim=64,
                                       dec_depth=4, dec_num_heads=2, head_type="linear", with_prior=with_prior))
        with torch.no_grad():
            for head in (net.downstream_head1, net.downstream_head2):
                head.proj.weight.mul_(0.3)
                head.proj.bias.copy_(bias)
            for zero_conv in net.zero_convs or ():  # let the prior reach the output (zero at init)
                torch.nn.init.normal_(zero_conv[0].weight, std=0.2)
        folder = tmp_path_factory.mktemp(f"net_{name}")
        net.save_pretrained(folder)
        out[name] = folder
    return out


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from threads, and a busy machine makes spinning threads slow."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def overrides(bench: Path, results: Path, nets: dict, *extra: str) -> list[str]:
    """Tiny-run settings: 6 frames at 64 px (the 512 rule: 64x48, no crop for depth), 5 alignment iterations, DIS flow, CPU."""
    return [f"data_root={bench}", f"results={results}", "device=cpu", "progress=false",
            f"models.align3r-depthpro={nets['prior']}", f"models.align3r-depthanything={nets['prior']}",
            f"models.dust3r-512-dpt={nets['plain']}", f"models.monst3r={nets['plain']}",
            f"data.sintel.sequences=[{','.join(SINTEL)}]", f"data.bonn.sequences=[{','.join(BONN)}]",
            f"+settings.max_frames={FRAMES}", "+settings.size=64", "+settings.align_overrides.iterations=5",
            "+settings.align_overrides.motion_pnp_iterations=10",
            "protocol.pose.settings.flow=dis", *extra]


TABLES = ("supp_t1", "supp_t2", "supp_t3", "supp_t4", "video_depth", "camera_pose")


def table_extra(name: str, nets: dict) -> list[str]:
    """Per-table overrides: no released depth-map network; the flow rows use DIS (no weights)."""
    if name == "supp_t2":
        return [f"rows.depthmap.settings.model={nets['prior']}"]
    if name == "supp_t3":
        return [f"rows.{row}.settings.flow=dis" for row in ("dust3r_flow", "monst3r_flow", "align3r_flow")]
    return []


def eval_cli(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["eval", *args])
    return rc, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def runs(bench, nets, tmp_path_factory):
    """Every table command once, into one results folder: (results, {table: printed Markdown})."""
    results = tmp_path_factory.mktemp("results")
    printed = {}
    for name in TABLES:
        rc, out, err = eval_cli("table", name, "--quiet", *overrides(bench, results, nets), *table_extra(name, nets))
        assert rc == 0, err
        printed[name] = out
    return results, printed


def records(folder: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in folder.glob("*.json") if p.name != "summary.json"}


def cells(markdown: str, label: str) -> list[str]:
    line = next(line for line in markdown.splitlines() if line.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


@pytest.mark.parametrize("name", TABLES)
def test_every_table_prints_ours_beside_published(runs, name):
    from align3r.eval.tables import METRICS

    results, printed = runs
    table = json.loads((results / name / "table.json").read_text())
    markdown = printed[name]
    assert markdown.startswith(f"### {table['title']}")
    assert (results / name / "table.md").read_text() == markdown
    assert (results / name / "table.csv").read_text().count("\n") == len(table["values"]) + 1
    by_row: dict[str, list] = {}
    for value in table["values"]:
        by_row.setdefault(value["method"], []).append(value)
    for label, values in by_row.items():
        row_cells = cells(markdown, label)
        assert len(row_cells) == len(values)
        for cell, value in zip(row_cells, values):
            fmt = METRICS[value["metric"]][2]
            assert value["ours"] is not None and np.isfinite(value["ours"]), (label, value)
            published = "—" if value["published"] is None else fmt.format(value["published"])
            if value["published"] is None:
                delta = "—"
            else:
                diff = value["ours"] - value["published"]
                assert value["delta"] == pytest.approx(diff) and value["delta_rel"] == pytest.approx(
                    diff / value["published"])
                delta = f"{fmt.replace('{:', '{:+').format(diff)} ({diff / value['published']:+.1%})"
            assert cell == f"{fmt.format(value['ours'])} / {published} / {delta}"
            assert value["sequences"] == value["expected"] > 0  # every sequence in the mean


def test_table_figures_are_the_official_means_of_the_sequence_records(runs):
    results, _ = runs
    depth = results / "video_depth" / "align3r_depthpro" / "sintel-depth"
    recs = list(records(depth).values())
    weights = np.array([r["metrics"]["valid_pixels"] for r in recs], float)
    expected = np.average([r["metrics"]["depth"]["Abs Rel"] for r in recs], weights=weights)
    assert weights.min() > 0 and len(recs) == 2
    summary = json.loads((depth / "summary.json").read_text())
    assert summary["metrics"]["abs_rel"] == pytest.approx(expected, rel=1e-12)
    pose = results / "camera_pose" / "align3r_depthpro" / "tum-pose"
    recs = list(records(pose).values())
    assert not any(r["metrics"]["degenerate"] for r in recs)
    summary = json.loads((pose / "summary.json").read_text())
    assert summary["metrics"]["ate"] == pytest.approx(np.mean([r["metrics"]["pose"]["ATE"] for r in recs]))
    csv_lines = (pose / "sequences.csv").read_text().splitlines()
    assert csv_lines[0].startswith("sequence,status,frames,ate,rpe_trans,rpe_rot") and len(csv_lines) == 3


def test_depth_records_hold_frames_priors_graph_and_alignment(runs, bench):
    from align3r.eval.datasets import load_benchmark

    results, _ = runs
    recs = records(results / "video_depth" / "align3r_depthpro" / "sintel-depth")
    root = bench / "MPI-Sintel"
    for seq in load_benchmark("sintel", root, task="depth"):
        rec = recs[seq.name]
        assert rec["frames"] == [p.relative_to(root).as_posix() for p in seq.frame_paths[:FRAMES]]
        assert rec["ground_truth"]["depth_files"] == [p.relative_to(root).as_posix() for p in seq.depth_paths[:FRAMES]]
        assert rec["prior"]["source"] == "official-cache"
        assert rec["prior"]["files"] == [seq.prior_path(i, "depthpro").relative_to(root).as_posix()
                                         for i in range(len(rec["frames"]))]
        assert rec["views"] == {"size": 64, "crop": False, "network_hw": [48, 64], "original_hw": [120, 160]}
        config = rec["alignment"]["config"]
        assert (config["conf_override"], config["shared_focal"], config["lr"], config["schedule"],
                config["lr_min"], config["iterations"]) == (10.0, False, 0.05, "cosine", 1e-6, 5)
        assert rec["alignment"]["flow"] == "none" and rec["settings"]["precision"] == "fp32"
    # depth_test.py's clip size, searched from 20 and carried over: 6 frames -> 4, then 5 frames -> 3
    alley, temple = recs["alley_2"]["graph"], recs["temple_3"]["graph"]
    assert (alley["name"], alley["clip_size"], alley["keyframes"], alley["clips"]) == \
        ("grouped-depth-test", 4, [0, 4], [[0, 4], [4, 6]])
    assert (temple["clip_size"], temple["keyframes"], temple["num_pairs"]) == (3, [0, 3], 1 + 3 + 1)
    assert recs["alley_2"]["num_pairs"] == 1 + 6 + 1 and alley["mode"].startswith("grouped")


def test_pose_records_follow_pose_test(runs, bench):
    from align3r.pairs import clamp_window, make_graph

    results, _ = runs
    recs = records(results / "camera_pose" / "align3r_depthpro" / "sintel-pose")
    alley, temple = recs["alley_2"], recs["temple_3"]
    # swinstride-5-noncyclic capped at ceil((N-1)/2) as upstream does (which drops -noncyclic)
    assert alley["graph"]["name"] == clamp_window("swinstride-5-noncyclic", 6, official=True) == "swinstride-3"
    assert alley["num_pairs"] == make_graph("swinstride-3", 6).num_edges
    assert alley["views"]["crop"] is True and alley["alignment"]["flow"] == "dis"
    config = alley["alignment"]["config"]
    assert (config["lr"], config["schedule"], config["flow_threshold"], config["shared_focal"]) == \
        (0.01, "linear", 40.0, True)
    assert temple["alignment"]["config"]["flow_threshold"] == 10.0  # pose_test.py's temple_3 exception
    assert (alley["metrics"]["rpe_delta"], alley["metrics"]["rpe_all_pairs"]) == (1, False)
    assert alley["ground_truth"]["timestamps"] == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]  # Sintel frame numbers
    tum = records(results / "camera_pose" / "align3r_depthanything" / "tum-pose")
    rec = next(iter(tum.values()))
    assert rec["graph"]["name"] == "swin-3" and rec["prior"]["name"] == "depthanything"
    assert all(f.endswith(".npz") and "rgb_50_depth_prediction_depthanything" in f for f in rec["prior"]["files"])


def test_supp_t4_counts_the_pairs_of_each_graph(runs):
    from align3r.pairs import clamp_window, make_graph, make_grouped_graph

    results, printed = runs
    expected = {"swin-10 (cyclic)": make_graph(clamp_window("swin-10", FRAMES, official=True), FRAMES).num_edges,
                "swinstride-5-noncyclic": make_graph(clamp_window("swinstride-5-noncyclic", FRAMES, official=True),
                                                     FRAMES).num_edges,
                "keyframes + clips of 10": make_grouped_graph(FRAMES, "paper").num_edges}
    published = {"swin-10 (cyclic)": 600, "swinstride-5-noncyclic": 250, "keyframes + clips of 10": 138}
    for label, pairs in expected.items():
        row_cells = cells(printed["supp_t4"], label)
        diff = pairs - published[label]
        assert row_cells[0] == f"{pairs} / {published[label]} / {diff:+d} ({diff / published[label]:+.1%})"
        assert float(row_cells[1].split()[0]) > 0  # measured inference time
        assert row_cells[2].split(" / ")[1] == {"swin-10 (cyclic)": "2.90", "swinstride-5-noncyclic": "2.60",
                                                "keyframes + clips of 10": "1.80"}[label]  # published minutes
    assert "Our times measured on: CPU (" in printed["supp_t4"]  # the machine is named
    for rec in records(results / "supp_t4" / "grouped_paper" / "tum-pose").values():
        assert rec["graph"]["mode"] == "one problem (single clip)" and rec["timings"]["inference"] > 0


def test_ablation_rows_change_what_they_claim(runs):
    results, printed = runs
    t1 = {row: records(results / "supp_t1" / row / "sintel-depth")["alley_2"] for row in ("depth_map", "scale_map")}
    assert [t1[r]["alignment"]["config"]["parametrisation"] for r in t1] == ["depth", "scale_map"]
    assert all(r["graph"]["name"] == "complete" and r["num_pairs"] == 15 for r in t1.values())  # 6 frames, one way
    assert cells(printed["supp_t1"], "Depth-map optimisation") != cells(printed["supp_t1"], "Scale-map optimisation")
    for row, representation in (("pointmap", "pointmap"), ("depthmap", "depthmap")):
        rec = next(iter(records(results / "supp_t2" / row / "tum-pose").values()))
        assert rec["prior"]["input"] == representation
    assert cells(printed["supp_t2"], "Point-map prior input") != cells(printed["supp_t2"], "Depth-map prior input")
    for row, prior, flow in (("dust3r", "none", "none"), ("monst3r_flow", "none", "dis"),
                             ("align3r_flow", "depthpro", "dis")):
        rec = next(iter(records(results / "supp_t3" / row / "bonn-pose").values()))
        assert (rec["prior"]["name"], rec["alignment"]["flow"]) == (prior, flow)


def test_rerun_skips_finished_sequences_and_recomputes_changed_ones(runs, bench, nets, monkeypatch):
    import align3r.eval.run.runner as runner

    results, printed = runs
    calls = []
    real = runner.evaluate_sequence
    monkeypatch.setattr(runner, "evaluate_sequence", lambda seq, *a, **k: calls.append(seq.name) or real(seq, *a, **k))
    args = overrides(bench, results, nets)
    rc, out, _ = eval_cli("table", "supp_t1", "--quiet", *args)
    assert rc == 0 and calls == [] and out == printed["supp_t1"]
    (results / "supp_t1" / "scale_map" / "sintel-depth" / "temple_3.json").unlink()
    assert eval_cli("table", "supp_t1", "--quiet", *args)[0] == 0
    assert calls == ["temple_3"]
    calls.clear()  # other settings: nothing stored matches, everything is recomputed
    assert eval_cli("table", "supp_t1", "--quiet", "--rows", "depth_map", *args,
                    "settings.align_overrides.iterations=4")[0] == 0
    assert sorted(calls) == ["alley_2", "temple_3"]
    rec = json.loads((results / "supp_t1" / "depth_map" / "sintel-depth" / "alley_2.json").read_text())
    assert rec["alignment"]["config"]["iterations"] == 4


def test_two_ranks_split_the_sequences_and_aggregate_like_one_process(runs, bench, nets, tmp_path, monkeypatch):
    results, _ = runs
    args = [*overrides(bench, tmp_path, nets), "--rows", "align3r_depthpro"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    rc, out, err = eval_cli("table", "camera_pose", "--quiet", *args)
    assert rc == 0 and out == "" and "rank 1" in err
    row = tmp_path / "camera_pose" / "align3r_depthpro"
    assert sorted(records(row / "sintel-pose")) == ["temple_3"]  # sequences 1, 3, ... of each dataset
    assert sorted(records(row / "tum-pose")) == [TUM[1]]
    monkeypatch.setenv("RANK", "0")
    rc, out, _ = eval_cli("table", "camera_pose", "--quiet", *args)
    assert rc == 0 and "Align3R (Depth Pro)" in out
    sharded = json.loads((tmp_path / "camera_pose" / "table.json").read_text())["values"]
    single = [v for v in json.loads((results / "camera_pose" / "table.json").read_text())["values"]
              if v["row"] == "align3r_depthpro"]
    assert [(v["dataset"], v["metric"]) for v in sharded] == [(v["dataset"], v["metric"]) for v in single]
    np.testing.assert_allclose([v["ours"] for v in sharded], [v["ours"] for v in single], rtol=1e-6)


def test_rank_0_stops_waiting_for_a_dead_rank_and_names_it(bench, nets, tmp_path, monkeypatch):
    """Rank 1 never writes its sequence: rank 0 gives up after shard_wait_s without a new result,
    says which sequence and rank are missing, prints the table without it and exits with 1."""
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    start = time.monotonic()
    rc, out, err = eval_cli("pose", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro",
                            "--name", "lost", "--quiet", *overrides(bench, tmp_path, nets), "shard_wait_s=0.2")
    assert rc == 1 and time.monotonic() - start < 30
    assert "1 sequence(s) still have no result after 0.2 s" in err and f"lost/tum-pose/{TUM[1]}" in err
    assert "rank(s) 1 of 2" in err
    assert "1 of 2 sequences in the mean (1 missing)" in out
    assert sorted(records(tmp_path / "lost" / "tum-pose")) == [TUM[0]]


def test_per_frame_alignment_and_post_clip_are_config_options(bench, nets, tmp_path, monkeypatch):
    """MonST3R's protocol variants set in the config reach the metrics and the record."""
    import align3r.eval.depth_metrics as depth_metrics

    real = depth_metrics.evaluate_video_depth
    seen = []
    monkeypatch.setattr(depth_metrics, "evaluate_video_depth",
                        lambda pred, gt, **kw: seen.append((pred, gt)) or real(pred, gt, **kw))
    variant = ["protocol.depth.settings.depth_protocol=monst3r", "protocol.depth.settings.depth_alignment=median",
               "protocol.depth.settings.depth_per_frame=true", "protocol.depth.settings.depth_post_clip=true"]
    rc, _, err = eval_cli("depth", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro",
                          "--name", "variants", "--quiet", *overrides(bench, tmp_path, nets),
                          f"data.tum.sequences=[{TUM[0]}]", *variant)
    assert rc == 0, err
    rec = json.loads((tmp_path / "variants" / "tum-depth" / f"{TUM[0]}.json").read_text())
    [(pred, gt)] = seen
    expected = real(pred, gt, alignment="median", depth_max=70.0, protocol="monst3r", per_frame=True, post_clip=True)
    assert rec["metrics"]["depth"] == pytest.approx(expected.metrics, rel=1e-12)
    assert {k: rec["metrics"][k] for k in ("alignment", "protocol", "per_frame", "post_clip")} == \
        {"alignment": "median", "protocol": "monst3r", "per_frame": True, "post_clip": True}
    assert len(rec["metrics"]["frame_scale_shift"]) == FRAMES
    assert rec["settings"]["depth_per_frame"] is True and rec["settings"]["depth_post_clip"] is True
    # the options change the figures: one median scale for the whole sequence scores differently
    assert real(pred, gt, alignment="median", protocol="monst3r").metrics != pytest.approx(expected.metrics)


def test_single_run_computes_missing_priors_with_the_prior_model(bench, nets, tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("tiny_prior_models", Path(__file__).parents[1] / "priors" / "tiny_models.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    depth_pro = tiny.save_tiny_depth_pro(tmp_path / "depth_pro")
    rc, out, err = eval_cli("depth", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro",
                            "--name", "mine", "--quiet", *overrides(bench, tmp_path / "res", nets),
                            "priors=compute", f"prior_model={depth_pro}", f"data.tum.sequences=[{TUM[0]}]")
    assert rc == 0, err
    assert "| mine |" in out  # --name is the results folder and the row's label
    rec = json.loads((tmp_path / "res" / "mine" / "tum-depth" / f"{TUM[0]}.json").read_text())
    assert rec["prior"]["source"] == "computed" and rec["prior"]["model"] == str(depth_pro)
    assert rec["prior"]["identity"].startswith("depthpro")
    assert any((tmp_path / "res" / ".cache" / "priors").rglob("*.npz"))
    assert set(rec["metrics"]["depth"]) == {"Abs Rel", "Sq Rel", "RMSE", "Log RMSE", "δ < 1.25", "δ < 1.25^2",
                                            "δ < 1.25^3"}


def test_clear_errors_for_a_missing_network_or_missing_prior_files(bench, nets, tmp_path):
    rc, _, err = eval_cli("table", "supp_t2", "--quiet", *overrides(bench, tmp_path, nets))
    assert rc == 2 and "['depthmap']" in err and "rows.<row>.settings.model" in err
    missing = bench / "tum" / TUM[0] / "rgb_50_depth_prediction_depthpro"
    victim = sorted(missing.iterdir())[0]
    saved = victim.read_bytes()
    victim.unlink()
    try:
        rc, _, err = eval_cli("depth", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro",
                              "--quiet", *overrides(bench, tmp_path, nets), "priors=official")
    finally:
        victim.write_bytes(saved)
    assert rc == 2 and victim.name in err and "align3r prior" in err


def test_list_and_aggregate_only(bench, nets, tmp_path):
    rc, out, _ = eval_cli("list")
    assert rc == 0 and all(f"{name}:" in out for name in TABLES)
    rc, out, _ = eval_cli("table", "supp_t4", "--aggregate-only", *overrides(bench, tmp_path, nets))
    assert rc == 0 and out.count("n/a / — / —") == 3 * 4 and "| n/a / 600 / — |" in out  # nothing ran yet
    assert "| n/a / 2.90 / — |" in out and "Our times measured on: — (nothing ran)." in out
    assert "0 of 2 sequences in the mean (2 missing)" in out


def test_a_diverging_sequence_is_recorded_as_failed_left_out_and_retried(bench, nets, tmp_path, monkeypatch):
    """An alignment that diverges (AlignmentDiverged) fails its sequence, not the run: the record
    holds the error with advice in eval's setting keys, the mean and counts leave it out, and the
    next run retries it while reusing the others."""
    import align3r.eval.run.runner as runner

    args = ["depth", "--dataset", "sintel", "--model", str(nets["prior"]), "--prior", "depthpro", "--name", "fail",
            "--quiet", *overrides(bench, tmp_path, nets),
            "+settings.sequence_overrides.alley_2.align_overrides.lr=1e30"]
    rc, out, err = eval_cli(*args)
    assert rc == 0, err
    folder = tmp_path / "fail" / "sintel-depth"
    failed, ok = json.loads((folder / "alley_2.json").read_text()), json.loads((folder / "temple_3.json").read_text())
    assert failed["status"] == "failed" and ok["status"] == "ok"
    assert failed["error"].startswith("AlignmentDiverged: global alignment diverged")
    assert "+settings.align_overrides.lr=" in failed["error"] and "align_settings" not in failed["error"]
    assert "AlignmentDiverged" in failed["traceback"]
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["failed"] == ["alley_2"] and summary["counts"]["in_mean"] == 1
    assert summary["metrics"]["abs_rel"] == pytest.approx(ok["metrics"]["depth"]["Abs Rel"], rel=1e-12)
    assert "| fail |" in out and "fail / Sintel: 1 of 2 sequences in the mean (1 failed)" in out
    calls = []
    real = runner.evaluate_sequence
    monkeypatch.setattr(runner, "evaluate_sequence", lambda seq, *a, **k: calls.append(seq.name) or real(seq, *a, **k))
    assert eval_cli(*args)[0] == 0 and calls == ["alley_2"]  # the failed one again, the finished one reused


def test_a_prior_for_a_network_without_prior_branch_is_an_error(bench, nets, tmp_path, caplog):
    """--prior depthpro with a DUSt3R/MonST3R-style network would be ignored: an error saying what
    to do; --prior auto on a local checkpoint says which prior it assumed."""
    import logging

    from align3r.eval.run import model_label

    base = ["depth", "--dataset", "tum", "--model", str(nets["plain"]), "--quiet", *overrides(bench, tmp_path, nets),
            f"data.tum.sequences=[{TUM[0]}]"]
    for prior in ("depthpro", "auto"):
        with caplog.at_level(logging.WARNING, logger="align3r"):
            rc, out, err = eval_cli(*base, "--prior", prior)
        assert rc == 2 and out == ""
        assert "has no prior branch" in err and "--prior none" in err and "Align3R checkpoint" in err
        folder = f"{model_label(str(nets['plain'])).replace('/', '-')}-depthpro"
        assert not (tmp_path / folder / "tum-depth" / f"{TUM[0]}.json").exists()
    assert "--prior auto: " in caplog.text and "assuming depthpro" in caplog.text
    rc, out, err = eval_cli(*base, "--prior", "none", "--name", "plain")
    assert rc == 0, err
    rec = json.loads((tmp_path / "plain" / "tum-depth" / f"{TUM[0]}.json").read_text())
    assert rec["prior"] == {"name": "none"} and rec["settings"]["prior"] == "none"


def _single_settings(command: str, dataset: str, model: str, prior: str, *extra: str):
    from align3r.commands.eval import compose
    from align3r.eval.run import single_plan

    cfg = compose("eval/single", list(extra))
    [(_, exp)] = single_plan(cfg, task=command, dataset=dataset, model=model, prior=prior, prior_input="pointmap",
                             name=None)[1]
    return exp.settings


def test_single_runs_use_the_protocol_of_the_matching_table_row():
    """`align3r eval pose --prior depthpro` on Sintel runs the camera_pose table's Depth Pro row
    (swinstride-5-noncyclic there), and every single run equals its table row but for the network."""
    from dataclasses import replace

    from align3r.commands.eval import compose
    from align3r.eval.run import table_plan

    for table in ("camera_pose", "video_depth"):
        _, plan = table_plan(compose(f"eval/table/{table}", []), table)
        for (row, key), exp in plan:
            dataset, task = key.rsplit("-", 1)
            single = _single_settings(task, dataset, "mine.pth", exp.settings.prior)
            assert single == replace(exp.settings, model="mine.pth"), (table, row, key)
    assert _single_settings("pose", "sintel", "mine.pth", "depthpro").graph == "swinstride-5-noncyclic"
    assert _single_settings("pose", "sintel", "mine.pth", "depthanything").graph == "swin-5-noncyclic"
    assert _single_settings("pose", "tum", "mine.pth", "depthpro").graph == "swin-5-noncyclic"
    assert _single_settings("pose", "sintel", "mine.pth", "depthpro", "+settings.graph=swin-3").graph == "swin-3"


def test_print_config_shows_the_resolved_single_run(bench, nets, tmp_path):
    import yaml

    rc, out, err = eval_cli("pose", "--dataset", "sintel", "--model", str(nets["prior"]), "--prior", "depthpro",
                            "--print-config", *overrides(bench, tmp_path, nets))
    assert rc == 0, err
    [run] = yaml.safe_load(out)["runs"]
    label = f"{Path(nets['prior']).parent.name}/{Path(nets['prior']).name}"  # the folder it sits in, too
    name = f"{label.replace('/', '-')}-depthpro"
    assert (run["model"], run["prior"], run["label"]) == (str(nets["prior"]), "depthpro", f"{label} (depthpro)")
    assert run["dataset"]["name"] == "sintel" and run["dataset"]["options"]["sequences"] == list(SINTEL)
    assert run["settings"]["graph"] == "swinstride-5-noncyclic" and run["settings"]["max_frames"] == FRAMES
    assert run["results"] == str(tmp_path / name / "sintel-pose")
    assert not (tmp_path / name).exists()  # nothing ran
    rc, out, err = eval_cli("pose", "--dataset", "kitti", "--model", str(nets["prior"]), "--print-config",
                            *overrides(bench, tmp_path, nets))
    assert rc == 2 and out == "" and "data.kitti" in err  # validated before printing


def test_result_files_are_standard_json_named_after_their_sequences(runs, bench, nets, tmp_path):
    """Records of FlyingThings3D (sequence names are paths) are A__0000__left.json; no JSON file
    written by a run holds NaN, even where a value is missing (null)."""
    results, _ = runs

    def reject(constant):
        raise ValueError(constant)

    ft = records(results / "video_depth" / "align3r_depthpro" / "flyingthings3d-depth")
    assert list(ft) == ["A__0000__left"] and ft["A__0000__left"]["sequence"] == "A/0000/left"
    for path in results.rglob("*.json"):
        json.loads(path.read_text(), parse_constant=reject)
    assert eval_cli("table", "supp_t1", "--aggregate-only", *overrides(bench, tmp_path, nets))[0] == 0
    summary = json.loads((tmp_path / "supp_t1" / "scale_map" / "sintel-depth" / "summary.json").read_text(),
                         parse_constant=reject)
    assert summary["metrics"]["abs_rel"] is None  # nothing ran: no value, written as null
    values = json.loads((tmp_path / "supp_t1" / "table.json").read_text(), parse_constant=reject)["values"]
    assert all(v["ours"] is None for v in values)


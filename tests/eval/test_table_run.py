"""The evaluation library without the CLI: a table planned and run from Python (explicit
arguments, no Hydra), sharded by hand, aggregated from its records; a composed config as plain
values plans the same experiments as the DictConfig the command composes."""

from __future__ import annotations

import json

import pytest

from . import test_tables_e2e as e2e
from .test_tables_e2e import FRAMES, TUM, overrides, records

bench, nets, _one_thread = e2e.bench, e2e.nets, e2e._one_thread  # the table tests' module fixtures


def _plan(bench, nets):
    """One row (the tiny Align3R network, Depth Pro prior) on TUM, camera pose, built by hand."""
    from align3r.eval.run import DatasetSpec, EvalSettings, Experiment
    from align3r.eval.tables import table_from_dict

    settings = EvalSettings(task="pose", model=str(nets["prior"]), prior="depthpro", size=64, max_frames=FRAMES,
                            graph="swin-5-noncyclic", clamp_window="official", flow="dis", align="pose_test",
                            align_overrides={"iterations": 5, "motion_pnp_iterations": 10})
    spec = table_from_dict("mine", {"title": "tiny pose", "columns": [
        {"dataset": "tum", "task": "pose", "metrics": ["ate", "rpe_trans", "rpe_rot"]}]}, {"ours": {"label": "Ours"}})
    dataset = DatasetSpec("tum", str(bench / "tum"), {"sequences": list(TUM), "association": "index"})
    return spec, [(("ours", "tum-pose"), Experiment("mine/ours/tum-pose", dataset, settings))]


def test_a_table_runs_from_python_and_matches_what_it_wrote(bench, nets, tmp_path):
    from align3r.eval.run import Runtime, Shard, run_table

    spec, plan = _plan(bench, nets)
    runtime = Runtime(results=str(tmp_path), device="cpu", progress=False)
    result = run_table(spec, plan, runtime, shard=Shard())
    assert result.status == 0 and result.missing == [] and result.missing_note is None
    assert sorted(result.report.computed) == [f"mine/ours/tum-pose/{s}" for s in sorted(TUM)]
    assert result.out_dir == tmp_path / "mine"
    assert result.markdown == (tmp_path / "mine" / "table.md").read_text() and "| Ours |" in result.markdown
    summary = result.summaries[("ours", "tum-pose")]
    assert summary == json.loads((tmp_path / "mine" / "ours" / "tum-pose" / "summary.json").read_text())
    assert summary["counts"]["evaluated"] == 2 and summary["counts"]["missing"] == 0
    assert sorted(records(tmp_path / "mine" / "ours" / "tum-pose")) == sorted(TUM)

    # a second run reuses every sequence; aggregating the records alone gives the same summaries
    again = run_table(spec, plan, runtime, shard=Shard())
    assert again.report.computed == [] and len(again.report.reused) == 2
    assert again.summaries == result.summaries
    only = run_table(spec, plan, runtime, shard=Shard(), aggregate_only=True)
    assert only.report is None and only.summaries == result.summaries and only.from_records == []


def test_two_shards_run_from_python_split_the_sequences(bench, nets, tmp_path):
    from align3r.eval.run import Runtime, Shard, run_table

    spec, plan = _plan(bench, nets)
    runtime = Runtime(results=str(tmp_path), device="cpu", progress=False)
    second = run_table(spec, plan, runtime, shard=Shard(1, 2))
    assert second.summaries is None and second.markdown is None and second.report.computed == [
        f"mine/ours/tum-pose/{TUM[1]}"]
    first = run_table(spec, plan, runtime, shard=Shard(0, 2), shard_wait_s=0.1)
    assert first.report.computed == [f"mine/ours/tum-pose/{TUM[0]}"] and first.status == 0
    assert first.summaries[("ours", "tum-pose")]["counts"]["evaluated"] == 2


def test_rank_0_names_what_a_dead_rank_left_missing(bench, nets, tmp_path):
    from align3r.eval.run import Runtime, Shard, run_table

    spec, plan = _plan(bench, nets)
    result = run_table(spec, plan, Runtime(results=str(tmp_path), device="cpu", progress=False),
                       shard=Shard(0, 2), shard_wait_s=0.1)
    assert result.status == 1 and [item.seq.name for item in result.missing] == [TUM[1]]
    assert result.missing_note.startswith("1 sequence(s) still have no result after 0.1 s")
    assert "rank(s) 1 of 2" in result.missing_note
    assert result.summaries[("ours", "tum-pose")]["counts"]["missing"] == 1


def test_a_table_without_a_network_is_refused_before_any_work(bench, nets, tmp_path):
    from dataclasses import replace

    from align3r.errors import InputError
    from align3r.eval.run import Runtime, Shard, run_table

    spec, [(key, exp)] = _plan(bench, nets)
    plan = [(key, replace(exp, settings=replace(exp.settings, model=None)))]
    with pytest.raises(InputError, match=r"row\(s\) \['ours'\] of table mine name no network"):
        run_table(spec, plan, Runtime(results=str(tmp_path), device="cpu", progress=False), shard=Shard())
    assert not (tmp_path / "mine").exists()


def test_a_plain_config_plans_like_the_composed_one(bench, nets, tmp_path):
    from omegaconf import OmegaConf

    from align3r.commands.eval import compose
    from align3r.eval.run import runtime_from_config, table_plan

    cfg = compose("eval/table/camera_pose", overrides(bench, tmp_path, nets))
    values = OmegaConf.to_container(cfg, resolve=True)
    spec, plan = table_plan(cfg, "camera_pose")
    assert table_plan(values, "camera_pose") == (spec, plan)
    assert runtime_from_config(values) == runtime_from_config(cfg)
    assert runtime_from_config(values, quiet=True).progress is False

"""`align3r eval` behaviour around aggregation, per-kind prior models, setting precedence and the
error messages, on the tiny benchmarks of the table tests (real layouts, tiny random networks,
official prior caches beside the frames)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
from pathlib import Path

import pytest
import torch

from align3r.eval.prepare import prepare_sintel

from . import test_tables_e2e as e2e
from .test_prepare import _raw_pointodyssey, _raw_sintel_with_flow
from .test_tables_e2e import TUM, cells, eval_cli, overrides, records

bench, nets, _one_thread = e2e.bench, e2e.nets, e2e._one_thread  # the table tests' module fixtures


def _tiny_prior_models():
    spec = importlib.util.spec_from_file_location("tiny_prior_models",
                                                  Path(__file__).parents[1] / "priors" / "tiny_models.py")
    tiny = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tiny)
    return tiny


@pytest.fixture(scope="module")
def prior_nets(tmp_path_factory):
    """Tiny Depth Pro and Depth Anything V2 model folders."""
    tiny = _tiny_prior_models()
    root = tmp_path_factory.mktemp("prior_models")
    return {"depthpro": tiny.save_tiny_depth_pro(root / "dp"), "depthanything": tiny.save_tiny_depth_anything(root / "da")}


def _outputs(folder: Path) -> dict[str, bytes]:
    """Every table / summary / sequences file under ``folder``, by relative path."""
    names = ("table.md", "table.csv", "table.json", "summary.json", "sequences.csv")
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.name in names}


# ------------------------------------------------------------------------------- 1. aggregation


def test_aggregate_only_with_other_settings_reports_stale_records_and_writes_nothing(bench, nets, tmp_path):
    results = tmp_path / "res"
    run = ["pose", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro", "--name", "mine",
           "--quiet"]
    args = [*overrides(bench, results, nets), f"data.tum.sequences=[{','.join(TUM)}]"]
    rc, printed, err = eval_cli(*run, *args)
    assert rc == 0, err
    before = _outputs(results / "mine")
    assert len(before) == 5

    # the audit's case: the aggregation leaves out the run's overrides -> every record is stale
    bare = [f"data_root={bench}", f"results={results}", f"data.tum.sequences=[{','.join(TUM)}]"]
    rc, out, err = eval_cli(*run, "--aggregate-only", *bare)
    assert rc == 2 and out == ""
    assert "2 result record(s) are stale" in err and f"mine/tum-pose/{TUM[0]}" in err
    assert "settings differ: " in err and "settings.max_frames" in err and "settings.size" in err
    assert "Nothing was written" in err and "repeat the overrides" in err
    assert _outputs(results / "mine") == before  # table, summary and sequences.csv untouched

    # repeating the overrides aggregates exactly what the run printed
    rc, out, err = eval_cli(*run, "--aggregate-only", *args)
    assert rc == 0 and out == printed, err

    # fewer sequences than the table on disk: refused, nothing written
    rc, out, err = eval_cli(*run, "--aggregate-only", *args, f"data.tum.sequences=[{TUM[0]}]")
    assert rc == 2 and "fewer results" in err and "mine/tum-pose (2 sequence(s) scored on disk, 1 now)" in err
    assert "without --aggregate-only" in err and _outputs(results / "mine") == before

    # the datasets moved away: the records alone give the same table, and a notice says so
    gone = [a if not a.startswith("data_root=") else f"data_root={tmp_path / 'moved'}" for a in args]
    rc, out, err = eval_cli(*run, "--aggregate-only", *gone)
    assert rc == 0, err
    assert cells(out, "mine") == cells(printed, "mine")
    assert "summarised from their records alone" in err and str(tmp_path / "moved" / "tum") in err
    summary = json.loads((results / "mine" / "tum-pose" / "summary.json").read_text())
    assert summary["from_records"] is True and summary["counts"]["evaluated"] == 2
    # ... and still sees records of other settings as stale
    rc, _, err = eval_cli(*run, "--aggregate-only", *gone, "+settings.rpe_delta=2")
    assert rc == 2 and "settings differ: settings.rpe_delta" in err

    # a dataset that is there but unreadable: the error says why the aggregation reads it
    broken = tmp_path / "broken"
    (broken / "tum").mkdir(parents=True)
    rc, _, err = eval_cli(*run, "--aggregate-only", *args, f"data.tum.root={broken / 'tum'}")
    assert rc == 2 and "--aggregate-only reads the tum dataset" in err and "records alone" in err


def test_summaries_count_stale_records_apart_from_missing_ones():
    from align3r.eval.run.results import summarise
    from align3r.eval.tables import render_markdown, table_from_dict

    record = {"sequence": "a", "status": "ok", "task": "pose", "num_frames": 6,
              "metrics": {"pose": {"ATE": 0.1, "RPE trans": 0.2, "RPE rot": 0.3}, "num_poses": 6,
                          "degenerate": False}}
    summary = summarise("pose", [record], ["a", "b", "c"], {"b": "settings differ: settings.size"})
    assert {k: summary["counts"][k] for k in ("expected", "evaluated", "stale", "missing")} == \
        {"expected": 3, "evaluated": 1, "stale": 1, "missing": 1}
    assert summary["stale"] == {"b": "settings differ: settings.size"} and summary["missing"] == ["c"]
    spec = table_from_dict("t", {"title": "T", "columns": [{"dataset": "tum", "task": "pose", "metrics": ["ate"]}]},
                           {"r": {"label": "R"}})
    assert "(1 missing, 1 stale (settings differ: settings.size))" in render_markdown(spec, {("r", "tum-pose"): summary})


# ---------------------------------------------------------------------- 2. prior models per kind


def test_one_table_computes_both_prior_kinds_with_per_kind_prior_models(bench, nets, prior_nets, tmp_path):
    results = tmp_path / "res"
    dp, da = prior_nets["depthpro"], prior_nets["depthanything"]
    args = [*overrides(bench, results, nets), "data.sintel.sequences=[alley_2]", "data.bonn.sequences=[balloon2]",
            f"data.tum.sequences=[{TUM[0]}]", "priors=compute"]
    per_kind = [f"prior_models.depthpro={dp}", f"prior_models.depthanything={da}"]

    # one prior_model for a table whose rows use both priors: the error says which key to set
    rc, _, err = eval_cli("table", "camera_pose", "--quiet", "--rows", "align3r_depthanything", *args,
                          f"prior_model={dp}")
    assert rc == 2 and "holds a 'depth_pro' model" in err
    assert "prior_models.depthanything=" in err and "priors=compute" in err
    # a row setting is not the place: rejected with the same advice
    rc, _, err = eval_cli("table", "camera_pose", "--quiet", *args, f"+rows.align3r_depthanything.settings.prior_model={da}")
    assert rc == 2 and "prior_models.depthanything=PATH" in err

    rc, printed, err = eval_cli("table", "camera_pose", "--quiet", *args, *per_kind)
    assert rc == 0, err
    for row, model, identity in (("align3r_depthpro", dp, "depthpro"), ("align3r_depthanything", da, "depthanything")):
        rec = records(results / "camera_pose" / row / "tum-pose")[TUM[0]]
        assert rec["prior"]["source"] == "computed" and rec["prior"]["model"] == str(model)
        assert rec["prior"]["identity"].startswith(identity)

    # a row's fingerprint depends only on its own prior's model: giving the Depth Pro weights as
    # prior_model (the only-one-kind shorthand) changes nothing, another Depth Anything model
    # makes only the Depth Anything row stale
    rc, out, err = eval_cli("table", "camera_pose", "--aggregate-only", *args, f"prior_model={dp}",
                            f"prior_models.depthanything={da}")
    assert rc == 0 and out == printed, err
    rc, _, err = eval_cli("table", "camera_pose", "--aggregate-only", *args, f"prior_models.depthpro={dp}",
                          f"prior_models.depthanything={tmp_path / 'other'}")
    assert rc == 2 and "3 result record(s) are stale" in err and "settings differ: prior_model" in err
    assert "align3r_depthanything" in err and "align3r_depthpro/" not in err


# -------------------------------------------------------------------------- 3. setting precedence


def test_protocol_override_beaten_by_a_row_is_warned_and_rows_can_be_changed(bench, nets, tmp_path, caplog):
    from align3r.commands.eval import compose
    from align3r.eval.run import shadowed_protocol_overrides, table_plan

    base = [*overrides(bench, tmp_path, nets), "data.sintel.sequences=[alley_2]", "data.bonn.sequences=[balloon2]",
            f"data.tum.sequences=[{TUM[0]}]"]
    with caplog.at_level(logging.WARNING, logger="align3r"):
        rc, _, err = eval_cli("table", "supp_t3", "--aggregate-only", *base)  # runs nothing
    assert rc == 0, err
    warning = next(r.getMessage() for r in caplog.records if "does not reach" in r.getMessage())
    assert warning.startswith("protocol.pose.settings.flow=dis given on the command line does not reach row(s)")
    assert "align3r_flow (flow=raft from rows.align3r_flow.settings.flow)" in warning
    assert "dust3r (flow=none from rows.dust3r.settings.flow)" in warning
    assert "++rows.<row>.settings.flow=<value>" in warning and "+settings.flow=<value>" in warning

    # the documented per-row override reaches the row, and that row is no longer warned about
    fixed = [*base, "++rows.align3r_flow.settings.flow=dis", "++rows.align3r.settings.flow=dis"]
    cfg = compose("eval/table/supp_t3", fixed)
    _, plan = table_plan(cfg, "supp_t3")
    flows = {(row, col): exp.settings.flow for (row, col), exp in plan}
    assert flows[("align3r_flow", "tum-pose")] == flows[("align3r", "bonn-pose")] == "dis"
    assert flows[("monst3r_flow", "tum-pose")] == "raft" and flows[("dust3r", "tum-pose")] == "none"
    [message] = shadowed_protocol_overrides(cfg, plan, fixed)
    assert "monst3r_flow (flow=raft" in message and "align3r_flow" not in message and "align3r (" not in message
    # rows that leave the key to the protocol get the command-line value without any warning
    cfg = compose("eval/table/camera_pose", base)
    _, plan = table_plan(cfg, "camera_pose")
    assert {exp.settings.flow for _, exp in plan} == {"dis"}
    assert shadowed_protocol_overrides(cfg, plan, base) == []


def test_missing_raft_weights_name_the_eval_key_and_that_key_works(bench, nets, tmp_path, monkeypatch):
    from torchvision.models.optical_flow import raft_small

    monkeypatch.setenv("ALIGN3R_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))  # no cached weights
    run = ["pose", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro", "--quiet",
           *overrides(bench, tmp_path / "res", nets), f"data.tum.sequences=[{TUM[0]}]", "+settings.flow=raft-small"]
    rc, _, err = eval_cli(*run)
    assert rc == 2 and "are not on this machine" in err
    assert "align3r eval: +settings.flow_weights=path/to/raft_small" in err and "weights='path" not in err
    torch.manual_seed(0)
    weights = tmp_path / "raft_small.pth"
    torch.save(raft_small(weights=None).state_dict(), weights)
    rc, _, err = eval_cli(*run, f"+settings.flow_weights={weights}")
    assert rc == 0, err
    from align3r.eval.run import model_label

    folder = f"{model_label(str(nets['prior'])).replace('/', '-')}-depthpro"  # <run folder>-<name>-<prior>
    rec = next(iter(records(tmp_path / "res" / folder / "tum-pose").values()))
    assert rec["alignment"]["flow"] == "raft-small" and rec["settings"]["flow_weights"] == str(weights)


# ----------------------------------------------------------------------------- 4. error messages


def test_errors_say_how_to_restrict_sequences_list_datasets_and_point_at_the_preparation(bench, nets, tmp_path):
    run = ["--model", str(nets["prior"]), "--prior", "depthpro", "--aggregate-only"]
    args = overrides(bench, tmp_path, nets)
    # (a) the Sintel pose protocol's 14 sequences, two of them on disk
    rc, _, err = eval_cli("pose", "--dataset", "sintel", *run, *args, "data.sintel.sequences=null")
    assert rc == 2 and "ambush_4" in err and "data.sintel.sequences=[alley_2,temple_3]" in err
    # (b) an unknown dataset
    rc, _, err = eval_cli("depth", "--dataset", "kitti", *run, *args)
    assert rc == 2 and "unknown dataset 'kitti'" in err
    assert "datasets: sintel, bonn, tum, pointodyssey, flyingthings3d, davis" in err
    # (c) PointOdyssey pointed at the raw download
    _raw_pointodyssey(tmp_path / "PointOdyssey", count=2)
    rc, _, err = eval_cli("depth", "--dataset", "pointodyssey", *run, *args,
                          f"data.pointodyssey.root={tmp_path / 'PointOdyssey'}")
    assert rc == 2 and "not the raw download" in err and "scripts/eval/prepare_pointodyssey.py --raw" in err


def test_prepare_sintel_warning_names_the_cli_flag_and_every_place_it_looked(tmp_path, seven_scenes, caplog):
    _raw_sintel_with_flow(tmp_path, seven_scenes)
    (tmp_path / "training" / "flow").rename(tmp_path / "elsewhere")
    with caplog.at_level("WARNING"):
        assert prepare_sintel(tmp_path) == {}
    assert "--flow-dir DIR" in caplog.text and "pass flow_dir" not in caplog.text
    for place in (tmp_path / "training" / "flow", tmp_path / "MPI-Sintel-training_extras" / "training" / "flow"):
        assert str(place) in caplog.text


def test_prior_model_error_names_the_missing_cache_file(bench, nets, prior_nets, tmp_path):
    """priors=auto and one official file missing: the priors are computed, and the prior model
    fails to load (here: a model of the other kind); the error says which file sent it there."""
    missing = sorted((bench / "tum" / TUM[0] / "rgb_50_depth_prediction_depthpro").iterdir())[2]
    saved = missing.read_bytes()
    missing.unlink()
    try:
        rc, _, err = eval_cli("depth", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro",
                              "--quiet", *overrides(bench, tmp_path, nets), f"data.tum.sequences=[{TUM[0]}]",
                              f"prior_model={prior_nets['depthanything']}")
    finally:
        missing.write_bytes(saved)
    assert rc == 2 and "holds a 'depth_anything' model, not 'depth_pro'" in err
    assert f"the official depthpro cache file {missing} is missing (priors=auto" in err
    assert "prior_models.depthpro=" in err and "priors=official" in err


def test_rewriting_a_prior_cache_file_invalidates_the_result(bench, nets, tmp_path, monkeypatch):
    import align3r.eval.run.runner as runner

    calls = []
    real = runner.evaluate_sequence
    monkeypatch.setattr(runner, "evaluate_sequence", lambda seq, *a, **k: calls.append(seq.name) or real(seq, *a, **k))
    run = ["depth", "--dataset", "tum", "--model", str(nets["prior"]), "--prior", "depthpro", "--name", "p",
           "--quiet", *overrides(bench, tmp_path, nets), f"data.tum.sequences=[{TUM[0]}]"]
    assert eval_cli(*run)[0] == 0 and calls == [TUM[0]]
    rec = records(tmp_path / "p" / "tum-depth")[TUM[0]]
    assert len(rec["inputs"]["prior_files"]) == rec["num_frames"] and rec["inputs"]["prior_source"] == "official-cache"
    assert eval_cli(*run)[0] == 0 and calls == [TUM[0]]  # unchanged: reused
    prior = Path(rec["dataset"]["root"]) / rec["prior"]["files"][0]
    stat = prior.stat()
    try:
        prior.write_bytes(prior.read_bytes())  # rewritten in place (same content, new time)
        os.utime(prior, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
        rc, _, err = eval_cli("depth", "--aggregate-only", *run[1:])
        assert rc == 2 and "settings differ: prior_files" in err
        assert eval_cli(*run)[0] == 0 and calls == [TUM[0], TUM[0]]  # recomputed
    finally:
        os.utime(prior, ns=(stat.st_atime_ns, stat.st_mtime_ns))


# ------------------------------------------------------------ 5. checkpoints of align3r train runs


def _finetuned(folder: Path, source: Path, metadata: dict | None = None) -> Path:
    """``folder`` = a copy of the network at ``source`` as `align3r train` writes ``final_model/``."""
    from align3r.model.checkpoints.read import read_checkpoint
    from align3r.model.checkpoints.write import write_checkpoint

    loaded = read_checkpoint(source)
    return write_checkpoint(loaded.config, loaded.state_dict, folder, metadata=metadata)


def test_single_runs_of_two_training_runs_get_their_own_folders_and_never_mix(bench, nets, tmp_path):
    """run1/final_model and run2/final_model used to share results/final_model-depthpro/; now the
    default name and label name the run, and records of another network in the folder refuse."""
    run1 = _finetuned(tmp_path / "run1" / "final_model", nets["prior"])
    run2 = _finetuned(tmp_path / "run2" / "final_model", nets["prior"])
    results = tmp_path / "res"
    args = ["--prior", "depthpro", "--quiet", *overrides(bench, results, nets), f"data.tum.sequences=[{TUM[0]}]"]
    for run, name in ((run1, "run1"), (run2, "run2")):
        rc, out, err = eval_cli("depth", "--dataset", "tum", "--model", str(run), *args)
        assert rc == 0, err
        assert f"| {name}/final_model (depthpro) |" in out
        rec = records(results / f"{name}-final_model-depthpro" / "tum-depth")[TUM[0]]
        assert rec["settings"]["model"] == str(run)
    # the same folder for another network (--name, or a moved checkpoint): refused, nothing touched
    folder = results / "run1-final_model-depthpro" / "tum-depth"
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    rc, out, err = eval_cli("depth", "--dataset", "tum", "--model", str(run2), "--name", "run1-final_model-depthpro",
                            *args)
    assert rc == 2 and out == ""
    assert f"{folder} (1 record(s) of {run1})" in err and "--name" in err and f"evaluates {run2}" in err
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    # checkpoint-best.pth of two runs alike
    from align3r.eval.run import model_label

    assert model_label(str(run1.parent / "nothing.pth")) == "nothing.pth"  # not on disk: as given
    (tmp_path / "run1" / "checkpoint-best.pth").write_bytes(b"")
    assert model_label(str(tmp_path / "run1" / "checkpoint-best.pth")) == "run1/checkpoint-best.pth"
    assert model_label("align3r-depthpro") == "align3r-depthpro"


def test_prior_auto_and_prior_input_follow_what_align3r_train_recorded(nets, tmp_path, caplog):
    """`align3r eval --prior auto` on a Depth Anything, depth-map fine-tune picks both, for its
    final_model/ (config.json) and its checkpoint-*.pth (the run's config.yaml)."""
    import yaml

    from align3r.commands.eval import compose
    from align3r.eval.run import single_plan

    final = _finetuned(tmp_path / "run" / "final_model", nets["prior"],
                       {"prior": "depthanything", "prior_input": "depthmap"})
    (tmp_path / "run" / "checkpoint-best.pth").write_bytes(b"")  # read for its name only
    (tmp_path / "run" / "config.yaml").write_text(yaml.safe_dump({
        "output_dir": str(tmp_path / "run"), "model": {"preset": "tiny"}, "train": {},
        "data": {"train": {"common": {"prior_name": "depthanything", "prior_input": "depthmap"},
                           "datasets": [{"name": "processed", "size": 4, "root": "x"}]}}}))
    cfg = compose("eval/single", [])

    def plan(model, prior="auto", prior_input=None):
        spec, [(_, exp)] = single_plan(cfg, task="depth", dataset="tum", model=str(model), prior=prior,
                                       prior_input=prior_input, name=None)
        return spec.rows[0].label, exp

    for model in (final, tmp_path / "run" / "checkpoint-best.pth"):
        label, exp = plan(model)
        assert (exp.settings.prior, exp.settings.prior_input) == ("depthanything", "depthmap"), model
        assert label == f"run/{model.name} (depthanything)" and exp.name == f"run-{model.name}-depthanything/tum-depth"
    with caplog.at_level(logging.WARNING, logger="align3r.priors.compatibility"):
        _, exp = plan(final, "depthpro", "pointmap")
    assert (exp.settings.prior, exp.settings.prior_input) == ("depthpro", "pointmap")  # explicit: kept, warned
    assert "--prior-input=pointmap, but --model" in caplog.text and "--prior=depthpro, but --model" in caplog.text
    _, exp = plan(nets["prior"])  # nothing recorded: Depth Pro point maps, as before
    assert (exp.settings.prior, exp.settings.prior_input) == ("depthpro", "pointmap")

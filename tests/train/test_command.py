"""`align3r train` as a command: config composition (custom configs, search path, errors), value
types, resume with other settings, data checks before weights, what final_model/ records, the
generic processed loader on PointOdyssey output, and the preparation script's reports."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from align3r.commands import train as train_command
from align3r.errors import InputError
from align3r.train import checkpoint, resume

REPO = Path(__file__).resolve().parents[2]
LINEAR = "+model.overrides.head_type=linear"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    train_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def train(data_root: Path, output_dir: Path, *overrides: str) -> None:
    assert train_command.run(_args("--config", "tiny", f"data_root={data_root}", f"output_dir={output_dir}", LINEAR,
                                   *overrides)) == 0


@pytest.fixture(scope="module")
def tiny_set(tmp_path_factory, synth):
    root = tmp_path_factory.mktemp("tiny_set")
    synth.write_processed_sequence(root / "seq0", n=3, size=(96, 64), prior_names=("depthpro", "depthanything"))
    synth.write_processed_sequence(root / "seq1", n=2, size=(96, 64), seed=1, prior_names=("depthpro", "depthanything"))
    return root


# ------------------------------------------------------------------------------ 1. resume


def test_rerunning_a_finished_run_with_other_settings_trains_nothing_and_keeps_its_config(tiny_set, tmp_path,
                                                                                         caplog, capsys):
    out = tmp_path / "run"
    train(tiny_set, out)
    written = (out / "config.yaml").read_text()
    final = {p.name: p.stat().st_mtime_ns for p in (out / checkpoint.FINAL, out / "final_model" / "config.json")}
    capsys.readouterr()
    with caplog.at_level(logging.WARNING, logger="align3r"):
        train(tiny_set, out, "train.optim.lr=0.5", "train_pairs=100")
    assert (out / "config.yaml").read_text() == written  # not overwritten with settings that were not used
    assert {p.name: p.stat().st_mtime_ns for p in (out / checkpoint.FINAL, out / "final_model" / "config.json")} \
        == final  # nothing trained or rewritten
    assert "nothing to do" in capsys.readouterr().out
    assert "has finished (epoch 1 of 1): nothing is trained" in caplog.text
    assert "train.optim.lr: 0.0001 -> 0.5" in caplog.text and "train_pairs: 4 -> 100" in caplog.text
    assert "data.train.datasets.0.size: 4 -> 100" in caplog.text and "new output_dir" in caplog.text
    assert not (out / resume.CHANGES_LOG).exists()


def test_resuming_with_other_settings_warns_and_logs_them_beside_the_original_config(tiny_set, tmp_path, caplog):
    out = tmp_path / "run"
    train(tiny_set, out, "train.optim.epochs=3", "train.max_steps=1")
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["optim"]["epochs"] == 3
    with caplog.at_level(logging.INFO, logger="align3r"):
        train(tiny_set, out, "train.optim.epochs=1")  # mid-run: 3 -> 1 epochs
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    [warning] = [w for w in warnings if "differ from the run's" in w]
    assert "resuming" in warning and "train.optim.epochs: 3 -> 1" in warning
    assert "train.max_steps" not in warning  # run control: info only
    assert any("run-control settings changed: train.max_steps: 1 -> (unset)" in r.getMessage()
               for r in caplog.records)
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["optim"]["epochs"] == 3  # the original
    [record] = [json.loads(line) for line in (out / resume.CHANGES_LOG).read_text().splitlines()]
    assert record["changes"]["train.optim.epochs"] == [3, 1] and (record["epoch"], record["step"]) == (0, 1)
    assert checkpoint.load_checkpoint(out / checkpoint.LAST)["train_config"]["optim"]["epochs"] == 1  # it applied


# ------------------------------------------------------------------- 2. final_model records the prior


def test_final_model_records_the_prior_it_was_trained_with(tiny_set, tmp_path):
    from align3r.eval.run import model_label
    from align3r.model import read_checkpoint
    from align3r.priors.compatibility import effective_prior_input, resolve_prior_name, training_metadata

    out = tmp_path / "da_depthmap"
    train(tiny_set, out, "prior_name=depthanything", "prior_input=depthmap")
    recorded = {"prior": "depthanything", "prior_input": "depthmap"}
    assert json.loads((out / "final_model" / "config.json").read_text())["training"] == recorded
    assert read_checkpoint(out / "final_model").training == recorded
    for model in (out / "final_model", out / checkpoint.BEST, out / checkpoint.FINAL):
        assert training_metadata(model) == recorded, model  # .pth: from the run's config.yaml
        assert resolve_prior_name(str(model), "auto") == "depthanything"
        assert effective_prior_input(str(model), "auto") == "depthmap"
    assert model_label(str(out / "final_model")) == "da_depthmap/final_model"
    default = tmp_path / "default"
    train(tiny_set, default)
    assert training_metadata(default / "final_model") == {"prior": "depthpro", "prior_input": "pointmap"}


# ------------------------------------------------------------------------------ 4. value types


@pytest.mark.parametrize(("override", "message"), [
    ("train.optim.lr=abc", "train.optim.lr=abc: expected a number"),
    ("train.batch_size=abc", "train.batch_size=abc: expected an integer"),
    ("train.optim.epochs=1.5", "train.optim.epochs=1.5: expected an integer"),
    ("train.max_steps=x", "train.max_steps=x: expected an integer or null"),
    ("train.tf32=maybe", "train.tf32=maybe: expected true or false"),
    ("seed=abc", "seed=abc: expected an integer"),
    ("train.optim.betas=[0.9]", "train.optim.betas=[0.9]: expected a list of 2 numbers"),
])
def test_a_value_of_the_wrong_type_is_a_one_line_error(tmp_path, override, message):
    with pytest.raises(InputError) as info:
        train_command.run(_args("--config", "tiny", f"output_dir={tmp_path / 'run'}", f"data_root={tmp_path}",
                                override))
    assert str(info.value) == message
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------ 5. custom configs


def test_a_custom_config_builds_on_the_shipped_ones(tmp_path, capsys):
    shipped = REPO / "configs" / "train"
    mine = tmp_path / "x" / "mytiny.yaml"
    mine.parent.mkdir()
    shutil.copy(shipped / "tiny.yaml", mine)
    cfg = train_command.compose_config(str(mine), None, [])  # its defaults name align3r_depthpro and data/processed
    assert cfg.model.preset == "tiny" and cfg.train.optim.lr == 1e-4 and cfg.prior_name == "depthpro"
    assert train_command.run(_args("--config", str(mine), "--print-config")) == 0
    assert "preset: tiny" in capsys.readouterr().out
    # a name in --config-dir; that folder comes first (its data/processed.yaml replaces the shipped one)
    conf = tmp_path / "myconf"
    (conf / "data").mkdir(parents=True)
    shutil.copy(shipped / "tiny.yaml", conf / "mytiny.yaml")
    cfg = train_command.compose_config("mytiny", str(conf), [])
    assert cfg.data.test.datasets.Tiny.name == "processed"
    (conf / "data" / "processed.yaml").write_text("train: {common: {max_gap: 7}, datasets: []}\ntest: {}\n")
    assert train_command.compose_config("mytiny", str(conf), []).data.train.common.max_gap == 7
    assert train_command.compose_config(str(conf / "mytiny.yaml"), str(conf), []).data.train.common.max_gap == 7
    # shipped names still work with --config-dir
    assert train_command.compose_config("align3r_depthanything", str(conf), []).prior_name == "depthanything"


def test_config_lookup_errors_name_the_path_or_the_available_configs(tmp_path):
    with pytest.raises(InputError, match=r"training config file /nonexistent\.yaml not found \(looked at "
                                         r"/nonexistent\.yaml\)"):
        train_command.compose_config("/nonexistent.yaml", None, [])
    with pytest.raises(InputError) as info:
        train_command.compose_config("tny", None, [])
    assert "no training config 'tny'" in str(info.value)
    assert "available: tiny, " in str(info.value) and "align3r_depthpro" in str(info.value)  # close matches first
    with pytest.raises(InputError, match=r"folder .* not found"):
        train_command.compose_config("tiny", str(tmp_path / "absent"), [])


# ------------------------------------------------------- 6. the generic loader on PointOdyssey output


def test_the_processed_loader_reads_pointodyssey_output_as_pointodyssey(tmp_path, synth):
    """data_root=data with every *_proc folder: PointOdyssey_proc's world-to-camera metadata is
    inverted as the pointodyssey reader does (found by its folder name or prepare.py's marker)."""
    from align3r.data.datasets import PREPARED_MARKER, PointOdysseyPairs, ProcessedPairs, prepared_dataset
    from align3r.data.io import FramePaths, read_metadata
    from align3r.data.prepare import common, pointodyssey

    data = tmp_path / "data"
    synth.write_pointodyssey(tmp_path / "raw", n=2, size=(128, 96))
    raw = pointodyssey.raw_sequences(tmp_path / "raw", splits=("train",))
    common.prepare(raw, data / "PointOdyssey_proc", progress=False)  # no marker: found by its name
    common.prepare(raw, data / "po_renamed", progress=False, dataset="pointodyssey")  # marker, any name
    synth.write_processed_sequence(data / "Mine_proc" / "seq", n=2, size=(96, 64))
    synth.write_priors(data / "PointOdyssey_proc")
    synth.write_priors(data / "po_renamed")
    assert json.loads((data / "po_renamed" / PREPARED_MARKER).read_text())["dataset"] == "pointodyssey"
    assert prepared_dataset(data / "po_renamed" / "train" / "seq_a") == "pointodyssey"
    assert prepared_dataset(data / "Mine_proc" / "seq") is None

    generic = ProcessedPairs(data, resolution=(96, 64))
    reference = PointOdysseyPairs(data / "PointOdyssey_proc" / "train", resolution=(96, 64))
    assert len(generic.world_to_camera_folders) == 2
    for frame in sorted(data.rglob("*_rgb.jpg")):
        stored = read_metadata(FramePaths(frame).metadata)[1]
        pose = generic.load_frame(frame)[4]
        if "Mine_proc" in frame.parts:
            np.testing.assert_array_equal(pose, stored)  # camera-to-world as stored
        else:
            np.testing.assert_allclose(pose, np.linalg.inv(stored), atol=1e-6)
            if "PointOdyssey_proc" in frame.parts:
                np.testing.assert_array_equal(pose, reference.load_frame(frame)[4])
    # an explicit invert_pose turns the detection off
    assert not ProcessedPairs(data, resolution=(96, 64), invert_pose=False).world_to_camera_folders


# --------------------------------------------------------------------- 7. data checks, errors


def test_missing_dataset_folders_fail_before_any_weights_and_name_the_overrides_that_drop_them(tmp_path, monkeypatch,
                                                                                              synth):
    def no_weights(*args, **kwargs):
        raise AssertionError("weights were read before the data was checked")

    monkeypatch.setattr("align3r.model.read_checkpoint", no_weights)
    data = tmp_path / "data"
    synth.write_processed_sequence(data / "Tartanair_proc" / "a", n=2)
    (data / "PointOdyssey_proc" / "train").mkdir(parents=True)
    base = ["--config", "align3r_depthpro", f"data_root={data}", f"output_dir={tmp_path / 'run'}"]
    with pytest.raises(InputError) as info:
        train_command.run(_args(*base))
    message = str(info.value)
    assert "data.train.datasets.2 (spring): " + str(data / "spring_proc" / "train") in message
    assert "(= ${data_root}/spring_proc/train)" in message
    drops = ["'~data.train.datasets.2'", "'~data.train.datasets.3'", "'~data.train.datasets.4'",
             "'~data.test.datasets.Sintel'", "'~data.test.datasets.Spring'", "'~data.test.datasets.SceneFlow'"]
    assert message.endswith("add the override(s) " + " ".join(drops))
    assert "\n" not in message
    # the overrides it names work (Hydra alone fails on list items) and leave the folders that exist
    cfg = train_command.compose_config("align3r_depthpro", None,
                                       [f"data_root={data}", *(d.strip("'") for d in drops)])
    assert [d.name for d in cfg.data.train.datasets] == ["pointodyssey", "tartanair"]
    assert sorted(cfg.data.test.datasets) == ["PointOdyssey", "TartanAir"]
    from omegaconf import OmegaConf

    from align3r.train.run import check_data

    check_data(OmegaConf.to_container(cfg.data, resolve=True))  # passes


@pytest.mark.parametrize(("override", "message"), [
    ("test_pairs=0", "data.test.datasets.Tiny.size=0 (= ${test_pairs}): a mixture size must be a positive integer"),
    ("train_pairs=abc", "data.train.datasets.0.size=abc (= ${train_pairs}): a mixture size must be a positive "
                        "integer"),
    ("~data.train.datasets.3", "cannot delete '~data.train.datasets.3': data.train.datasets has 1 item(s) "
                               "(indices 0 to 0)"),
    ("~data.train.common.aug_crop.1", "cannot delete '~data.train.common.aug_crop.1': data.train.common.aug_crop is "
                                      "not a list in the config"),
])
def test_bad_mixture_settings_are_one_line_errors_naming_the_key(tmp_path, synth, override, message):
    synth.write_processed_sequence(tmp_path / "data" / "seq", n=2)
    with pytest.raises(InputError) as info:
        train_command.run(_args("--config", "tiny", f"data_root={tmp_path / 'data'}",
                                f"output_dir={tmp_path / 'run'}", override))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_print_config_prints_once(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("RANK", "1")
    assert train_command.run(_args("--config", "tiny", "--print-config")) == 0
    assert capsys.readouterr().out == ""  # under torchrun only rank 0 prints
    monkeypatch.setenv("RANK", "0")
    assert train_command.run(_args("--config", "tiny", "--print-config")) == 0
    assert capsys.readouterr().out.count("output_dir:") == 1
    # the launch scripts print it from one plain process, not one per GPU
    for tool in ("torchrun", "python"):
        fake = tmp_path / tool
        fake.write_text(f'#!/bin/sh\necho {tool}; printf "%s\\n" "$@"\n')
        fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", str(REPO / "scripts" / "train" / "finetune_8gpu.sh"), "depthanything",
                           "--print-config", "data_root=/d"], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    args = done.stdout.split("\n")[:-1]
    assert args[:4] == ["python", "-m", "align3r.cli", "train"] and "--print-config" in args
    assert args[args.index("--config") + 1] == "align3r_depthanything" and args[-1] == "data_root=/d"


def test_prepare_reports_skipped_frames_and_names_the_root_and_layout(tmp_path, synth, capsys):
    import importlib.util

    spec = importlib.util.spec_from_file_location("prepare_script", REPO / "scripts" / "train" / "prepare.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    synth.write_tartanair(tmp_path / "raw", n=2)
    assert module.main(["tartanair", str(tmp_path / "raw"), str(tmp_path / "proc")]) == 0
    assert capsys.readouterr().out.strip() == f"2 frames written to {tmp_path / 'proc'}"
    assert module.main(["tartanair", str(tmp_path / "raw"), str(tmp_path / "proc")]) == 0
    assert capsys.readouterr().out.strip() == (f"0 frames written to {tmp_path / 'proc'}; 2 already complete, "
                                               "skipped (of 2 frames in 1 sequences; --overwrite redoes them)")
    assert json.loads((tmp_path / "proc" / "align3r_prepared.json").read_text())["dataset"] == "tartanair"
    empty = tmp_path / "po_raw"
    for split in ("train", "val"):
        (empty / split).mkdir(parents=True)
    assert module.main(["pointodyssey", str(empty), str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err
    assert f"no raw sequences found under {empty}; expected {{train,val}}/<seq>/rgbs/*.jpg" in err
    assert not (tmp_path / "p").exists()

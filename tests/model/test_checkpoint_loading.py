"""Checkpoint files: safe unpickling, strict keys, our own format, conversion."""

from __future__ import annotations

import argparse
import json
import pathlib

import pytest
import torch
from safetensors.torch import load_file

from align3r.errors import CheckpointError
from align3r.model import Align3RNet, convert_checkpoint, load_model
from align3r.model.checkpoints.pth import read_official_pth

OUTPUTS = ("pts3d1", "conf1", "pts3d_in_other_view2", "conf2")


@pytest.fixture(scope="module")
def official_a(model_dir):
    """(state dict, constructor string) of the tiny A checkpoint."""
    return read_official_pth(model_dir / "a3r_tiny_a.pth")


def _save(path: pathlib.Path, state_dict: dict, model: str, **extra) -> pathlib.Path:
    torch.save({"args": argparse.Namespace(model=model, lr=5e-5, epochs=50), "model": state_dict, **extra}, path)
    return path


def test_fixture_tensors_are_strided_views_and_load_as_copies(official_a, official_net):
    state_dict, _ = official_a
    assert sum(not v.is_contiguous() for v in state_dict.values()) > 200
    net = official_net("a3r_tiny_a")
    key = next(k for k, v in state_dict.items() if not v.is_contiguous() and v.ndim == 2)
    param = net.state_dict()[key]
    assert param.is_contiguous() and torch.equal(param, state_dict[key])


@pytest.mark.parametrize(("edit", "fragments"), [
    ("missing", ["missing keys", "dec_blocks.3.cross_attn.projk.weight"]),
    ("extra", ["unexpected keys", "dec_blocks.99.norm1.weight"]),
    ("shape", ["mis-shaped keys", "downstream_head2.dpt.head.4.weight (5, 128, 1, 1) (expected (4, 128, 1, 1))"]),
    ("truncated_prior", ["missing keys", "dec_blocks_pc.2.mlp.fc2.bias"]),
])
def test_wrong_keys_are_named(official_a, tmp_path, edit, fragments):
    state_dict, model = official_a
    state_dict = dict(state_dict)
    if edit == "missing":
        del state_dict["dec_blocks.3.cross_attn.projk.weight"]
    elif edit == "extra":
        state_dict["dec_blocks.99.norm1.weight"] = torch.ones(96)
    elif edit == "shape":
        state_dict["downstream_head2.dpt.head.4.weight"] = torch.zeros(5, 128, 1, 1)
    else:
        for key in [k for k in state_dict if k.startswith("dec_blocks_pc.2.")]:
            del state_dict[key]
    path = _save(tmp_path / "edited.pth", state_dict, model)
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    message = str(info.value)
    assert str(path) in message and "Expected an official checkpoint" in message and "Align3R network" in message
    for fragment in fragments:
        assert fragment in message


def test_differing_alias_is_refused(official_a, tmp_path):
    state_dict, model = dict(official_a[0]), official_a[1]
    state_dict["downstream_head1.dpt.scratch.layer_rn.2.weight"] = torch.zeros_like(
        state_dict["downstream_head1.dpt.scratch.layer3_rn.weight"])
    with pytest.raises(CheckpointError, match=r"layer_rn\.2\.weight.*should hold the same tensor"):
        load_model(_save(tmp_path / "alias.pth", state_dict, model))


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, target: pathlib.Path) -> None:
        self.target = target

    def __reduce__(self):
        return (pathlib.Path.touch, (self.target,))


def test_pickled_code_is_refused_and_never_runs(official_a, tmp_path):
    marker = tmp_path / "pwned"
    path = _save(tmp_path / "evil.pth", dict(official_a[0]), official_a[1], extra=_Payload(marker))
    assert not marker.exists()
    with pytest.raises(CheckpointError) as info:
        load_model(path)
    assert not marker.exists()
    assert "allow-list" in str(info.value) and "pathlib" in str(info.value)
    offenders = str(info.value).split("(argparse.Namespace): ")[1]
    assert "Namespace" not in offenders  # the allowed global is not listed among the refused ones


def test_training_checkpoint_and_dict_args_load(model_dir, official_net, case, outputs_of, tmp_path):
    state_dict, model = read_official_pth(model_dir / "dust3r_linear_tiny.pth")
    optimizer = {"state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(4)}}, "param_groups": [{"lr": 1e-4}]}
    path = _save(tmp_path / "checkpoint-last.pth", dict(state_dict), model, optimizer=optimizer,
                 scaler={"scale": 65536.0}, epoch=7, best_so_far=0.25)
    c = case("dust3r_linear_tiny", "portrait_96x64_b1")
    ref = outputs_of(official_net("dust3r_linear_tiny"), *c.views())
    torch.save({"args": {"model": model}, "model": dict(state_dict)}, tmp_path / "dict_args.pth")
    for loaded in (load_model(path), load_model(tmp_path / "dict_args.pth")):
        ours = outputs_of(loaded, *c.views())
        assert all(torch.equal(ours[k], ref[k]) for k in OUTPUTS)


@pytest.mark.parametrize(("payload", "fragment"), [
    ({"model": {}}, "constructor string"),
    ({"args": argparse.Namespace(model="AsymmetricCroCo3DStereo()")}, "expected a dict with 'args' and 'model'"),
    ([1, 2, 3], "expected a dict"),
])
def test_not_a_checkpoint(tmp_path, payload, fragment):
    torch.save(payload, tmp_path / "odd.pth")
    with pytest.raises(CheckpointError, match=fragment):
        load_model(tmp_path / "odd.pth")


@pytest.mark.parametrize(("content", "fragment"), [
    (b"hello", "a text file"),
    (b"", "the file is empty"),
    (b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>", "HTML/XML page"),
    (b'{"error": "Quota exceeded"}', "JSON text"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 2\n", "git lfs pull"),
    (bytes(range(7, 250)), "not a checkpoint"),  # binary junk reaches the unpickler
])
def test_failed_downloads_say_what_the_file_is(tmp_path, content, fragment):
    """What a failed download leaves behind gives a one-line CheckpointError, never a traceback."""
    path = tmp_path / "align3r_depthpro.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=fragment) as info:
        load_model(path)
    assert "download it again" in str(info.value) or "git lfs" in str(info.value)
    assert "allow-list" not in str(info.value)


def test_truncated_and_missing_files(model_dir, tmp_path):
    data = (model_dir / "a3r_tiny_a.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(tmp_path / "cut.pth")
    for missing in (tmp_path / "nothing_here.pth", tmp_path / "no_folder", str(tmp_path / "no_folder")):
        with pytest.raises(CheckpointError, match="not found"):
            load_model(missing)


def test_save_pretrained_round_trip(official_net, case, outputs_of, tmp_path):
    net = official_net("a3r_tiny_a")
    folder = net.save_pretrained(tmp_path / "ours")
    config = json.loads((folder / "config.json").read_text())
    assert config["align3r_format"] == 1 and config["config"]["with_prior"] is True
    tensors = load_file(folder / "model.safetensors")
    assert set(tensors) == set(net.state_dict()) and not any("layer_rn" in k for k in tensors)
    c = case("a3r_tiny_a", "landscape_64x96_b1")
    loaded = load_model(folder)
    assert not loaded.training and loaded.config == net.config
    again, ref = outputs_of(loaded, *c.views()), outputs_of(net, *c.views())
    assert all(torch.equal(again[k], ref[k]) for k in OUTPUTS)


def test_from_pretrained_entry_points(official_net, case, outputs_of, tmp_path):
    net = official_net("dust3r_linear_tiny")
    folder = net.save_pretrained(tmp_path / "ours")
    c = case("dust3r_linear_tiny", "square_64x64_b2")
    ref = outputs_of(net, *c.views())
    for loaded in (Align3RNet.from_pretrained(folder), load_model(folder / "model.safetensors")):
        again = outputs_of(loaded, *c.views())
        assert all(torch.equal(again[k], ref[k]) for k in OUTPUTS)


def test_truncated_safetensors_is_refused(official_net, tmp_path):
    folder = official_net("dust3r_linear_tiny").save_pretrained(tmp_path / "ours")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) - 1000])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(folder)
    (folder / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"lacks \['model\.safetensors'\]"):
        load_model(folder)


def test_convert_writes_our_format_without_aliases(model_dir, case, official_net, outputs_of, tmp_path):
    loaded = convert_checkpoint(model_dir / "a3r_tiny_b.pth", tmp_path / "b")
    assert loaded.kind == "official-pth"
    net = load_model(tmp_path / "b")
    c = case("a3r_tiny_b", "oddgrid_48x80_b1")
    ours, ref = outputs_of(net, *c.views()), outputs_of(official_net("a3r_tiny_b"), *c.views())
    assert all(torch.equal(ours[k], ref[k]) for k in OUTPUTS)


def test_convert_into_a_file_says_so_before_reading(model_dir, tmp_path, capsys):
    from align3r.cli import main

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    assert main(["convert", str(model_dir / "a3r_tiny_a.pth"), str(afile)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"align3r convert: error: output folder {afile} is a file, not a folder; choose another folder"
    assert afile.read_text() == "not a folder" and sorted(p.name for p in tmp_path.iterdir()) == ["afile"]
    assert main(["convert", str(model_dir / "a3r_tiny_a.pth"), str(afile / "sub")]) == 2
    assert f"{afile} is a file, not a folder" in capsys.readouterr().err


def test_load_with_bf16_trunk_keeps_heads_float32(model_dir, case, rel_err, outputs_of):
    net = load_model(model_dir / "dust3r_linear_tiny.pth", dtype=torch.bfloat16)
    assert net.trunk_dtype == torch.bfloat16 and net.downstream_head1.proj.weight.dtype == torch.float32
    c = case("dust3r_linear_tiny", "square_64x64_b2")
    ours = outputs_of(net, *c.views())
    assert ours["pts3d1"].dtype == torch.float32
    assert rel_err(ours["pts3d1"], c["pts3d1"]) < 0.1


def test_package_level_entry_points():
    import align3r
    import align3r.model

    assert align3r.load_model is align3r.model.load_model
    assert align3r.Align3RNet is align3r.model.Align3RNet


def test_plain_pth_with_aliases_loads_into_independent_parameters(official_net, case, outputs_of, tmp_path):
    """A real-world .pth (contiguous tensors, DPT aliases sharing storage) loads without a second copy;
    every parameter still has its own memory."""
    from align3r.model.official_args import official_args_from_config

    net = official_net("a3r_tiny_b")
    state_dict = {k: v.clone() for k, v in net.state_dict().items()}
    for h in (1, 2):
        for i in range(4):
            state_dict[f"downstream_head{h}.dpt.scratch.layer_rn.{i}.weight"] = state_dict[
                f"downstream_head{h}.dpt.scratch.layer{i + 1}_rn.weight"]
    path = _save(tmp_path / "plain.pth", state_dict, official_args_from_config(net.config))
    loaded = load_model(path)
    pointers = [p.untyped_storage().data_ptr() for p in loaded.parameters()]
    assert len(set(pointers)) == len(pointers)
    c = case("a3r_tiny_b", "square_64x64_b2")
    ours, ref = outputs_of(loaded, *c.views()), outputs_of(net, *c.views())
    assert all(torch.equal(ours[k], ref[k]) for k in OUTPUTS)

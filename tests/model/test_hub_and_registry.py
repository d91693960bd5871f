"""Hub layout and the registry of released checkpoints, offline, with tiny files in temporary caches."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import pytest
import safetensors.torch
import torch

from align3r.cli import main as cli_main
from align3r.errors import CheckpointError, OfflineError
from align3r.model import REGISTRY, load_model, resolve_checkpoint
from align3r.model.checkpoints.pth import read_official_pth

OUTPUTS = ("pts3d1", "conf1", "pts3d_in_other_view2", "conf2")


@pytest.fixture(scope="session")
def tiny_a_hub_folder(model_dir, tmp_path_factory) -> Path:
    """The official Hub files of tiny A, rebuilt as the fixtures README says (~170 MB, once)."""
    folder = tmp_path_factory.mktemp("tiny_a_hub")
    state_dict, _ = read_official_pth(model_dir / "a3r_tiny_a.pth")
    header = json.loads((model_dir / "a3r_tiny_a_hub" / "model.safetensors.header.json").read_text())
    metadata = header.pop("__metadata__")
    safetensors.torch.save_file({k: state_dict[k].contiguous() for k in header}, folder / "model.safetensors",
                                metadata=metadata)
    shutil.copy(model_dir / "a3r_tiny_a_hub" / "config.json", folder / "config.json")
    return folder


def make_hub_cache(cache: Path, repo_id: str, files: Path, revision: str = "0" * 40) -> Path:
    """Lay ``files`` out as huggingface_hub's cache does (``models--org--name/snapshots/<rev>/``)."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    for name in ("config.json", "model.safetensors"):
        (snapshot / name).symlink_to(files / name)
    return snapshot


@pytest.fixture
def clean_places(tmp_path, monkeypatch):
    """Empty checkpoint folder and Hub cache; cwd away from the project's checkpoints/."""
    cache, local, work = tmp_path / "hub", tmp_path / "ckpts", tmp_path / "work"
    for d in (cache, local, work):
        d.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("ALIGN3R_CHECKPOINTS", str(local))
    monkeypatch.chdir(work)
    monkeypatch.setattr("align3r.model.registry.SOURCE_TREE_CHECKPOINTS", tmp_path / "no_source_tree")
    return cache, local


def test_hub_layout_has_no_aliases_and_loads_like_the_pth(tiny_a_hub_folder, official_net, case, outputs_of,
                                                          clean_places):
    cache, _ = clean_places
    tensors = safetensors.torch.load_file(tiny_a_hub_folder / "model.safetensors")
    assert len(tensors) == 687 and not any(".layer_rn." in k for k in tensors)
    make_hub_cache(cache, "org/tiny-a", tiny_a_hub_folder)
    net = load_model("org/tiny-a")  # repo id, offline, from the cache
    assert net.config == official_net("a3r_tiny_a").config
    c = case("a3r_tiny_a", "portrait_96x64_b1")
    ours, ref = outputs_of(net, *c.views()), outputs_of(official_net("a3r_tiny_a"), *c.views())
    assert all(torch.equal(ours[k], ref[k]) for k in OUTPUTS)
    assert load_model(tiny_a_hub_folder).config == net.config  # the folder itself


def test_registry_names_and_repos():
    assert set(REGISTRY) == {"align3r-depthpro", "align3r-depthanything", "dust3r-512-dpt", "dust3r-224-linear",
                             "monst3r"}
    assert REGISTRY["align3r-depthpro"].repo_id == "cyun9286/Align3R_DepthPro_ViTLarge_BaseDecoder_512_dpt"
    assert REGISTRY["align3r-depthanything"].repo_id == "cyun9286/Align3R_DepthAnythingV2_ViTLarge_BaseDecoder_512_dpt"
    assert REGISTRY["dust3r-512-dpt"].repo_id == "naver/DUSt3R_ViTLarge_BaseDecoder_512_dpt"
    assert [n for n, e in REGISTRY.items() if e.with_prior] == ["align3r-depthpro", "align3r-depthanything"]


def test_short_name_resolves_local_file_first(model_dir, clean_places):
    _, local = clean_places
    (local / "align3r_depthpro.pth").symlink_to(model_dir / "a3r_tiny_a.pth")
    assert resolve_checkpoint("align3r-depthpro") == local / "align3r_depthpro.pth"
    assert load_model("align3r-depthpro").config.dec_depth == 10


def test_short_name_resolves_hub_cache(tiny_a_hub_folder, clean_places):
    cache, _ = clean_places
    entry = REGISTRY["align3r-depthanything"]
    snapshot = make_hub_cache(cache, entry.repo_id, tiny_a_hub_folder)
    assert resolve_checkpoint("align3r-depthanything") == snapshot
    assert load_model("align3r-depthanything").config.with_prior


def test_offline_and_missing_says_what_to_fetch_and_where(clean_places):
    _, local = clean_places
    with pytest.raises(OfflineError) as info:
        load_model("monst3r")
    message = str(info.value)
    for fragment in ("Junyi42/MonST3R_PO-TA-S-W_ViTLarge_BaseDecoder_512_dpt",
                     "MonST3R_PO-TA-S-W_ViTLarge_BaseDecoder_512_dpt.pth", str(local), "HF_HUB_CACHE",
                     "config.json", "model.safetensors"):
        assert fragment in message
    with pytest.raises(OfflineError, match="someone/unknown-model"):
        load_model("someone/unknown-model")


def test_wrong_family_under_a_released_name(model_dir, clean_places):
    _, local = clean_places
    (local / "align3r_depthpro.pth").symlink_to(model_dir / "dust3r_linear_tiny.pth")
    with pytest.raises(CheckpointError, match="should be an Align3R checkpoint"):
        load_model("align3r-depthpro")


def test_damaged_file_under_a_released_name_names_the_release(model_dir, clean_places):
    _, local = clean_places
    state_dict, model = read_official_pth(model_dir / "a3r_tiny_a.pth")
    del state_dict["dec_blocks.3.cross_attn.projk.weight"]
    torch.save({"model": state_dict, "args": argparse.Namespace(model=model)}, local / "align3r_depthpro.pth")
    with pytest.raises(CheckpointError) as info:
        load_model("align3r-depthpro")
    message = str(info.value)
    entry = REGISTRY["align3r-depthpro"]
    for fragment in ("dec_blocks.3.cross_attn.projk.weight", str(local / "align3r_depthpro.pth"), entry.filename,
                     entry.repo_id):
        assert fragment in message


def test_checkpoints_command_lists_and_checks(model_dir, clean_places, capsys):
    _, local = clean_places
    (local / "DUSt3R_ViTLarge_BaseDecoder_224_linear.pth").symlink_to(model_dir / "dust3r_linear_tiny.pth")
    assert cli_main(["checkpoints"]) == 0
    table = capsys.readouterr().out
    rows = {line.split("|")[1].strip(): line for line in table.splitlines() if line.startswith("| ")}
    assert set(REGISTRY) <= set(rows)
    assert str(local / "DUSt3R_ViTLarge_BaseDecoder_224_linear.pth") in rows["dust3r-224-linear"]
    assert "missing" in rows["align3r-depthpro"]
    searched = table.strip().splitlines()[-1]
    assert searched.startswith(f"searched: {local}, ") and f"Hugging Face cache {clean_places[0]};" in searched
    assert cli_main(["checkpoints", "--check", "dust3r-224-linear"]) == 0
    assert "all keys and shapes match" in capsys.readouterr().out
    assert cli_main(["checkpoints", "--fetch", "monst3r"]) == 2  # offline: a one-line error
    assert "HF_HUB_OFFLINE" in capsys.readouterr().err
    assert cli_main(["checkpoints", "--fetch", "dust3r-224-linear"]) == 0  # a local copy: no Hub, even offline
    assert capsys.readouterr().out.strip() == (f"dust3r-224-linear: already present at {local / REGISTRY['dust3r-224-linear'].filename}"
                                               " (used before the Hub cache); nothing fetched")


def test_convert_command(model_dir, tmp_path, capsys):
    assert cli_main(["convert", str(model_dir / "dust3r_linear_tiny.pth"), str(tmp_path / "out")]) == 0
    assert "wrote" in capsys.readouterr().out
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    assert config["config"]["head_type"] == "linear" and config["config"]["with_prior"] is False
    assert cli_main(["convert", str(tmp_path / "missing.pth"), str(tmp_path / "out2")]) == 2
    assert "not found" in capsys.readouterr().err

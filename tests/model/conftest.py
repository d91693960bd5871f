"""Shared helpers for the network tests: the official tiny checkpoints and their golden cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from align3r.model import load_model


def _rel_err(ours: torch.Tensor | np.ndarray, ref: np.ndarray) -> float:
    ours = ours.detach().cpu().double().numpy() if isinstance(ours, torch.Tensor) else np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    assert ours.shape == ref.shape, (ours.shape, ref.shape)
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def flat_outputs(res1: dict, res2: dict) -> dict[str, torch.Tensor]:
    return {"pts3d1": res1["pts3d"], "conf1": res1["conf"],
            "pts3d_in_other_view2": res2["pts3d_in_other_view"], "conf2": res2["conf"]}


class Case:
    """One golden ``.npz``: the two views as our network takes them, and the reference arrays."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = dict(np.load(path))

    def view(self, k: int, with_prior: bool = True) -> dict[str, torch.Tensor]:
        v = {"img": torch.from_numpy(self.data[f"img{k}"]), "true_shape": torch.from_numpy(self.data[f"true_shape{k}"])}
        if with_prior and f"pred_depth{k}" in self.data:
            v["prior_pts3d"] = torch.from_numpy(self.data[f"pred_depth{k}"])
        return v

    def views(self, with_prior: bool = True) -> tuple[dict, dict]:
        return self.view(1, with_prior), self.view(2, with_prior)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data


@pytest.fixture(scope="session")
def model_dir(fixtures_dir: Path) -> Path:
    return fixtures_dir / "model"


@pytest.fixture(scope="session")
def model_json(model_dir: Path) -> dict:
    return json.loads((model_dir / "model.json").read_text())


@pytest.fixture(scope="session")
def case(model_dir: Path):
    cache: dict[str, Case] = {}

    def get(checkpoint: str, name: str) -> Case:
        key = f"{checkpoint}__{name}"
        if key not in cache:
            cache[key] = Case(model_dir / f"{key}.npz")
        return cache[key]

    return get


@pytest.fixture(scope="session")
def official_net(model_dir: Path):
    """``official_net(name)``: the official tiny ``.pth`` loaded once per session via ``load_model``."""
    cache: dict[str, torch.nn.Module] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = load_model(model_dir / f"{name}.pth")
        return cache[name]

    return get


def _run(net, view1: dict, view2: dict, **options) -> dict[str, torch.Tensor]:
    with torch.no_grad():
        return flat_outputs(*net(view1, view2, **options))


@pytest.fixture(scope="session")
def rel_err():
    """``rel_err(ours, ref)``: max |ours - ref| / max |ref| (the fixtures' error measure)."""
    return _rel_err


@pytest.fixture(scope="session")
def outputs_of():
    """``outputs_of(net, view1, view2, **forward_options)``: the four outputs under the fixtures' names, no grad."""
    return _run

"""Fixtures of the training tests: the synthetic-scene helpers and tiny processed datasets."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

_HERE = Path(__file__).parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"align3r_train_tests_{name}", _HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNTH = _load("synth")


@pytest.fixture(scope="session")
def synth():
    """The :mod:`synth` helper module (box-room scenes, raw-format writers)."""
    return SYNTH



@pytest.fixture(autouse=True)
def _single_torch_thread():
    """Data loading runs single-threaded in loader workers; the tiny maps here gain nothing from
    a thread pool, which only adds contention on a shared 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

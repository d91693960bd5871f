"""Fixtures of the prior tests: tiny random depth models saved to temporary folders, small frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from .tiny_models import save_tiny_depth_anything, save_tiny_depth_pro


@pytest.fixture(scope="session")
def tiny_depth_pro(tmp_path_factory) -> Path:
    return save_tiny_depth_pro(tmp_path_factory.mktemp("depth_pro"))


@pytest.fixture(scope="session")
def tiny_depth_anything(tmp_path_factory) -> Path:
    return save_tiny_depth_anything(tmp_path_factory.mktemp("depth_anything"))


@pytest.fixture(scope="session")
def frames() -> list[np.ndarray]:
    """Three small random RGB frames of one size (H=40, W=72, a 16:9-ish video)."""
    rng = np.random.default_rng(7)
    return [rng.integers(0, 256, (40, 72, 3), dtype=np.uint8) for _ in range(3)]

"""Inputs for the frame-reading tests: the shared DAVIS clip and small videos made with PyAV."""

from __future__ import annotations

from pathlib import Path

import pytest

from align3r.bench.decode import write_synthetic_video


@pytest.fixture(scope="session")
def lady_dir(data_dir) -> Path:
    return data_dir / "davis_lady_running" / "demo_data"


@pytest.fixture(scope="session")
def short_video(tmp_path_factory) -> Path:
    """40 synthetic 96x64 H.264 frames at 30 fps with a key frame every 8 frames (seekable)."""
    path = tmp_path_factory.mktemp("video") / "short.mp4"
    return write_synthetic_video(path, 40, 64, 96, gop=8)
